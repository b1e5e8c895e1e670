package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/rooms"
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
		rs, _, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
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
	rs, _, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
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
	_, _, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
	if !errors.Is(err, redisstore.ErrClusterUnsupported) || !strings.HasPrefix(err.Error(), "store.redis: the server runs Redis Cluster, which is not supported") {
		t.Fatalf("a Redis Cluster node: %v, want ErrClusterUnsupported", err)
	}
	// A plain server starts; so does one that is down (it fails closed
	// per request until it is up).
	for _, addr := range []string{redistest.Start(t).Addr, "127.0.0.1:1"} {
		cfg.Store.Redis.Addr = addr
		rs, _, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		rs.Close()
	}
}

// A Redis that comes back empty (restarted without persistence, or
// FLUSHALL) has lost the permanent rooms, which nodes used to seed only at
// start: every join was refused until a node restarted. The node's keeper
// must bring them back by itself (after its link comes back, and for a
// FLUSHALL, which no link notices, at its next check), while the store
// fails closed as long as Redis is down.
func TestKeepPermanentRooms_RoomsComeBackWhenRedisLosesItsData(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Config{Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: srv.Addr}},
		Rooms: config.Rooms{Permanent: []config.PermanentRoom{{ID: "demo", Capacity: 30}, {ID: "all-hands", E2EERequired: true}}}}
	ctx, cancel := context.WithCancel(t.Context())
	st, _, err := openRoomStore(ctx, cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		keepPermanentRooms(ctx, st, cfg.Rooms.Seeds(cfg.OIDC.Issuer), true, openTestAudit(t), zap.NewNop())
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done; _ = st.Close() })

	admit := func() error {
		_, err := st.Admit(t.Context(), rooms.Admission{Room: "demo", Subject: "https://idp|alice", Name: "Alice", Role: rooms.RoleParticipant})
		return err
	}
	// waitForRooms waits, without any restart of the node, until both
	// rooms are back as configured; the bound only ends a broken run.
	waitForRooms := func(after string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			d, errD := st.Room(t.Context(), "demo")
			a, errA := st.Room(t.Context(), "all-hands")
			if errD == nil && errA == nil {
				if !d.Permanent || d.Capacity != 30 || !a.Permanent || !a.E2EERequired {
					t.Fatalf("%s: rooms came back as %+v and %+v, not as configured", after, d, a)
				}
				if err := admit(); err != nil {
					t.Fatalf("%s: join into the re-created room: %v", after, err)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: permanent rooms still missing (%v, %v): joins are refused until a node restarts", after, errD, errA)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := admit(); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	if err := admit(); !errors.Is(err, rooms.ErrStoreUnavailable) {
		t.Fatalf("join while Redis is down: %v, want ErrStoreUnavailable (503)", err)
	}
	if err := srv.Restart(); err != nil { // empty: the test server keeps no data
		t.Fatal(err)
	}
	waitForRooms("Redis restarted empty")

	if err := srv.Client(t).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	waitForRooms("FLUSHALL")
}

// config validates store.redis.replica_ack_timeout against its own copy of
// the store's bound: the two must agree, or a config that validates would
// fail at start (or the other way round).
func TestReplicaAckTimeoutBoundsAgree(t *testing.T) {
	if config.MaxReplicaAckTimeout != redisstore.MaxReplicaAckTimeout {
		t.Fatalf("config allows up to %v, the store %v", config.MaxReplicaAckTimeout, redisstore.MaxReplicaAckTimeout)
	}
}

// store.redis.replica_ack_timeout reaches the store serve opens: against
// a Redis with no replica, a join cannot be acknowledged and fails closed,
// where without the setting it is admitted.
func TestServe_ReplicaAckTimeoutReachesTheStore(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		ack  time.Duration
		want error
	}{{0, nil}, {50 * time.Millisecond, rooms.ErrStoreUnavailable}} {
		cfg := &config.Config{Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: srv.Addr, ReplicaAckTimeout: tc.ack}},
			Rooms: config.Rooms{Permanent: []config.PermanentRoom{{ID: "demo"}}}}
		st, _, err := openRoomStore(t.Context(), cfg, zap.NewNop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Admit(t.Context(), rooms.Admission{Room: "demo", Subject: "https://idp|alice", Name: "Alice", Role: rooms.RoleParticipant})
		_ = st.Close()
		if !errors.Is(err, tc.want) { // errors.Is(err, nil) is err == nil
			t.Errorf("replica_ack_timeout %v, no replica: Admit = %v, want %v", tc.ack, err, tc.want)
		}
	}
}

