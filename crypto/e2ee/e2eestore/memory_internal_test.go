package e2eestore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestMemory_ListDropsExpiredKeysItWalks: keys that expired under other prefixes (another room's nonces, which
// nobody reads again) leave the store on the next List of any prefix, so neither memory nor the walk grows with
// them; live keys stay, and the expired ones under the listed prefix are not listed.
func TestMemory_ListDropsExpiredKeysItWalks(t *testing.T) {
	ctx := context.Background()
	clock := &manualClock{now: time.Unix(1_800_000_000, 0)}
	s := NewMemory(clock)
	for i := range 100 {
		if err := s.Put(ctx, fmt.Sprintf("other-room/nonce/%d", i), []byte("n"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, fmt.Sprintf("room/pending/%d", i), []byte("p"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"room/bound", "other-room/bound"} {
		if err := s.Put(ctx, k, []byte("b"), 0); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(time.Minute)
	got, err := s.List(ctx, "room/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "room/bound" {
		t.Fatalf("List(room/) = %v, want only room/bound", got)
	}
	s.mu.Lock()
	n := len(s.items)
	s.mu.Unlock()
	if n != 2 {
		t.Fatalf("the store still holds %d keys after a List, want the 2 that never expire", n)
	}
}
