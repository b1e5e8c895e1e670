// Package roomstest is the conformance suite every rooms.Store must pass,
// and the benchmarks that measure one. Its tests attack the properties the
// gateway relies on (capacity under a storm, bans across nodes, passcode
// brute force) rather than the implementation.
//
// It is imported only by tests.
package roomstest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Nodes are two stores sharing one state, as two gateway nodes behind a
// load balancer would (for a single-node store, the same store twice).
type Nodes struct {
	A, B rooms.Store
	// Advance moves time forward: a fake clock for stores that take one, a
	// real sleep otherwise.
	Advance func(time.Duration)
}

// Harness builds fresh nodes for each test; New registers their cleanup.
type Harness struct {
	New func(t testing.TB, cfg rooms.Config) Nodes
}

// Clock is a fake clock safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Subject returns a distinct, well-formed subject key.
func Subject(i int) rooms.SubjectKey {
	return rooms.SubjectKey(fmt.Sprintf("https://idp.example.test|user-%d", i))
}

// IP returns a distinct IPv4 address.
func IP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}

// Quantile returns the q-quantile (0..1) of ds, sorting ds.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q * float64(len(ds)-1))
	return ds[i]
}
