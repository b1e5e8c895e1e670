package e2eeapi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
)

// twoNodes starts two gateways that share one real redis-server, as two nodes behind a load balancer do: the
// rooms store, its events and the e2ee store are Redis, each node with its own client and relay.
func twoNodes(t testing.TB) (a, b *env) {
	t.Helper()
	srv, err := redistest.Launch()
	if errors.Is(err, redistest.ErrNotInstalled) {
		t.Skip(redistest.SkipMessage)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	stores := func(t testing.TB) (rooms.Store, e2eestore.Store) {
		st, err := redisstore.New(context.Background(), redisstore.Options{Client: srv.Client(t), KeyPrefix: "mg:"})
		if err != nil {
			t.Fatal(err)
		}
		return st, st.E2EE()
	}
	a = newEnv(t, envOptions{node: &clusterNode{stores: stores}})
	b = newEnv(t, envOptions{node: &clusterNode{peer: a, stores: stores}})
	return a, b
}

// TestCluster_KickOnOneNodeCutsKeysOfMembersOnTheOther: alice follows the meeting through node A, bob and carol
// through node B. A host kicks bob through node A. Bob must lose the keys although his key was registered and
// is served by node B, and carol (bound only on node B) must stay: before the bindings were shared, node A
// reconciled the roster from its own bindings and removed carol too, and node B never served alice.
func TestCluster_KickOnOneNodeCutsKeysOfMembersOnTheOther(t *testing.T) {
	a, b := twoNodes(t)
	const room = "cluster"
	alice, bob, carol := a.user("alice"), a.user("bob"), a.user("carol")
	a.createRoom(room, alice, rooms.SettingsChange{})
	a.admit(alice, room, rooms.RoleHost)
	bobP := b.admit(bob, room, rooms.RoleParticipant)
	b.admit(carol, room, rooms.RoleParticipant)

	ca, cb, cc := a.client(alice, room, e2ee.KEMXWing), b.client(bob, room, e2ee.KEMXWing), b.client(carol, room, e2ee.KEMXWing)
	a.run(ca)
	b.run(cb)
	b.run(cc)
	before := a.settle([]*e2ee.Client{ca, cb, cc}, 3)
	exchangeFrames(t, []*e2ee.Client{ca, cb, cc})

	start := time.Now()
	if _, err := a.rooms.Remove(a.ctx, room, bobP.ID, false); err != nil {
		t.Fatal(err)
	}
	after := a.settle([]*e2ee.Client{ca, cc}, 2)
	t.Logf("kick on node A to both remaining members (A and B) holding the new epoch's keys: %v", time.Since(start))
	if after.Epoch <= before.Epoch || after.SecurityCode == before.SecurityCode {
		t.Fatalf("no new epoch secret after the kick: epoch %d -> %d", before.Epoch, after.Epoch)
	}
	// Node B, which serves bob, refuses him everything now.
	if _, err := b.transport(bob, room).Roster(b.ctx, 0); !errors.Is(err, e2ee.ErrNotMember) {
		t.Fatalf("node B serves the roster to the member kicked on node A: %v", err)
	}
	if st := cb.Status(); st.SecurityCode == after.SecurityCode {
		t.Fatal("the kicked member holds the new epoch's secret")
	}
	// The remaining members, one per node, still decrypt each other; the kicked one opens nothing new.
	exchangeFrames(t, []*e2ee.Client{ca, cc})
	frame, err := ca.Encrypt(0, nil, []byte("after the kick"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cb.Decrypt(nil, frame); err == nil {
		t.Fatal("the kicked member decrypted a frame sent after the kick")
	}
}

// TestCluster_EveryNodeServesEveryMember: a member registered through node A is served its roster, key packages
// and sealed keys by node B (a load balancer without stickiness), and the policy's device facts on node B see
// the key registered on node A.
func TestCluster_EveryNodeServesEveryMember(t *testing.T) {
	a, b := twoNodes(t)
	const room = "anywhere"
	alice, bob := a.user("alice"), a.user("bob")
	a.createRoom(room, alice, rooms.SettingsChange{})
	a.admit(alice, room, rooms.RoleHost)
	a.admit(bob, room, rooms.RoleParticipant)
	ca, cb := a.client(alice, room, e2ee.KEMXWing), a.client(bob, room, e2ee.KEMXWing)
	a.run(ca)
	a.run(cb)
	a.settle([]*e2ee.Client{ca, cb}, 2)

	facts, err := b.api.DeviceFacts(b.ctx, room, bob.id)
	if err != nil || !facts.KeyRegistered {
		t.Fatalf("node B's device facts for a key registered on node A: %+v, %v", facts, err)
	}
	// Bob's client now talks to node B only, with the same admission and key.
	tr := b.transport(bob, room)
	if _, err := tr.Roster(b.ctx, 0); err != nil {
		t.Fatalf("node B refuses the roster to a member registered on node A: %v", err)
	}
	st := cb.Status()
	if _, err := tr.SealedKeys(b.ctx, st.Epoch); err != nil {
		t.Fatalf("node B refuses the sealed keys: %v", err)
	}
}

// BenchmarkCluster_KickToKeys measures, per kick, the time from a kick handled on node A to every remaining
// member (one on node A, two on node B) holding the next epoch's secret. Each iteration admits a fresh member
// through node B and kicks it through node A. Run with -benchtime=5x; it reports ms/kick.
func BenchmarkCluster_KickToKeys(b *testing.B) {
	a, nb := twoNodes(b)
	const room = "bench-kick"
	alice, bob, carol := a.user("alice"), a.user("bob"), a.user("carol")
	a.createRoom(room, alice, rooms.SettingsChange{})
	a.admit(alice, room, rooms.RoleHost)
	nb.admit(bob, room, rooms.RoleParticipant)
	nb.admit(carol, room, rooms.RoleParticipant)
	stay := []*e2ee.Client{a.client(alice, room, e2ee.KEMXWing), nb.client(bob, room, e2ee.KEMXWing), nb.client(carol, room, e2ee.KEMXWing)}
	for _, c := range stay {
		a.run(c)
	}
	a.settle(stay, 3)
	var total time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		n++
		b.StopTimer()
		u := a.user(fmt.Sprintf("guest%d", i))
		p := nb.admit(u, room, rooms.RoleParticipant)
		c := nb.client(u, room, e2ee.KEMXWing)
		stop, _ := nb.run(c)
		a.settle(append(slices.Clone(stay), c), 4)
		b.StartTimer()
		start := time.Now()
		if _, err := a.rooms.Remove(a.ctx, room, p.ID, false); err != nil {
			b.Fatal(err)
		}
		a.settle(stay, 3)
		total += time.Since(start)
		stop()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(max(n, 1)), "ms/kick")
}
