//go:build race

package main

// raceEnabled: the race detector is on (it makes the cluster test's
// three node processes several times slower).
const raceEnabled = true
