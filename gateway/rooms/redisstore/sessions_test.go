package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/session/sessiontest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-session-secret")

func sessionNode(t testing.TB, srv *redistest.Server, p string) *redisstore.Sessions {
	sealer, err := session.NewSealer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return node(t, srv, p, rooms.Config{}).Sessions(sealer)
}

func TestSessions_Conformance(t *testing.T) {
	srv := sharedServer(t)
	sessiontest.Run(t, func(t *testing.T) (a, b session.Store) {
		p := prefix()
		return sessionNode(t, srv, p), sessionNode(t, srv, p)
	})
}

// What Redis holds must be useless to whoever reads a dump or a replica:
// no token, no subject, no cookie handle in any key or value.
func TestSessions_RedisHoldsNoReadableTokenOrHandle(t *testing.T) {
	srv := sharedServer(t)
	p := prefix()
	st := sessionNode(t, srv, p)
	ctx := context.Background()
	handle := session.NewHandle()
	s := sessiontest.Sample(session.IDFromHandle(handle))
	if err := st.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := st.PutLogin(ctx, session.Login{State: "state-secret", Nonce: "nonce-secret", Verifier: "verifier-secret", Redirect: "/", Expires: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c := srv.Client(t)
	keys, err := c.Keys(ctx, p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v, want a session and a login", keys)
	}
	for _, k := range keys {
		v, err := c.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{s.RefreshToken, s.IDToken, s.Identity.Subject, s.Identity.Email, "state-secret", "nonce-secret", "verifier-secret"} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("%s holds %q in clear", k, secret)
			}
		}
		if bytes.Contains([]byte(k), handle) || bytes.Contains(v, handle) {
			t.Errorf("%s holds the cookie handle", k)
		}
	}
}

// An attacker with write access to Redis copies a victim's sealed session
// under the key of a session ID they hold a cookie for: it must not open.
func TestSessions_RecordMovedToAnotherKeyDoesNotOpen(t *testing.T) {
	srv := sharedServer(t)
	p := prefix()
	st := sessionNode(t, srv, p)
	ctx := context.Background()
	victim, attacker := sessiontest.Sample("victim-id"), sessiontest.Sample("attacker-id")
	victim.Identity.Subject = "admin"
	for _, s := range []session.Session{victim, attacker} {
		if err := st.PutSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c := srv.Client(t)
	raw, err := c.Get(ctx, p+"sess:victim-id").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, p+"sess:attacker-id", raw, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetSession(ctx, "attacker-id")
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("moved record opened as %q (err %v), want ErrNotFound", got.Identity.Subject, err)
	}
	// A store sealing under another secret cannot read the records either.
	other, _ := session.NewSealer([]byte("another-secret-another-secret-another-secret"))
	if _, err := node(t, srv, p, rooms.Config{}).Sessions(other).GetSession(ctx, "victim-id"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("record opened under another secret: %v", err)
	}
}

// With Redis gone every call fails closed with ErrUnavailable: no session
// is read from anywhere else, no login taken, no state claimed.
func TestSessions_RedisDownFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	st := sessionNode(t, srv, prefix())
	ctx := context.Background()
	s := sessiontest.Sample("down-id")
	if err := st.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := st.GetSession(ctx, s.ID); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("GetSession with Redis down: %v, want ErrUnavailable", err)
	}
	if err := st.DeleteSession(ctx, s.ID); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("DeleteSession with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := st.TakeLogin(ctx, "x"); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("TakeLogin with Redis down: %v, want ErrUnavailable", err)
	}
	if ok, err := st.ClaimState(ctx, "x", time.Now().Add(time.Minute)); ok || !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("ClaimState with Redis down: %v %v, want false and ErrUnavailable", ok, err)
	}
}

// TestSessionFootprint reports Redis memory (used_memory) per session, with
// tokens of realistic size (a 1 KiB ID token, a 100-byte refresh token,
// six groups). It measures; it does not assert.
func TestSessionFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	srv := redistest.Start(t) // its own server, so nothing else moves used_memory
	c := srv.Client(t)
	st := sessionNode(t, srv, "fp:")
	ctx := context.Background()
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory in INFO")
		return 0
	}
	const n = 5_000
	before := used()
	var size int
	for range n {
		s := sessiontest.Sample(session.IDFromHandle(session.NewHandle()))
		s.IDToken = strings.Repeat("i", 1024)
		s.RefreshToken = strings.Repeat("r", 100)
		s.Identity.Subject = strings.Repeat("s", 36)
		s.Identity.Groups = []string{"staff", "engineering", "meeting-hosts", "emea", "all-hands", "security"}
		if size == 0 {
			sealer, _ := session.NewSealer(testSecret)
			raw, _ := sealer.SealSession(s)
			size = len(raw)
		}
		if err := st.PutSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("redis sessions: %.0f B of Redis memory per session (sealed record %d B)", float64(used()-before)/n, size)
}