// A node that starts while Redis is down seeds the permanent rooms as a
// start would (the configuration's settings win) once, when Redis first
// answers; after that it only re-creates missing rooms, so a host's later
// change to a live room is never undone by its checks.
func TestKeepPermanentRooms_NodeStartedWhileRedisWasDownSeedsOnce(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Config{Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: srv.Addr}},
		Rooms: config.Rooms{Permanent: []config.PermanentRoom{{ID: "demo", Capacity: 30}}}}
	srv.Kill()
	ctx, cancel := context.WithCancel(t.Context())
	st, seeded, err := openRoomStore(ctx, cfg, zap.NewNop(), nil)
	if err != nil || seeded {
		t.Fatalf("start with Redis down: seeded %v, %v; want a node that seeds later", seeded, err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The room as Redis has it when it comes back: a host had lowered the
	// capacity. The configuration's value wins once, as at any start.
	five, seven := 5, 7
	owner := cfg.Rooms.Seeds(cfg.OIDC.Issuer)[0].Owner
	if _, err := st.Put(t.Context(), "demo", owner, rooms.SettingsChange{Capacity: &five}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		keepPermanentRooms(ctx, st, cfg.Rooms.Seeds(cfg.OIDC.Issuer), seeded, openTestAudit(t), zap.NewNop())
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done; _ = st.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := st.Room(t.Context(), "demo")
		if err == nil && r.Capacity == 30 && r.Permanent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node never seeded the permanent room after Redis came back: %+v, %v", r, err)
		}
	}
	if _, err := st.Put(t.Context(), "demo", owner, rooms.SettingsChange{Capacity: &seven}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(reseedEvery + time.Second) // at least one more check
	if r, err := st.Room(t.Context(), "demo"); err != nil || r.Capacity != 7 {
		t.Fatalf("after the keeper's next check: %+v, %v; want the host's capacity 7 kept", r, err)
	}
}

// openTestAudit opens a real audit log in a temporary directory that
// refuses records differing from the documented schema.
func openTestAudit(t *testing.T) *audit.Log {
	t.Helper()
	return openTestAuditAt(t, t.TempDir())
}

func openTestAuditAt(t *testing.T, dir string) *audit.Log {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(t.Context(), audit.Options{Path: filepath.Join(dir, "audit.log"), Node: "gw-1", SigningKey: key, StrictSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// A permanent room the store lost comes back unlocked and without its
// bans. That must not pass with only a log line: the audit log holds one
// room.recreated record per lost room, naming the room, the reason and the
// node, and none for a room that survived with its lock.
func TestKeepPermanentRooms_RecreatedRoomsAreOnTheAuditRecord(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Config{Store: config.Store{Kind: "redis", Redis: config.Redis{Addr: srv.Addr}},
		Rooms: config.Rooms{Permanent: []config.PermanentRoom{{ID: "demo"}, {ID: "all-hands"}, {ID: "board"}}}}
	ctx, cancel := context.WithCancel(t.Context())
	st, seeded, err := openRoomStore(ctx, cfg, zap.NewNop(), nil)
	if err != nil || !seeded {
		t.Fatalf("seeded %v, %v", seeded, err)
	}
	seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
	// Redis loses everything (FLUSHALL, which no connection notices).
	// Before this node's keeper checks, board is back, locked by its host
	// (another node's keeper re-created it): this node must write no
	// record for it, and leave it locked.
	if err := srv.Client(t).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rooms.Seed(t.Context(), st, seeds[2:]); err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(t.Context(), "board"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Room(t.Context(), "demo"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("demo after FLUSHALL: %v, want it lost", err)
	}

	dir := t.TempDir()
	alog := openTestAuditAt(t, dir)
	done := make(chan struct{})
	go func() { keepPermanentRooms(ctx, st, seeds, true, alog, zap.NewNop()); close(done) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(func() { stop(); _ = st.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, errD := st.Room(t.Context(), "demo")
		_, errA := st.Room(t.Context(), "all-hands")
		if errD == nil && errA == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lost rooms not re-created: %v, %v", errD, errA)
		}
	}
	stop() // the keeper has written what it writes: no check is under way
	var got []string
	_, err = audit.ReadEntries(t.Context(), []string{filepath.Join(dir, "audit.log")}, func(e *audit.Entry) error {
		if e.Event != audit.EventRoomRecreated {
			return nil
		}
		if e.Str(audit.FieldReason) != audit.ReasonStoreDataLost || e.Node != "gw-1" {
			t.Errorf("record %s: want reason %s and node gw-1", e.Raw, audit.ReasonStoreDataLost)
		}
		got = append(got, e.Str(audit.FieldRoom))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"all-hands", "demo"}; !slices.Equal(got, want) {
		t.Fatalf("room.recreated records for %v, want one each for %v (none for board, which survived)", got, want)
	}
	// `audit report` shows it among the room's controls.
	rep, err := audit.BuildReport(t.Context(), []string{filepath.Join(dir, "audit.log")}, audit.ReportOptions{Room: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RoomControls) != 1 || !strings.Contains(rep.RoomControls[0].Text, "created again") {
		t.Errorf("report's room controls for demo: %+v, want the re-creation", rep.RoomControls)
	}
	if r, err := st.Room(t.Context(), "board"); err != nil || !r.Locked {
		t.Fatalf("board after the keeper ran: %+v, %v; want it untouched, locked", r, err)
	}
}
