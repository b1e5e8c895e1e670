package e2ee

import "time"

// Clock tells the time; tests inject one to drive expiry, grace periods and re-key timers.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }
