// Package sessiontest is the conformance suite every session.Store passes:
// the memory store for one node and the Redis store shared by many. Each
// test that speaks of nodes runs against two stores from one Harness; for
// a shared store they are two clients of one backend, so "taken on A, seen
// on B" is tested for real.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/session"
)

// Harness makes two stores that share their state (two nodes), or the
// same store twice for a single-node implementation.
type Harness func(t *testing.T) (a, b session.Store)

// Run runs the whole conformance suite against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Session_PutOnOneNodeReadsTheSameOnTheOther", testRoundTrip},
		{"Session_UnknownIsNotFound", testUnknown},
		{"Session_DeleteOnOneNodeEndsItOnEvery", testDelete},
		{"Session_RefreshOnOneNodeIsSeenOnTheOther", testReplace},
		{"Session_ExpiredIsGone", testSessionExpiry},
		{"Login_TakenOnceAcrossNodes", testLoginOnce},
		{"Login_ExpiredCannotBeTaken", testLoginExpiry},
		{"ClaimState_FirstClaimWinsOnEveryNode", testClaimOnce},
		{"Ended_DeleteOnOneNodeIsAnnouncedOnTheOther", testEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Sample is a session with every field set, as a login would store it.
func Sample(id string) session.Session {
	now := time.Now().Truncate(time.Millisecond)
	return session.Session{
		ID: id,
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: "alice", Email: "alice@example.org",
			EmailVerified: true, Name: "Alice", Groups: []string{"staff", "hosts"}, ACR: "mfa", AMR: []string{"pwd", "otp"},
			AuthTime: now.Add(-time.Minute), Via: identity.ViaSession, SessionID: id},
		IDToken: "eyJ.id.token", RefreshToken: "refresh-1", TokenExpiry: now.Add(5 * time.Minute),
		Created: now, Expires: now.Add(time.Hour), ClaimsAt: now,
	}
}

var seq atomic.Int64

func newID(t *testing.T) string {
	return fmt.Sprintf("%x-%d", time.Now().UnixNano(), seq.Add(1))
}

// Equal reports whether two sessions are the same, comparing times as
// instants (a shared store keeps no monotonic reading or location).
func Equal(x, y session.Session) bool {
	xi, yi := x.Identity, y.Identity
	return x.ID == y.ID && x.IDToken == y.IDToken && x.RefreshToken == y.RefreshToken &&
		x.TokenExpiry.Equal(y.TokenExpiry) && x.Created.Equal(y.Created) && x.Expires.Equal(y.Expires) &&
		x.ClaimsAt.Equal(y.ClaimsAt) && xi.Issuer == yi.Issuer && xi.Subject == yi.Subject && xi.Email == yi.Email &&
		xi.EmailVerified == yi.EmailVerified && xi.Name == yi.Name && slices.Equal(xi.Groups, yi.Groups) &&
		xi.ACR == yi.ACR && slices.Equal(xi.AMR, yi.AMR) && xi.AuthTime.Equal(yi.AuthTime) && xi.Via == yi.Via &&
		xi.SessionID == yi.SessionID
}

func testRoundTrip(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	s := Sample(newID(t))
	if err := a.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetSession(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(got, s) {
		t.Fatalf("node B reads\n%+v\nnode A put\n%+v", got, s)
	}
}

func testUnknown(t *testing.T, h Harness) {
	a, _ := h(t)
	if _, err := a.GetSession(context.Background(), newID(t)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	s := Sample(newID(t))
	if err := a.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("session deleted on B still read on A: %v", err)
	}
	if err := a.DeleteSession(ctx, s.ID); err != nil {
		t.Fatalf("second delete: %v, want nil (idempotent)", err)
	}
}

func testReplace(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	s := Sample(newID(t))
	if err := a.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.RefreshToken, s.TokenExpiry = "refresh-2", s.TokenExpiry.Add(time.Hour)
	s.Identity.Groups = []string{"staff"}
	if err := b.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetSession(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(got, s) {
		t.Fatalf("after refresh on B, A reads\n%+v\nwant\n%+v", got, s)
	}
}

// eventually polls until f is true or 10s pass: expiry is the store's
// clock, not ours, so the test waits for it instead of assuming a time.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testSessionExpiry(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	s := Sample(newID(t))
	s.Expires = time.Now().Add(200 * time.Millisecond)
	if err := a.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an expired session is gone on B", func() bool {
		_, err := b.GetSession(ctx, s.ID)
		return errors.Is(err, session.ErrNotFound)
	})
}

func testLoginOnce(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	l := session.Login{State: "st-" + newID(t), Nonce: "n", Verifier: "v", Redirect: "/room/x", Expires: time.Now().Add(time.Minute)}
	if err := a.PutLogin(ctx, l); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := st.TakeLogin(ctx, l.State)
			switch {
			case err == nil:
				if got.Nonce != l.Nonce || got.Verifier != l.Verifier || got.Redirect != l.Redirect {
					t.Errorf("taken login %+v, want %+v", got, l)
				}
				wins.Add(1)
			case !errors.Is(err, session.ErrNotFound):
				t.Errorf("TakeLogin: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("login taken %d times across two nodes, want exactly once", n)
	}
}

func testLoginExpiry(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	l := session.Login{State: "st-" + newID(t), Nonce: "n", Verifier: "v", Redirect: "/", Expires: time.Now().Add(200 * time.Millisecond)}
	if err := a.PutLogin(ctx, l); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past Expires on any clock that agrees to 100ms
	if _, err := b.TakeLogin(ctx, l.State); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired login taken: %v, want ErrNotFound", err)
	}
}

func testClaimOnce(t *testing.T, h Harness) {
	a, b := h(t)
	ctx := context.Background()
	state := "st-" + newID(t)
	until := time.Now().Add(time.Minute)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.ClaimState(ctx, state, until)
			if err != nil {
				t.Errorf("ClaimState: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("state claimed %d times across two nodes, want exactly once", n)
	}
	if ok, err := a.ClaimState(ctx, "st-"+newID(t), until); err != nil || !ok {
		t.Fatalf("another state: %v %v, want a first claim", ok, err)
	}
}

func testEnded(t *testing.T, h Harness) {
	a, b := h(t)
	w, ok := a.(session.EndWatcher)
	if !ok {
		t.Skip("single-node store: logout cuts connections through the node's own callback")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended, err := w.Ended(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := Sample(newID(t))
	if err := a.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id, open := <-ended:
		if !open || id != s.ID {
			t.Fatalf("announced %q (open %v), want %q", id, open, s.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a delete on B was never announced on A")
	}
	cancel()
	for range ended { // the channel closes when ctx ends
	}
}
