package rooms_test

import (
	"context"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func BenchmarkTicketIssue(b *testing.B) {
	tk := newTickets(b, &fakeClock{now: time.Unix(1_800_000_000, 0)}, key(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tk.Issue("weekly-sync", alice, session); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTicketVerify(b *testing.B) {
	tk := newTickets(b, &fakeClock{now: time.Unix(1_800_000_000, 0)}, key(1))
	token, _, _ := tk.Issue("weekly-sync", alice, session)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(token, "weekly-sync", session); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasscodeVerify is one check of a passcode hashed with the
// default parameters: the cost every passcode join (and guess) pays.
func BenchmarkPasscodeVerify(b *testing.B) {
	p := newPasscodes(b, rooms.PasscodeOptions{})
	h, err := p.Hash(context.Background(), "424242")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Verify(context.Background(), h, "424243"); err != nil {
			b.Fatal(err)
		}
	}
}
