//go:build race

package audit

// raceEnabled shortens the slowest randomised tests under the race
// detector, which makes them several times slower; they still run in full
// without it.
const raceEnabled = true
