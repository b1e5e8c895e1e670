package demoapp

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBroadcastChat fans one chat event out to a room of 100 members.
func BenchmarkBroadcastChat(b *testing.B) {
	r := newRoster()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 100 {
		m := &member{presence: presence{Name: "m" + strconv.Itoa(i), Role: RoleParticipant}, send: make(chan []byte, 1024), kick: func() {}}
		go func() { // a fast reader
			for {
				select {
				case <-m.send:
				case <-ctx.Done():
					return
				}
			}
		}()
		r.join("room", m)
	}
	from := presence{ID: "1", Name: "Alice", Role: RoleHost}
	b.ReportAllocs()
	for b.Loop() {
		r.broadcast("room", event{Type: "chat", Member: &from, Text: "hello everyone", At: "2026-01-01T00:00:00Z"})
	}
}

// BenchmarkVerifyAssertion verifies one gateway assertion with a cached key.
func BenchmarkVerifyAssertion(b *testing.B) {
	g := newFakeGateway(b)
	now := time.Now()
	raw := g.sign(b, g.priv, g.kid, g.claims(now))
	pub, _ := g.priv.Public().(ed25519.PublicKey)
	v := &jwksVerifier{issuer: testIssuer, audience: testAudience, now: func() time.Time { return now },
		keys: map[string]ed25519.PublicKey{g.kid: pub}, lastFetch: now}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoomPage renders a room page from gateway headers.
func BenchmarkRoomPage(b *testing.B) {
	app, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/room/standup", nil)
	req.Header = gatewayHeaders("Alice Host", "alice@example.com", "host", "standup")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
