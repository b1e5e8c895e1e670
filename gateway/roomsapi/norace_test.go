//go:build !race

package roomsapi_test

const raceEnabled = false
