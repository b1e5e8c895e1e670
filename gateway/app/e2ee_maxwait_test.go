package app

import (
	"testing"
	"time"
)

// TestE2EEMaxWait: no key-exchange long-poll outlasts a quarter of a room
// ticket's life, so a quiet member's next request always finds its ticket
// renewable (TestMeeting_MembersKeepTheirKeysPastTheTicketLifetime runs
// it end to end with 16 s tickets and 25 s client polls).
func TestE2EEMaxWait(t *testing.T) {
	for _, tt := range []struct{ ttl, want time.Duration }{
		{5 * time.Minute, 25 * time.Second},
		{100 * time.Second, 25 * time.Second},
		{60 * time.Second, 15 * time.Second},
		{16 * time.Second, 4 * time.Second},
		{time.Second, 250 * time.Millisecond},
		{0, 100 * time.Millisecond},
	} {
		if got := e2eeMaxWait(tt.ttl); got != tt.want {
			t.Errorf("ticket life %v: long-polls of %v, want %v", tt.ttl, got, tt.want)
		}
	}
}
