package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/session/sessiontest"
)

// The primary is killed under a store that found it through Sentinel:
// until the Sentinel promotes the replica every call fails closed
// (ErrUnavailable, never a wrong answer), and then the same store, not
// restarted, reads the session again, and logouts are announced again.
func TestSessions_SentinelFailoverFailsClosedThenRecovers(t *testing.T) {
	sent := redistest.StartSentinel(t)
	ctx := context.Background()
	rs, err := redisstore.New(ctx, redisstore.Options{KeyPrefix: "fo:", Rooms: rooms.Config{},
		Server: &redisstore.ClientOptions{SentinelMaster: redistest.MasterName, SentinelAddrs: []string{sent.Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	sealer, _ := session.NewSealer(testSecret)
	st := rs.Sessions(sealer)
	s := sessiontest.Sample("failover-id")
	if err := st.PutSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The write is on the replica before the primary dies (replication is
	// asynchronous: without this a just-acknowledged write could be lost).
	if n, err := sent.Primary.Client(t).Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d %v", n, err)
	}
	ended := waitEnded(t, st)
	before, _ := sent.PrimaryAddr(ctx)
	sent.Primary.Kill()
	killed := time.Now()

	failures := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := st.GetSession(ctx, s.ID)
		if err == nil {
			if !sessiontest.Equal(got, s) {
				t.Fatalf("after failover read %+v", got)
			}
			break
		}
		if !errors.Is(err, session.ErrUnavailable) {
			t.Fatalf("during failover: %v, want ErrUnavailable (fail closed) or the session", err)
		}
		failures++
		if time.Now().After(deadline) {
			t.Fatalf("store never recovered after the primary was killed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, _ := sent.PrimaryAddr(ctx)
	t.Logf("failover: primary %s -> %s; first successful read %v after the kill, %d refused reads before", before, after, time.Since(killed).Round(time.Millisecond), failures)
	if after == before {
		t.Fatal("the Sentinel did not promote the replica")
	}
	// The old subscription died with the primary: its channel closed so
	// the node re-checks; a new one on the promoted primary works.
	for range ended {
	}
	ended = waitEnded(t, st)
	if err := st.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ended:
		if id != s.ID {
			t.Fatalf("announced %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a logout after the failover was not announced")
	}
}

func waitEnded(t *testing.T, st *redisstore.Sessions) <-chan string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ch, err := st.Ended(t.Context())
		if err == nil {
			return ch
		}
		if time.Now().After(deadline) {
			t.Fatalf("session subscription never came up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
