package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
)

func sentinelStore(t *testing.T, sent *redistest.Sentinel, ack time.Duration) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(context.Background(), redisstore.Options{KeyPrefix: "ack:", Rooms: rooms.Config{},
		ReplicaAckTimeout: ack,
		Server:            &redisstore.ClientOptions{SentinelMaster: redistest.MasterName, SentinelAddrs: []string{sent.Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// With Sentinel, replication is asynchronous: an admission the primary
// acknowledged can be missing from the replica that a failover promotes a
// moment later. The attack: the replica stops taking the stream (paused),
// and joins go on. Without replica_ack_timeout the join is acknowledged
// although no replica has it (the window the option closes); with it, the
// join fails closed (ErrStoreUnavailable, 503) and leaves no seat taken on
// the primary. With the replica back, acknowledged joins are on it.
func TestAdmit_ReplicaAckTimeoutAcknowledgesOnlyReplicatedAdmissions(t *testing.T) {
	sent := redistest.StartSentinel(t)
	ctx := context.Background()
	acked, plain := sentinelStore(t, sent, 200*time.Millisecond), sentinelStore(t, sent, 0)
	if _, err := plain.Put(ctx, "board", "https://idp|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	join := func(s *redisstore.Store, who string) (rooms.Participant, error) {
		return s.Admit(ctx, rooms.Admission{Room: "board", Subject: rooms.SubjectKey("https://idp|" + who), Name: who, Role: rooms.RoleParticipant})
	}
	onReplica := func(p rooms.Participant) bool {
		ok, err := sent.Replica.Client(t).HExists(ctx, "ack:{board}:p", string(p.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	first, err := join(acked, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !onReplica(first) {
		t.Fatal("an admission acknowledged with replica_ack_timeout is not on the replica")
	}

	if err := sent.Replica.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := sent.Replica.Resume(); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer resume()
	unsafe, err := join(plain, "bob")
	if err != nil {
		t.Fatalf("join without replica_ack_timeout while the replica is paused: %v", err)
	}
	_, err = join(acked, "carol")
	if !errors.Is(err, rooms.ErrStoreUnavailable) {
		t.Fatalf("join with replica_ack_timeout while no replica takes writes: %v, want ErrStoreUnavailable (fail closed)", err)
	}
	r, err := plain.Room(ctx, "board")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Participants {
		if p.Name == "carol" {
			t.Fatal("the unacknowledged admission still holds a seat on the primary")
		}
	}
	if len(r.Participants) != 2 {
		t.Fatalf("room holds %d participants, want alice and bob", len(r.Participants))
	}
	resume()
	t.Logf("without the option, bob's admission was acknowledged while no replica had it (id %s)", unsafe.ID)

	// A script cache emptied (a restart, SCRIPT FLUSH) takes the full
	// script, still followed by WAIT on the same connection.
	if err := sent.Primary.Client(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	last, err := join(acked, "dave")
	if err != nil {
		t.Fatalf("join with replica_ack_timeout once the replica is back: %v", err)
	}
	if !onReplica(last) {
		t.Fatal("an admission acknowledged with replica_ack_timeout is not on the replica")
	}
}

func TestNew_ReplicaAckTimeoutIsBounded(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, redisstore.MaxReplicaAckTimeout + time.Millisecond} {
		_, err := redisstore.New(context.Background(), redisstore.Options{URL: "redis://127.0.0.1:1", ReplicaAckTimeout: d})
		if !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("ReplicaAckTimeout %v: %v, want ErrInvalid", d, err)
		}
	}
}

// BenchmarkAdmit_ReplicaAck: the latency replica_ack_timeout adds to a
// join (one admission and its leave per iteration, through a Sentinel-found
// primary with one replica on 127.0.0.1). Figures in docs/configuration.md.
func BenchmarkAdmit_ReplicaAck(b *testing.B) {
	sent := redistest.StartSentinel(b)
	for _, bc := range []struct {
		name string
		ack  time.Duration
	}{{"off", 0}, {"wait_1_replica", 200 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := redisstore.New(context.Background(), redisstore.Options{KeyPrefix: "ackb:", Rooms: rooms.Config{},
				ReplicaAckTimeout: bc.ack,
				Server:            &redisstore.ClientOptions{SentinelMaster: redistest.MasterName, SentinelAddrs: []string{sent.Addr}}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			if _, err := s.Put(ctx, "bench", "https://idp|owner", rooms.SettingsChange{}); err != nil {
				b.Fatal(err)
			}
			a := rooms.Admission{Room: "bench", Subject: "https://idp|alice", Name: "alice", Role: rooms.RoleParticipant}
			for b.Loop() {
				p, err := s.Admit(ctx, a)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Leave(ctx, "bench", p.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
