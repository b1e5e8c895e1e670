//go:build race

package roomsapi_test

const raceEnabled = true
