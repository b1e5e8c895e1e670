package redisstore_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

// One redis-server serves every test that does not kill it; each test gets
// its own key prefix, so tests never see each other's rooms or events.
var (
	sharedOnce sync.Once
	shared     *redistest.Server
)

func sharedServer(t testing.TB) *redistest.Server {
	t.Helper()
	sharedOnce.Do(func() {
		var err error
		if shared, err = redistest.Launch(); err != nil && !errors.Is(err, redistest.ErrNotInstalled) {
			t.Fatal(err)
		}
	})
	if shared == nil {
		t.Skip(redistest.SkipMessage)
	}
	return shared
}

// node is one gateway node: its own client and its own store.
func node(t testing.TB, srv *redistest.Server, prefix string, cfg rooms.Config) *redisstore.Store {
	s, err := redisstore.New(context.Background(), redisstore.Options{Client: srv.Client(t), KeyPrefix: prefix, Rooms: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func prefix() string { return "t" + string(rooms.NewWaitID()) + ":" }

func TestConformance(t *testing.T) {
	srv := sharedServer(t)
	roomstest.Run(t, roomstest.Harness{New: func(t testing.TB, cfg rooms.Config) roomstest.Nodes {
		p := prefix()
		return roomstest.Nodes{A: node(t, srv, p, cfg), B: node(t, srv, p, cfg), Advance: time.Sleep}
	}})
}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // go-redis logs every failed dial; the outage tests cause many
	code := m.Run()
	if shared != nil {
		shared.Kill()
	}
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
