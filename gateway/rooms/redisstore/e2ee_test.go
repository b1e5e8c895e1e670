package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore/e2eetest"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
)

// Two nodes, each with its own client and relay, share one redis-server.
func TestE2EE_Conformance(t *testing.T) {
	srv := sharedServer(t)
	e2eetest.Run(t, func(t *testing.T) (a, b e2eestore.Store) {
		p := prefix()
		return node(t, srv, p, rooms.Config{}).E2EE(), node(t, srv, p, rooms.Config{}).E2EE()
	})
}

// TestE2EE_RedisDownFailsClosed: with Redis gone every call fails with ErrUnavailable, never a not-found a
// caller could take for "no such credential" or "nonce unused", and a long-poll ends instead of hanging.
func TestE2EE_RedisDownFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	st := node(t, srv, prefix(), rooms.Config{}).E2EE()
	ctx := context.Background()
	if err := st.Create(ctx, "e2ee/r/i/nonce/aa", []byte("alice"), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	calls := map[string]func() error{
		"Create":       func() error { return st.Create(ctx, "e2ee/r/i/roster/1", []byte("x"), 0) },
		"Put":          func() error { return st.Put(ctx, "e2ee/r/i/head", []byte("x"), 0) },
		"Get":          func() error { _, err := st.Get(ctx, "e2ee/r/i/head"); return err },
		"Take":         func() error { _, err := st.Take(ctx, "e2ee/r/i/nonce/aa"); return err },
		"List":         func() error { _, err := st.List(ctx, "e2ee/r/i/"); return err },
		"DeletePrefix": func() error { return st.DeletePrefix(ctx, "e2ee/r/i/") },
		"Incr":         func() error { _, err := st.Incr(ctx, "e2ee/r/i/version"); return err },
		"Counter":      func() error { _, err := st.Counter(ctx, "e2ee/r/i/version"); return err },
		"WaitAbove":    func() error { _, err := st.WaitAbove(ctx, "e2ee/r/i/version", 5); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, e2eestore.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
	}
}
