package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/session/sessiontest"
)

// serve with store.kind redis must keep sessions where every node reads
// them: a session one node's store writes is read by another node's, and
// the memory store is used only with store.kind memory.
func TestServe_RedisStoreKindKeepsSessionsInRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Config{Session: config.Session{Secret: strings.Repeat("s", 40)},
		Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: srv.Addr}}}
	open := func() session.Store {
		rs, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		st, err := openSessionStore(t.Context(), cfg, rs)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.(*redisstore.Sessions); !ok {
			t.Fatalf("store.kind redis gave a %T session store", st)
		}
		return st
	}
	a, b := open(), open()
	s := sessiontest.Sample("serve-node-id")
	if err := a.PutSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetSession(context.Background(), s.ID); err != nil || !sessiontest.Equal(got, s) {
		t.Fatalf("node B: %v", err)
	}
	if err := b.DeleteSession(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(context.Background(), s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("node A after logout on B: %v", err)
	}

	cfg.Store = config.Store{Kind: "memory"}
	rs, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if st, _ := openSessionStore(t.Context(), cfg, rs); st == nil {
		t.Fatal("no memory store")
	} else if _, ok := st.(*session.MemoryStore); !ok {
		t.Fatalf("store.kind memory gave a %T", st)
	}
}

// Redis Cluster is not supported (redisstore.ErrClusterUnsupported says
// why): a gateway given a cluster node refuses to start, naming the field,
// rather than serving until its first cross-slot script fails.
func TestServe_RedisClusterIsRefusedAtStart(t *testing.T) {
	node := redistest.StartWith(t, "--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf")
	cfg := &config.Config{Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: node.Addr}}}
	_, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
	if !errors.Is(err, redisstore.ErrClusterUnsupported) || !strings.HasPrefix(err.Error(), "store.redis: the server runs Redis Cluster, which is not supported") {
		t.Fatalf("a Redis Cluster node: %v, want ErrClusterUnsupported", err)
	}
	// A plain server starts; so does one that is down (it fails closed
	// per request until it is up).
	for _, addr := range []string{redistest.Start(t).Addr, "127.0.0.1:1"} {
		cfg.Store.Redis.Addr = addr
		rs, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		rs.Close()
	}
}
