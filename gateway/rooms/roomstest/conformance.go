package roomstest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Run runs the whole conformance suite against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Put_CreatesWithDefaultsThenUpdatesKeepingOwner", testPutCreatesThenUpdates},
		{"Put_RejectsHostileSettingsWithoutCreating", testPutRejectsHostile},
		{"Create_ExistingRoomIsErrExistsAndUntouched", testCreateExisting},
		{"Create_RacingCreatorsOnTwoNodesLeaveOneOwnerAndItsSettings", testCreateRace},
		{"Facts_MissingRoomIsNotAnError", testFactsMissingRoom},
		{"Facts_ReflectRoomAndSubject", testFactsReflectState},
		{"Admit_RefusesMissingLockedBannedFull", testAdmitRules},
		{"Admit_CapacityStormAcrossTwoNodesNeverOverfills", testCapacityStorm},
		{"Touch_FailsOnceRemovedOnEveryNode", testTouchRevocation},
		{"Lease_LapsedAdmissionFreesItsSeat", testLeaseLapse},
		{"Ban_ReachesOtherNodeAndBlocksRejoinEverywhere", testBanAcrossNodes},
		{"Ban_EventLatencyAcrossNodes", testBanLatency},
		{"Remove_KickWithoutBanAllowsRejoin", testKickWithoutBan},
		{"Role_ChangedOnOneNodeIsSeenAndPublishedOnTheOther", testSetRole},
		{"Role_HostOnlyByPolicyGrantAndNeverTheLastHost", testSetRoleLimits},
		{"Lobby_KnockAdmitDenyAcrossNodes", testLobbyFlow},
		{"Lobby_CapPerRoomAndOneEntryPerIdentity", testLobbyCaps},
		{"Lobby_SecondKnockReplacesTheFirst", testKnockReplaces},
		{"Lobby_KnockLivesOnlyWhileItsClientHeartbeats", testKnockHeartbeat},
		{"Lobby_AdmitIntoFullRoomKeepsEntryWaiting", testLobbyAdmitFull},
		{"Lobby_DenyWithBanEndsEveryEntryOfSubject", testLobbyDenyBan},
		{"Lobby_WaitIDIsBoundToItsRoom", testLobbyWaitIDCrossRoom},
		{"Lobby_EntryExpires", testLobbyExpiry},
		{"Await_ReturnsWaitingWhenContextEnds", testAwaitContext},
		{"Lock_RefusesNewcomersButHostsAndFansOut", testLock},
		{"Suspend_KeepsHostsOnlyAndEmptiesLobby", testSuspend},
		{"Expiry_EmptyRoomEndsAndItsBansOutliveIt", testExpiry},
		{"Expiry_OccupiedAndPermanentRoomsStay", testNoExpiry},
		{"Seed_IsIdempotentAndKeepsHostLock", testSeed},
		{"SeedMissing_CreatesLostRoomsAndLeavesLiveOnesAlone", testSeedMissing},
		{"Subscribe_ClosesWhenContextEnds", testSubscribeContext},
		{"Hostile_ArgumentsAreInvalidNotPanics", testHostileArguments},
	}
	tests = append(tests, rateLimitTests...)
	tests = append(tests, startJoinTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// testConfig is small and fast; tests override what they exercise.
func testConfig() rooms.Config {
	return rooms.Config{
		DefaultCapacity: 10, MaxCapacity: 500,
		EmptyRoomTTL: time.Hour, BanTTL: time.Hour, ParticipantLease: time.Hour, WaitTTL: time.Hour,
		KnockTTL: time.Hour, KnockHeartbeat: time.Minute, LobbyPerRoom: 5, LobbyPerIdentity: 2,
	}
}

const room = "standup"

func ptr[T any](v T) *T { return &v }

func put(t testing.TB, s rooms.Store, id string, ch rooms.SettingsChange) {
	t.Helper()
	if _, err := s.Put(context.Background(), id, Subject(0), ch); err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
}

func admit(t testing.TB, s rooms.Store, id string, subject int, role rooms.Role) rooms.Participant {
	t.Helper()
	p, err := s.Admit(context.Background(), rooms.Admission{Room: id, Subject: Subject(subject), Name: "n", Role: role})
	if err != nil {
		t.Fatalf("Admit(%s, subject %d, %s): %v", id, subject, role, err)
	}
	return p
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func facts(t testing.TB, s rooms.Store, id string, subject rooms.SubjectKey) rooms.Facts {
	t.Helper()
	f, err := s.Facts(context.Background(), id, subject)
	if err != nil {
		t.Fatalf("Facts(%s): %v", id, err)
	}
	return f
}

func subscribe(t testing.TB, s rooms.Store) <-chan rooms.Event {
	t.Helper()
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

// nextEvent waits up to within for an event matching kind and room.
func nextEvent(t testing.TB, ch <-chan rooms.Event, kind rooms.EventKind, within time.Duration) rooms.Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s", kind)
			}
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within %s", kind, within)
		}
	}
}

func testPutCreatesThenUpdates(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	created, err := n.A.Put(ctx, room, Subject(1), rooms.SettingsChange{})
	if err != nil || !created {
		t.Fatalf("first Put = %v, %v; want created", created, err)
	}
	r, err := n.B.Room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if r.Owner != Subject(1) || r.Capacity != 10 || r.Locked || r.LobbyEnabled || r.PasscodeSet || r.Tags == nil || len(r.Tags) != 0 {
		t.Fatalf("new room = %+v, want owner user-1, capacity 10 (default), nothing set, empty tags", r)
	}
	created, err = n.B.Put(ctx, room, Subject(2), rooms.SettingsChange{
		Capacity: ptr(3), LobbyEnabled: ptr(true), E2EERequired: ptr(true), Tags: ptr([]string{"board", "q:3"}),
	})
	if err != nil || created {
		t.Fatalf("second Put = %v, %v; want updated", created, err)
	}
	f := facts(t, n.A, room, "")
	want := rooms.Facts{Exists: true, Owner: Subject(1), Capacity: 3, LobbyEnabled: true, E2EERequired: true, Tags: []string{"board", "q:3"}}
	if !equalFacts(f, want) {
		t.Fatalf("facts after update = %+v, want %+v (owner must not change)", f, want)
	}
}

func equalFacts(a, b rooms.Facts) bool { return reflect.DeepEqual(a, b) }

func testPutRejectsHostile(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	cases := []struct {
		name  string
		id    string
		owner rooms.SubjectKey
		ch    rooms.SettingsChange
	}{
		{"empty id", "", Subject(1), rooms.SettingsChange{}},
		{"path traversal", "../admin", Subject(1), rooms.SettingsChange{}},
		{"dot segment", "..", Subject(1), rooms.SettingsChange{}},
		{"slash", "a/b", Subject(1), rooms.SettingsChange{}},
		{"hash tag braces", "a}b{", Subject(1), rooms.SettingsChange{}},
		{"newline", "a\nb", Subject(1), rooms.SettingsChange{}},
		{"too long", string(make([]byte, 129)), Subject(1), rooms.SettingsChange{}},
		{"empty owner", "ok", "", rooms.SettingsChange{}},
		{"control char owner", "ok", "iss|\x00sub", rooms.SettingsChange{}},
		{"capacity zero", "ok", Subject(1), rooms.SettingsChange{Capacity: ptr(0)}},
		{"capacity negative", "ok", Subject(1), rooms.SettingsChange{Capacity: ptr(-1)}},
		{"capacity over max", "ok", Subject(1), rooms.SettingsChange{Capacity: ptr(501)}},
		{"plaintext passcode", "ok", Subject(1), rooms.SettingsChange{PasscodeHash: ptr("123456")}},
		{"bcrypt hash", "ok", Subject(1), rooms.SettingsChange{PasscodeHash: ptr("$2a$10$abcdefghijklmnopqrstuu")}},
		{"argon2i hash", "ok", Subject(1), rooms.SettingsChange{PasscodeHash: ptr("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")}},
		{"huge memory hash", "ok", Subject(1), rooms.SettingsChange{PasscodeHash: ptr("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")}},
		{"empty tag", "ok", Subject(1), rooms.SettingsChange{Tags: ptr([]string{""})}},
		{"tag with space", "ok", Subject(1), rooms.SettingsChange{Tags: ptr([]string{"a b"})}},
		{"too many tags", "ok", Subject(1), rooms.SettingsChange{Tags: ptr(make([]string, 33))}},
	}
	for _, tc := range cases {
		if _, err := n.A.Put(ctx, tc.id, tc.owner, tc.ch); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	if f := facts(t, n.B, "ok", ""); f.Exists {
		t.Fatal("a rejected Put created the room")
	}
}

func testCreateExisting(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	if err := n.A.Create(ctx, room, Subject(1), rooms.SettingsChange{Capacity: ptr(4), LobbyEnabled: ptr(true)}); err != nil {
		t.Fatalf("Create of a missing room: %v", err)
	}
	events := subscribe(t, n.A)
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	err := n.B.Create(ctx, room, Subject(2), rooms.SettingsChange{
		Capacity: ptr(9), LobbyEnabled: ptr(false), PasscodeHash: &hash, Locked: ptr(true), Tags: ptr([]string{"x"}),
	})
	wantErr(t, "Create of an existing room", err, rooms.ErrExists)
	want := rooms.Facts{Exists: true, Owner: Subject(1), Capacity: 4, LobbyEnabled: true, Tags: []string{}}
	if f := facts(t, n.A, room, ""); !equalFacts(f, want) {
		t.Fatalf("facts after a refused Create = %+v, want %+v (nothing may change)", f, want)
	}
	// The refused Create published nothing; the lock below is the first
	// event the subscriber sees.
	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events, rooms.EventLocked, 5*time.Second); e.Room != room {
		t.Fatalf("event %+v", e)
	}
	select {
	case e := <-events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
	if err := n.A.Create(ctx, "../x", Subject(1), rooms.SettingsChange{}); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("Create with a hostile id: %v, want ErrInvalid", err)
	}
}

// testCreateRace is the attack of issue 10: creators racing for one name
// on two nodes, each with its own settings. Exactly one wins; the room has
// the winner as owner and exactly the winner's settings.
func testCreateRace(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	const racers = 60
	for round := range 3 {
		id := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, racers)
		for i := range racers {
			s := n.A
			if i%2 == 1 {
				s = n.B
			}
			wg.Go(func() {
				<-start
				errs[i] = s.Create(t.Context(), id, Subject(i), rooms.SettingsChange{
					Capacity: ptr(i + 1), LobbyEnabled: ptr(i%3 == 0), Tags: ptr([]string{fmt.Sprintf("by-%d", i)}),
				})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("%s: racers %d and %d both created the room", id, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, rooms.ErrExists):
				t.Fatalf("%s: racer %d: %v, want nil or ErrExists", id, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no racer created the room", id)
		}
		want := rooms.Facts{Exists: true, Owner: Subject(winner), Capacity: winner + 1, LobbyEnabled: winner%3 == 0,
			Tags: []string{fmt.Sprintf("by-%d", winner)}}
		if f := facts(t, n.B, id, ""); !equalFacts(f, want) {
			t.Fatalf("%s: room = %+v, want exactly the winner's (racer %d) %+v", id, f, winner, want)
		}
	}
}

func testFactsMissingRoom(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	f := facts(t, n.A, "nobody-here", Subject(1))
	if f.Exists || f.Banned || f.Tags == nil {
		t.Fatalf("facts of a missing room = %+v, want exists=false, banned=false, tags=[]", f)
	}
}

func testFactsReflectState(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	put(t, n.A, room, rooms.SettingsChange{PasscodeHash: &hash, Locked: ptr(true)})
	f := facts(t, n.B, room, Subject(5))
	if !f.PasscodeRequired || f.PasscodeHash != hash || !f.Locked || f.HostPresent || f.Occupancy != 0 {
		t.Fatalf("facts = %+v", f)
	}
	host := admit(t, n.A, room, 1, rooms.RoleHost)
	p := admit(t, n.B, room, 2, rooms.RoleHost)
	if _, err := n.A.Remove(t.Context(), room, p.ID, true); err != nil {
		t.Fatal(err)
	}
	f = facts(t, n.B, room, Subject(2))
	if !f.HostPresent || f.Occupancy != 1 || !f.Banned {
		t.Fatalf("facts with one host left and subject 2 banned = %+v", f)
	}
	if err := n.A.Leave(t.Context(), room, host.ID); err != nil {
		t.Fatal(err)
	}
	f = facts(t, n.B, room, Subject(1))
	if f.HostPresent || f.Occupancy != 0 || f.Banned {
		t.Fatalf("facts after the host left = %+v, want no host, empty, subject 1 not banned", f)
	}
	if _, err := n.A.Put(t.Context(), room, Subject(0), rooms.SettingsChange{PasscodeHash: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if f := facts(t, n.B, room, ""); f.PasscodeRequired || f.PasscodeHash != "" {
		t.Fatalf("passcode still required after removing it: %+v", f)
	}
}

func testAdmitRules(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(2)})
	_, err := n.A.Admit(ctx, rooms.Admission{Room: "missing", Subject: Subject(1), Role: rooms.RoleHost})
	wantErr(t, "admit to missing room", err, rooms.ErrNotFound)

	p := admit(t, n.A, room, 9, rooms.RoleParticipant)
	if _, err := n.B.Remove(ctx, room, p.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, role := range []rooms.Role{rooms.RoleHost, rooms.RoleParticipant} {
		_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(9), Role: role})
		wantErr(t, "banned subject as "+string(role), err, rooms.ErrBanned)
	}

	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	for _, role := range []rooms.Role{rooms.RoleParticipant, rooms.RoleViewer} {
		_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: role})
		wantErr(t, "locked room as "+string(role), err, rooms.ErrLocked)
	}
	admit(t, n.B, room, 1, rooms.RoleHost)
	if err := n.A.Unlock(ctx, room); err != nil {
		t.Fatal(err)
	}
	admit(t, n.A, room, 2, rooms.RoleViewer)
	_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(3), Role: rooms.RoleHost})
	wantErr(t, "full room, even for a host", err, rooms.ErrRoomFull)

	for _, a := range []rooms.Admission{
		{Room: room, Subject: Subject(4), Role: "admin"},
		{Room: room, Subject: "", Role: rooms.RoleParticipant},
		{Room: room, Subject: Subject(4), Role: rooms.RoleParticipant, Name: "bad\x1b[31mname"},
		{Room: "bad room", Subject: Subject(4), Role: rooms.RoleParticipant},
	} {
		_, err = n.A.Admit(ctx, a)
		wantErr(t, "hostile admission", err, rooms.ErrInvalid)
	}
}

func testCapacityStorm(t *testing.T, h Harness) {
	const capacity, clients = 300, 302
	n := h.New(t, testConfig())
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(capacity)})
	var admitted, full atomic.Int64
	var mu sync.Mutex
	var other []error
	lat := make([]time.Duration, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		node := n.A
		if i%2 == 1 {
			node = n.B
		}
		wg.Go(func() {
			<-start
			t0 := time.Now()
			_, err := node.Admit(context.Background(), rooms.Admission{Room: room, Subject: Subject(1000 + i), Role: rooms.RoleParticipant})
			lat[i] = time.Since(t0)
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, rooms.ErrRoomFull):
				full.Add(1)
			default:
				mu.Lock()
				other = append(other, err)
				mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	if len(other) > 0 {
		t.Fatalf("%d admits failed otherwise, first: %v", len(other), other[0])
	}
	if admitted.Load() != capacity || full.Load() != clients-capacity {
		t.Fatalf("admitted %d, full %d; want exactly %d and %d", admitted.Load(), full.Load(), capacity, clients-capacity)
	}
	r, err := n.B.Room(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[rooms.ParticipantID]bool{}
	for _, p := range r.Participants {
		ids[p.ID] = true
	}
	if len(r.Participants) != capacity || len(ids) != capacity {
		t.Fatalf("room lists %d participants (%d distinct ids), want %d", len(r.Participants), len(ids), capacity)
	}
	if f := facts(t, n.A, room, ""); f.Occupancy != capacity {
		t.Fatalf("occupancy %d, want %d", f.Occupancy, capacity)
	}
	t.Logf("storm: %d concurrent admits over 2 nodes in %s; admit latency p50 %s p99 %s max %s",
		clients, wall, Quantile(lat, 0.5), Quantile(lat, 0.99), Quantile(lat, 1))
}

func testTouchRevocation(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	p := admit(t, n.A, room, 1, rooms.RoleParticipant)
	got, err := n.B.Touch(ctx, room, p.ID)
	if err != nil || got.ID != p.ID || got.Subject != p.Subject || got.Role != p.Role {
		t.Fatalf("Touch = %+v, %v; want %+v", got, err, p)
	}
	_, err = n.A.Touch(ctx, "other-room", p.ID)
	wantErr(t, "touch with another room", err, rooms.ErrNotAdmitted)
	if _, err := n.B.Remove(ctx, room, p.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []rooms.Store{n.A, n.B} {
		_, err = s.Touch(ctx, room, p.ID)
		wantErr(t, "touch after removal", err, rooms.ErrNotAdmitted)
	}
	wantErr(t, "leave after removal", n.A.Leave(ctx, room, p.ID), rooms.ErrNotAdmitted)
	_, err = n.A.Remove(ctx, room, p.ID, false)
	wantErr(t, "remove twice", err, rooms.ErrNotAdmitted)
	q := admit(t, n.A, room, 2, rooms.RoleParticipant)
	if err := n.B.Leave(ctx, room, q.ID); err != nil {
		t.Fatal(err)
	}
	_, err = n.A.Touch(ctx, room, q.ID)
	wantErr(t, "touch after leave", err, rooms.ErrNotAdmitted)
}

func testLeaseLapse(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.ParticipantLease = time.Second
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(2)})
	events := subscribe(t, n.B)
	kept := admit(t, n.A, room, 1, rooms.RoleHost)
	lapsing := admit(t, n.A, room, 2, rooms.RoleParticipant)
	n.Advance(600 * time.Millisecond)
	if _, err := n.B.Touch(ctx, room, kept.ID); err != nil {
		t.Fatalf("touch within the lease: %v", err)
	}
	n.Advance(600 * time.Millisecond)
	admit(t, n.B, room, 3, rooms.RoleParticipant) // only possible if the lapsed seat was freed
	_, err := n.A.Touch(ctx, room, lapsing.ID)
	wantErr(t, "touch after the lease lapsed", err, rooms.ErrNotAdmitted)
	if _, err := n.A.Touch(ctx, room, kept.ID); err != nil {
		t.Fatalf("renewed participant lost its seat: %v", err)
	}
	e := nextEvent(t, events, rooms.EventExpired, time.Second)
	if !slices.Equal(e.Revoked, []rooms.ParticipantID{lapsing.ID}) || e.Room != room {
		t.Fatalf("expired event = %+v, want revoked [%s]", e, lapsing.ID)
	}
}

func testBanAcrossNodes(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	events := subscribe(t, n.B)
	laptop := admit(t, n.A, room, 7, rooms.RoleParticipant)
	phone := admit(t, n.B, room, 7, rooms.RoleParticipant) // same person, second device, other node
	bystander := admit(t, n.B, room, 8, rooms.RoleParticipant)
	knock, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(7), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := n.A.Remove(ctx, room, laptop.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []rooms.ParticipantID{laptop.ID, phone.ID}
	slices.Sort(want)
	if rm.Subject != Subject(7) || !slices.Equal(rm.Revoked, want) {
		t.Fatalf("removal = %+v, want subject 7 and both of its admissions %v", rm, want)
	}
	e := nextEvent(t, events, rooms.EventBanned, time.Second)
	if e.Room != room || e.Subject != Subject(7) || !slices.Equal(e.Revoked, want) {
		t.Fatalf("event on the other node = %+v, want both admissions revoked", e)
	}
	for name, s := range map[string]rooms.Store{"A": n.A, "B": n.B} {
		for _, role := range []rooms.Role{rooms.RoleHost, rooms.RoleParticipant} {
			_, err := s.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(7), Role: role})
			wantErr(t, "rejoin on node "+name, err, rooms.ErrBanned)
		}
		_, err := s.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(7), Role: rooms.RoleParticipant})
		wantErr(t, "knock on node "+name, err, rooms.ErrBanned)
		for _, id := range want {
			_, err := s.Touch(ctx, room, id)
			wantErr(t, "old ticket's participant on node "+name, err, rooms.ErrNotAdmitted)
		}
		if banned, err := s.IsBanned(ctx, room, Subject(7)); err != nil || !banned {
			t.Fatalf("IsBanned on node %s = %v, %v", name, banned, err)
		}
	}
	if o, err := n.B.WaitStatus(ctx, room, knock.ID); err != nil || o.Status != rooms.Denied {
		t.Fatalf("banned subject's knock = %+v, %v; want denied", o, err)
	}
	if _, err := n.B.Touch(ctx, room, bystander.ID); err != nil {
		t.Fatalf("bystander lost its seat: %v", err)
	}
	r, err := n.B.Room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bans) != 1 || r.Bans[0].Subject != Subject(7) || len(r.Participants) != 1 || len(r.Waiting) != 0 {
		t.Fatalf("room after ban = %+v", r)
	}
	if err := n.B.Unban(ctx, room, Subject(7)); err != nil {
		t.Fatal(err)
	}
	admit(t, n.A, room, 7, rooms.RoleParticipant)
}

func testBanLatency(t *testing.T, h Harness) {
	const rounds = 100
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(rounds)})
	events := subscribe(t, n.B)
	lat := make([]time.Duration, 0, rounds)
	for i := range rounds {
		p := admit(t, n.A, room, 100+i, rooms.RoleParticipant)
		t0 := time.Now()
		if _, err := n.A.Remove(ctx, room, p.ID, true); err != nil {
			t.Fatal(err)
		}
		e := nextEvent(t, events, rooms.EventBanned, time.Second)
		lat = append(lat, time.Since(t0))
		if !slices.Contains(e.Revoked, p.ID) {
			t.Fatalf("round %d: event %+v does not revoke %s", i, e, p.ID)
		}
	}
	t.Logf("ban on node A to event on node B (%d rounds): p50 %s p99 %s max %s",
		rounds, Quantile(lat, 0.5), Quantile(lat, 0.99), Quantile(lat, 1))
}

func testKickWithoutBan(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	events := subscribe(t, n.B)
	p := admit(t, n.A, room, 1, rooms.RoleParticipant)
	rm, err := n.A.Remove(ctx, room, p.ID, false)
	if err != nil || !slices.Equal(rm.Revoked, []rooms.ParticipantID{p.ID}) {
		t.Fatalf("Remove = %+v, %v", rm, err)
	}
	e := nextEvent(t, events, rooms.EventRemoved, time.Second)
	if !slices.Equal(e.Revoked, []rooms.ParticipantID{p.ID}) || e.Subject != Subject(1) {
		t.Fatalf("removed event = %+v", e)
	}
	q := admit(t, n.B, room, 1, rooms.RoleParticipant)
	if q.ID == p.ID {
		t.Fatal("readmission reused the participant id; the old ticket would work again")
	}
	_, err = n.A.Remove(ctx, "missing", q.ID, false)
	wantErr(t, "remove in a missing room", err, rooms.ErrNotFound)
}

func testSetRole(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{LobbyEnabled: ptr(true)})
	events := subscribe(t, n.B)
	host := admit(t, n.A, room, 1, rooms.RoleHost)
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(2), Name: "Vi", Role: rooms.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	v, err := n.B.AdmitWaiting(ctx, room, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := n.A.SetRole(ctx, room, v.ID, rooms.RoleParticipant)
	if err != nil || ch.From != rooms.RoleViewer || ch.Participant.Role != rooms.RoleParticipant || ch.Participant.ID != v.ID ||
		ch.Participant.Subject != Subject(2) || ch.Participant.Name != "Vi" || !ch.Participant.JoinedAt.Equal(v.JoinedAt) {
		t.Fatalf("SetRole(viewer → participant) = %+v, %v", ch, err)
	}
	e := nextEvent(t, events, rooms.EventRoleChanged, time.Second)
	if e.Participant == nil || e.Participant.ID != v.ID || e.Participant.Role != rooms.RoleParticipant || e.Subject != Subject(2) || len(e.Revoked) != 0 {
		t.Fatalf("role_changed event on the other node = %+v", e)
	}
	// Every node's per-request check now answers with the new role.
	if p, err := n.B.Touch(ctx, room, v.ID); err != nil || p.Role != rooms.RoleParticipant {
		t.Fatalf("Touch on node B after the change = %+v, %v", p, err)
	}
	r, err := n.B.Room(ctx, room)
	if err != nil || len(r.Participants) != 2 {
		t.Fatalf("host view after the change = %+v, %v", r.Participants, err)
	}
	for _, p := range r.Participants {
		if want := map[rooms.ParticipantID]rooms.Role{host.ID: rooms.RoleHost, v.ID: rooms.RoleParticipant}[p.ID]; p.Role != want {
			t.Fatalf("host view after the change lists %+v; want role %q", p, want)
		}
	}
	// Setting the role it has changes nothing and tells no one.
	if ch, err := n.B.SetRole(ctx, room, v.ID, rooms.RoleParticipant); err != nil || ch.From != rooms.RoleParticipant {
		t.Fatalf("SetRole to the same role = %+v, %v", ch, err)
	}
	if ch, err := n.B.SetRole(ctx, room, v.ID, rooms.RoleViewer); err != nil || ch.From != rooms.RoleParticipant || ch.Participant.Role != rooms.RoleViewer {
		t.Fatalf("SetRole(participant → viewer) = %+v, %v", ch, err)
	}
	if e := nextEvent(t, events, rooms.EventRoleChanged, time.Second); e.Participant == nil || e.Participant.Role != rooms.RoleViewer {
		t.Fatalf("second role_changed event = %+v (the no-op must not publish)", e)
	}
	if p, err := n.A.Touch(ctx, room, v.ID); err != nil || p.Role != rooms.RoleViewer {
		t.Fatalf("Touch after the demotion = %+v, %v", p, err)
	}
	// Unknown admissions and rooms.
	if _, err := n.A.Remove(ctx, room, v.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = n.B.SetRole(ctx, room, v.ID, rooms.RoleParticipant)
	wantErr(t, "SetRole of a removed participant", err, rooms.ErrNotAdmitted)
	_, err = n.A.SetRole(ctx, "missing", host.ID, rooms.RoleViewer)
	wantErr(t, "SetRole in a missing room", err, rooms.ErrNotFound)
	_, err = n.A.SetRole(ctx, room, host.ID, rooms.Role("admin"))
	wantErr(t, "SetRole to an unknown role", err, rooms.ErrInvalid)
	if p, err := n.A.Touch(ctx, room, host.ID); err != nil || p.Role != rooms.RoleHost {
		t.Fatalf("host after refused changes = %+v, %v", p, err)
	}
}

func testSetRoleLimits(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	host := admit(t, n.A, room, 1, rooms.RoleHost)
	part := admit(t, n.A, room, 2, rooms.RoleParticipant)
	viewer := admit(t, n.B, room, 3, rooms.RoleViewer)
	for _, p := range []rooms.Participant{part, viewer} {
		_, err := n.B.SetRole(ctx, room, p.ID, rooms.RoleHost)
		wantErr(t, "SetRole("+string(p.Role)+" → host)", err, rooms.ErrRoleNotGranted)
	}
	// The only admitted host cannot be demoted, from either node.
	for _, s := range []rooms.Store{n.A, n.B} {
		_, err := s.SetRole(ctx, room, host.ID, rooms.RoleParticipant)
		wantErr(t, "demoting the last host", err, rooms.ErrLastHost)
	}
	// With a second host either may step down, and the host so admitted may
	// be made host again; the second demotion is refused once one is left.
	host2 := admit(t, n.B, room, 4, rooms.RoleHost)
	if _, err := n.A.SetRole(ctx, room, host.ID, rooms.RoleViewer); err != nil {
		t.Fatalf("demoting one of two hosts: %v", err)
	}
	_, err := n.B.SetRole(ctx, room, host2.ID, rooms.RoleParticipant)
	wantErr(t, "demoting the host left", err, rooms.ErrLastHost)
	if ch, err := n.B.SetRole(ctx, room, host.ID, rooms.RoleHost); err != nil || ch.From != rooms.RoleViewer {
		t.Fatalf("making the admitted host host again = %+v, %v", ch, err)
	}
	if f := facts(t, n.B, room, Subject(9)); !f.HostPresent {
		t.Fatalf("facts after role changes = %+v; want a host present", f)
	}
	// Hosts count as the store counts them: with both hosts demoted but one
	// (and that one removed) the room has no host.
	if _, err := n.A.SetRole(ctx, room, host2.ID, rooms.RoleParticipant); err != nil {
		t.Fatal(err)
	}
	if _, err := n.A.Remove(ctx, room, host.ID, false); err != nil {
		t.Fatal(err)
	}
	if f := facts(t, n.A, room, Subject(9)); f.HostPresent {
		t.Fatalf("facts with no host admitted = %+v; want no host present", f)
	}
}

func testLobbyFlow(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{LobbyEnabled: ptr(true)})
	events := subscribe(t, n.A)
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Name: "Ana", Role: rooms.RoleViewer,
		EmailDomain: "outside.example", Verdict: []string{rooms.VerdictGuest, rooms.VerdictMFA}})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events, rooms.EventKnocked, time.Second); e.Wait != w.ID {
		t.Fatalf("knocked event = %+v, want wait %s", e, w.ID)
	}
	if o, err := n.B.WaitStatus(ctx, room, w.ID); err != nil || o.Status != rooms.Waiting || o.Subject != Subject(1) {
		t.Fatalf("WaitStatus = %+v, %v; want waiting for subject 1", o, err)
	}
	if r, err := n.B.Room(ctx, room); err != nil || len(r.Waiting) != 1 || r.Waiting[0].ID != w.ID || r.Waiting[0].Name != "Ana" ||
		r.Waiting[0].EmailDomain != "outside.example" || !slices.Equal(r.Waiting[0].Verdict, []string{rooms.VerdictGuest, rooms.VerdictMFA}) {
		t.Fatalf("host view of lobby = %+v, %v; want Ana of outside.example, guest with mfa", r.Waiting, err)
	}
	type result struct {
		o   rooms.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, err := n.A.Await(ctx, room, w.ID)
		done <- result{o, err}
	}()
	time.Sleep(50 * time.Millisecond) // let Await block first: the waiter is usually early
	p, err := n.B.AdmitWaiting(ctx, room, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != Subject(1) || p.Role != rooms.RoleViewer || p.Name != "Ana" {
		t.Fatalf("admitted participant = %+v, want subject 1 as viewer named Ana", p)
	}
	select {
	case r := <-done:
		if r.err != nil || r.o.Status != rooms.Admitted || r.o.Participant.ID != p.ID || r.o.Subject != Subject(1) {
			t.Fatalf("Await on the other node = %+v, %v; want admitted as %s", r.o, r.err, p.ID)
		}
	case <-time.After(time.Second):
		t.Fatal("Await did not return within a second of the admission on the other node")
	}
	if e := nextEvent(t, events, rooms.EventLobbyAdmitted, time.Second); e.Wait != w.ID || e.Participant == nil || e.Participant.ID != p.ID {
		t.Fatalf("lobby_admitted event = %+v", e)
	}
	if _, err := n.A.Touch(ctx, room, p.ID); err != nil {
		t.Fatalf("admitted-from-lobby participant is not admitted: %v", err)
	}
	_, err = n.A.AdmitWaiting(ctx, room, w.ID)
	wantErr(t, "admitting the same knock twice", err, rooms.ErrNotFound)

	w2, err := n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.A.DenyWaiting(ctx, room, w2.ID, false); err != nil {
		t.Fatal(err)
	}
	o, err := n.B.Await(ctx, room, w2.ID)
	if err != nil || o.Status != rooms.Denied || o.Participant.ID != "" {
		t.Fatalf("Await after deny = %+v, %v; want denied with no participant", o, err)
	}
	wantErr(t, "deny twice", n.A.DenyWaiting(ctx, room, w2.ID, false), rooms.ErrNotFound)
	if _, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant}); err != nil {
		t.Fatalf("a denied subject (not banned) may knock again: %v", err)
	}
	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	_, err = n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(3), Role: rooms.RoleParticipant})
	wantErr(t, "knock on a locked room", err, rooms.ErrLocked)
	_, err = n.B.Knock(ctx, rooms.Admission{Room: "missing", Subject: Subject(3), Role: rooms.RoleParticipant})
	wantErr(t, "knock on a missing room", err, rooms.ErrNotFound)
}

func testLobbyCaps(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.LobbyPerRoom, cfg.LobbyPerIdentity = 4, 2
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{LobbyEnabled: ptr(true)})
	put(t, n.A, "other", rooms.SettingsChange{LobbyEnabled: ptr(true)})
	knock := func(s rooms.Store, id string, subject int) error {
		_, err := s.Knock(ctx, rooms.Admission{Room: id, Subject: Subject(subject), Role: rooms.RoleParticipant})
		return err
	}
	if err := knock(n.B, "other", 1); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if err := knock(n.A, room, i); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "knock past the room cap", knock(n.B, room, 5), rooms.ErrLobbyFull)
	if err := knock(n.B, room, 4); err != nil {
		t.Fatalf("a second knock of someone waiting replaces the first, even in a full lobby: %v", err)
	}
	r, err := n.A.Room(ctx, room)
	if err != nil || len(r.Waiting) != 4 {
		t.Fatalf("waiting list has %d entries (%v), want the cap of 4", len(r.Waiting), err)
	}
	if err := n.A.DenyWaiting(ctx, room, r.Waiting[0].ID, false); err != nil {
		t.Fatal(err)
	}
	if err := knock(n.B, room, 5); err != nil {
		t.Fatalf("a freed slot must take a knock: %v", err)
	}
	if o, err := n.A.Room(ctx, "other"); err != nil || len(o.Waiting) != 1 {
		t.Fatalf("the other room's lobby = %+v, %v; knocks elsewhere replace nothing here", o.Waiting, err)
	}
}

// testKnockReplaces is the ghost of issue 10: a second knock by the same
// person (a new tab) replaces the first, so there is one entry to admit.
func testKnockReplaces(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{LobbyEnabled: ptr(true)})
	first, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Name: "Eve Guest", Role: rooms.RoleParticipant, Device: "Firefox on Linux"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Name: "Eve Guest", Role: rooms.RoleParticipant, Device: "Chrome on Linux"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := n.A.Room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Waiting) != 1 || r.Waiting[0].ID != second.ID || r.Waiting[0].Device != "Chrome on Linux" || r.Waiting[0].LastSeen.IsZero() {
		t.Fatalf("waiting = %+v, want only the second knock, with its device and last heartbeat", r.Waiting)
	}
	_, err = n.B.WaitStatus(ctx, room, first.ID)
	wantErr(t, "status of the replaced knock", err, rooms.ErrNotFound)
	_, err = n.A.AdmitWaiting(ctx, room, first.ID)
	wantErr(t, "admitting the replaced knock", err, rooms.ErrNotFound)
	wantErr(t, "heartbeat of the replaced knock", n.A.Heartbeat(ctx, room, first.ID), rooms.ErrNotFound)
	if _, err := n.A.AdmitWaiting(ctx, room, second.ID); err != nil {
		t.Fatalf("admitting the live knock: %v", err)
	}
}

// testKnockHeartbeat: a knock lives KnockTTL after its last heartbeat, so
// a closed waiting page leaves the lobby; never longer than WaitTTL.
func testKnockHeartbeat(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.KnockTTL, cfg.KnockHeartbeat, cfg.WaitTTL = 2*time.Second, 500*time.Millisecond, 4*time.Second
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{LobbyEnabled: ptr(true)})
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	n.Advance(1200 * time.Millisecond)
	if err := n.B.Heartbeat(ctx, room, w.ID); err != nil {
		t.Fatalf("heartbeat of a live knock: %v", err)
	}
	n.Advance(1200 * time.Millisecond)
	if o, err := n.B.WaitStatus(ctx, room, w.ID); err != nil || o.Status != rooms.Waiting {
		t.Fatalf("a knock renewed 1.2s ago (2.4s old, knock TTL 2s) = %+v, %v; want waiting", o, err)
	}
	n.Advance(2500 * time.Millisecond)
	_, err = n.A.WaitStatus(ctx, room, w.ID)
	wantErr(t, "status of a knock whose client stopped", err, rooms.ErrNotFound)
	wantErr(t, "heartbeat of an expired knock", n.B.Heartbeat(ctx, room, w.ID), rooms.ErrNotFound)
	if r, err := n.A.Room(ctx, room); err != nil || len(r.Waiting) != 0 {
		t.Fatalf("lobby = %+v, %v; want empty", r.Waiting, err)
	}

	// However faithful the heartbeats, WaitTTL ends the wait.
	w, err = n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		n.Advance(1500 * time.Millisecond)
		if err := n.B.Heartbeat(ctx, room, w.ID); err != nil {
			t.Fatalf("heartbeat within WaitTTL: %v", err)
		}
	}
	n.Advance(1500 * time.Millisecond) // 1.5s after the last heartbeat, 4.5s after the knock
	wantErr(t, "heartbeat past WaitTTL", n.A.Heartbeat(ctx, room, w.ID), rooms.ErrNotFound)
}

func testLobbyAdmitFull(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(1)})
	host := admit(t, n.A, room, 1, rooms.RoleHost)
	w, err := n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.A.AdmitWaiting(ctx, room, w.ID)
	wantErr(t, "admit from lobby into a full room", err, rooms.ErrRoomFull)
	if o, err := n.B.WaitStatus(ctx, room, w.ID); err != nil || o.Status != rooms.Waiting {
		t.Fatalf("entry after a full-room refusal = %+v, %v; want still waiting", o, err)
	}
	if err := n.A.Leave(ctx, room, host.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := n.A.AdmitWaiting(ctx, room, w.ID); err != nil {
		t.Fatalf("a host's admission from the lobby goes through a lock: %v", err)
	}
}

func testLobbyDenyBan(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	events := subscribe(t, n.B)
	w1, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(6), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(6), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	p := admit(t, n.B, room, 6, rooms.RoleParticipant)
	if err := n.A.DenyWaiting(ctx, room, w2.ID, true); err != nil {
		t.Fatal(err)
	}
	if o, err := n.B.WaitStatus(ctx, room, w2.ID); err != nil || o.Status != rooms.Denied {
		t.Fatalf("knock after deny-and-ban = %+v, %v; want denied", o, err)
	}
	// The first knock was replaced by the second: gone, not waiting.
	_, err = n.B.WaitStatus(ctx, room, w1.ID)
	wantErr(t, "the replaced knock", err, rooms.ErrNotFound)
	if e := nextEvent(t, events, rooms.EventBanned, time.Second); !slices.Equal(e.Revoked, []rooms.ParticipantID{p.ID}) {
		t.Fatalf("banned event = %+v, want the subject's admission %s revoked", e, p.ID)
	}
	_, err = n.B.Touch(ctx, room, p.ID)
	wantErr(t, "banned subject's admission", err, rooms.ErrNotAdmitted)
	_, err = n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(6), Role: rooms.RoleParticipant})
	wantErr(t, "banned subject knocks again", err, rooms.ErrBanned)
}

func testLobbyWaitIDCrossRoom(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	put(t, n.A, "attacker-room", rooms.SettingsChange{})
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.B.AdmitWaiting(ctx, "attacker-room", w.ID)
	wantErr(t, "admitting another room's knock", err, rooms.ErrNotFound)
	wantErr(t, "denying another room's knock", n.B.DenyWaiting(ctx, "attacker-room", w.ID, true), rooms.ErrNotFound)
	_, err = n.B.WaitStatus(ctx, "attacker-room", w.ID)
	wantErr(t, "reading another room's knock", err, rooms.ErrNotFound)
	if err := n.A.DenyWaiting(ctx, room, w.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = n.B.WaitStatus(ctx, "attacker-room", w.ID)
	wantErr(t, "reading another room's outcome", err, rooms.ErrNotFound)
	_, err = n.B.WaitStatus(ctx, room, rooms.NewWaitID())
	wantErr(t, "guessed wait id", err, rooms.ErrNotFound)
}

func testLobbyExpiry(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.WaitTTL, cfg.LobbyPerIdentity = 500*time.Millisecond, 1
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	n.Advance(700 * time.Millisecond)
	_, err = n.B.WaitStatus(ctx, room, w.ID)
	wantErr(t, "status of an expired knock", err, rooms.ErrNotFound)
	_, err = n.B.AdmitWaiting(ctx, room, w.ID)
	wantErr(t, "admitting an expired knock", err, rooms.ErrNotFound)
	if _, err := n.B.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant}); err != nil {
		t.Fatalf("an expired knock must free the identity's slot: %v", err)
	}
}

func testAwaitContext(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	put(t, n.A, room, rooms.SettingsChange{})
	w, err := n.A.Knock(t.Context(), rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	o, err := n.B.Await(ctx, room, w.ID)
	if !errors.Is(err, context.DeadlineExceeded) || o.Status != rooms.Waiting {
		t.Fatalf("Await past its deadline = %+v, %v; want waiting and DeadlineExceeded", o, err)
	}
	_, err = n.B.Await(t.Context(), room, rooms.NewWaitID())
	wantErr(t, "Await on an unknown knock", err, rooms.ErrNotFound)
}

func testLock(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	events := subscribe(t, n.B)
	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events, rooms.EventLocked, time.Second); e.Room != room {
		t.Fatalf("locked event = %+v", e)
	}
	if f := facts(t, n.B, room, ""); !f.Locked {
		t.Fatal("other node does not see the lock")
	}
	_, err := n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(1), Role: rooms.RoleParticipant})
	wantErr(t, "admit into a locked room", err, rooms.ErrLocked)
	if _, err := n.A.Put(ctx, room, Subject(0), rooms.SettingsChange{Locked: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, rooms.EventUnlocked, time.Second)
	admit(t, n.B, room, 1, rooms.RoleParticipant)
	wantErr(t, "lock a missing room", n.A.Lock(ctx, "missing"), rooms.ErrNotFound)
}

func testSuspend(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	events := subscribe(t, n.B)
	host := admit(t, n.A, room, 1, rooms.RoleHost)
	var others []rooms.ParticipantID
	for i := 2; i <= 4; i++ {
		role := rooms.RoleParticipant
		if i == 4 {
			role = rooms.RoleViewer
		}
		others = append(others, admit(t, n.B, room, i, role).ID)
	}
	slices.Sort(others)
	w, err := n.A.Knock(ctx, rooms.Admission{Room: room, Subject: Subject(9), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := n.A.Suspend(ctx, room)
	if err != nil || !slices.Equal(rm.Revoked, others) {
		t.Fatalf("Suspend = %+v, %v; want %v revoked", rm, err, others)
	}
	if e := nextEvent(t, events, rooms.EventSuspended, time.Second); !slices.Equal(e.Revoked, others) {
		t.Fatalf("suspended event = %+v", e)
	}
	if _, err := n.B.Touch(ctx, room, host.ID); err != nil {
		t.Fatalf("host removed by suspend: %v", err)
	}
	for _, id := range others {
		_, err := n.B.Touch(ctx, room, id)
		wantErr(t, "non-host after suspend", err, rooms.ErrNotAdmitted)
	}
	if o, err := n.B.WaitStatus(ctx, room, w.ID); err != nil || o.Status != rooms.Denied {
		t.Fatalf("knock after suspend = %+v, %v; want denied", o, err)
	}
	f := facts(t, n.B, room, "")
	if !f.Locked || f.Occupancy != 1 || !f.HostPresent {
		t.Fatalf("facts after suspend = %+v, want locked with only the host", f)
	}
	_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant})
	wantErr(t, "rejoin after suspend", err, rooms.ErrLocked)
}

func testExpiry(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.EmptyRoomTTL, cfg.BanTTL = time.Second, time.Second
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	p := admit(t, n.A, room, 7, rooms.RoleParticipant)
	if _, err := n.B.Remove(ctx, room, p.ID, true); err != nil { // the room is empty from here
		t.Fatal(err)
	}
	n.Advance(500 * time.Millisecond)
	if !facts(t, n.B, room, "").Exists {
		t.Fatal("room ended before EmptyRoomTTL")
	}
	n.Advance(700 * time.Millisecond)
	if f := facts(t, n.B, room, Subject(7)); f.Exists || !f.Banned {
		t.Fatalf("facts after EmptyRoomTTL = %+v, want ended but subject 7 still banned", f)
	}
	_, err := n.A.Room(ctx, room)
	wantErr(t, "host view of an ended room", err, rooms.ErrNotFound)
	if banned, err := n.A.IsBanned(ctx, room, Subject(7)); err != nil || !banned {
		t.Fatalf("ban after the room ended = %v, %v; want still banned", banned, err)
	}
	n.Advance(1200 * time.Millisecond)
	if banned, err := n.B.IsBanned(ctx, room, Subject(7)); err != nil || banned {
		t.Fatalf("ban after EmptyRoomTTL+BanTTL = %v, %v; want lifted", banned, err)
	}
	// A room recreated while its bans live keeps them.
	put(t, n.A, "again", rooms.SettingsChange{})
	q := admit(t, n.A, "again", 8, rooms.RoleParticipant)
	if _, err := n.A.Remove(ctx, "again", q.ID, true); err != nil {
		t.Fatal(err)
	}
	n.Advance(1200 * time.Millisecond)
	if facts(t, n.A, "again", "").Exists {
		t.Fatal("room did not end")
	}
	if created, err := n.B.Put(ctx, "again", Subject(0), rooms.SettingsChange{}); err != nil || !created {
		t.Fatalf("recreate = %v, %v", created, err)
	}
	_, err = n.A.Admit(ctx, rooms.Admission{Room: "again", Subject: Subject(8), Role: rooms.RoleParticipant})
	wantErr(t, "banned subject in the recreated room", err, rooms.ErrBanned)
}

func testNoExpiry(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.EmptyRoomTTL, cfg.ParticipantLease = 500*time.Millisecond, 3*time.Second
	n := h.New(t, cfg)
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	put(t, n.A, "config-room", rooms.SettingsChange{Permanent: ptr(true)})
	p := admit(t, n.A, room, 1, rooms.RoleParticipant)
	n.Advance(time.Second)
	if _, err := n.B.Touch(ctx, room, p.ID); err != nil {
		t.Fatalf("occupied room ended: %v", err)
	}
	if !facts(t, n.B, "config-room", "").Exists {
		t.Fatal("permanent room ended")
	}
	if err := n.A.Leave(ctx, room, p.ID); err != nil {
		t.Fatal(err)
	}
	n.Advance(800 * time.Millisecond)
	if facts(t, n.B, room, "").Exists {
		t.Fatal("room still exists EmptyRoomTTL after its last participant left")
	}
}

func testSeed(t *testing.T, h Harness) {
	cfg := testConfig()
	cfg.EmptyRoomTTL = 300 * time.Millisecond
	n := h.New(t, cfg)
	ctx := t.Context()
	seed := []rooms.ConfiguredRoom{{ID: "all-hands", Owner: Subject(1),
		Settings: rooms.Settings{Capacity: 200, LobbyEnabled: true, Tags: []string{"company"}}}}
	if err := rooms.Seed(ctx, n.A, seed); err != nil {
		t.Fatal(err)
	}
	if err := n.A.Lock(ctx, "all-hands"); err != nil {
		t.Fatal(err)
	}
	if err := rooms.Seed(ctx, n.B, seed); err != nil { // the second node starts
		t.Fatal(err)
	}
	n.Advance(time.Second)
	r, err := n.B.Room(ctx, "all-hands")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Permanent || !r.Locked || r.Capacity != 200 || !r.LobbyEnabled || !slices.Equal(r.Tags, []string{"company"}) {
		t.Fatalf("seeded room = %+v, want permanent, still locked, configured settings", r)
	}
	bad := []rooms.ConfiguredRoom{{ID: "bad id", Owner: Subject(1)}}
	if err := rooms.Seed(ctx, n.A, bad); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("Seed with a bad id = %v, want ErrInvalid", err)
	}
}

// testSeedMissing: re-seeding after a data loss (what every node does when
// its link to Redis comes back) creates the configured rooms that are gone
// and must not touch one that exists. The attack: a re-seed that wrote the
// configuration over a live room would unlock it, undo a host's settings,
// or (by recreating it) end its admissions and lift its bans.
func testSeedMissing(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	seed := []rooms.ConfiguredRoom{
		{ID: "all-hands", Owner: Subject(1), Settings: rooms.Settings{Capacity: 200, Tags: []string{"company"}}},
		{ID: "town-hall", Owner: Subject(1), Settings: rooms.Settings{Capacity: 50, LobbyEnabled: true, E2EERequired: true}},
	}
	if err := rooms.Seed(ctx, n.A, seed[:1]); err != nil {
		t.Fatal(err)
	}
	// The live room: a host locks it, turns the lobby on, lowers the
	// capacity, bans subject 3; subject 2 is in.
	host := admit(t, n.A, "all-hands", 1, rooms.RoleHost)
	in := admit(t, n.A, "all-hands", 2, rooms.RoleParticipant)
	banned := admit(t, n.A, "all-hands", 3, rooms.RoleParticipant)
	if _, err := n.A.Remove(ctx, "all-hands", banned.ID, true); err != nil {
		t.Fatal(err)
	}
	put(t, n.A, "all-hands", rooms.SettingsChange{Locked: ptr(true), LobbyEnabled: ptr(true), Capacity: ptr(20)})
	before, err := n.A.Room(ctx, "all-hands")
	if err != nil {
		t.Fatal(err)
	}

	// The first pass creates only the missing room; the second finds
	// everything there and creates nothing.
	for pass, want := range [][]string{{"town-hall"}, nil} {
		created, err := rooms.SeedMissing(ctx, n.B, seed)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(created, want) {
			t.Fatalf("SeedMissing pass %d created %v, want %v", pass+1, created, want)
		}
	}
	after, err := n.B.Room(ctx, "all-hands")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("re-seeding changed a live room:\n before %+v\n after  %+v", before, after)
	}
	for _, p := range []rooms.Participant{host, in} {
		if _, err := n.B.Touch(ctx, "all-hands", p.ID); err != nil {
			t.Fatalf("admission %s ended by re-seeding: %v", p.ID, err)
		}
	}
	if ok, err := n.B.IsBanned(ctx, "all-hands", Subject(3)); err != nil || !ok {
		t.Fatalf("ban lifted by re-seeding: banned=%v err=%v", ok, err)
	}
	_, err = n.B.Admit(ctx, rooms.Admission{Room: "all-hands", Subject: Subject(4), Name: "n", Role: rooms.RoleParticipant})
	wantErr(t, "Admit into the locked room after re-seeding", err, rooms.ErrLocked)

	r, err := n.A.Room(ctx, "town-hall")
	if err != nil {
		t.Fatalf("missing room not created: %v", err)
	}
	if !r.Permanent || r.Locked || r.Capacity != 50 || !r.LobbyEnabled || !r.E2EERequired || r.Owner != Subject(1) {
		t.Fatalf("re-created room = %+v, want the configured permanent room", r)
	}
	bad := []rooms.ConfiguredRoom{{ID: "bad id", Owner: Subject(1)}}
	if _, err := rooms.SeedMissing(ctx, n.A, bad); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("SeedMissing with a bad id = %v, want ErrInvalid", err)
	}
}

func testSubscribeContext(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := n.A.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel, want closed channel")
		}
	case <-time.After(time.Second):
		t.Fatal("subscription still open a second after its context ended")
	}
}

func testHostileArguments(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	for _, pid := range []rooms.ParticipantID{"", "x", "../../etc", rooms.ParticipantID(make([]byte, 4096)), "AAAAAAAAAAAAAAAAAAAAAA=="} {
		_, err := n.A.Touch(ctx, room, pid)
		wantErr(t, "Touch with a forged id", err, rooms.ErrInvalid)
		_, err = n.B.Remove(ctx, room, pid, true)
		wantErr(t, "Remove with a forged id", err, rooms.ErrInvalid)
		_, err = n.B.SetRole(ctx, room, pid, rooms.RoleHost)
		wantErr(t, "SetRole with a forged id", err, rooms.ErrInvalid)
	}
	for _, role := range []rooms.Role{"", "HOST", "admin", "host\x00", rooms.Role(make([]byte, 4096))} {
		_, err := n.A.SetRole(ctx, room, rooms.NewParticipantID(), role)
		wantErr(t, "SetRole to "+fmt.Sprintf("%.20q", role), err, rooms.ErrInvalid)
	}
	for _, wid := range []rooms.WaitID{"", "*", rooms.WaitID(make([]byte, 64))} {
		_, err := n.A.WaitStatus(ctx, room, wid)
		wantErr(t, "WaitStatus with a forged id", err, rooms.ErrInvalid)
	}
	_, err := n.A.Facts(ctx, "a\x00b", "")
	wantErr(t, "Facts with a NUL in the room", err, rooms.ErrInvalid)
	_, err = n.A.IsBanned(ctx, room, rooms.SubjectKey(make([]byte, 600)))
	wantErr(t, "IsBanned with a huge subject", err, rooms.ErrInvalid)
	_, err = n.A.Touch(ctx, room, rooms.NewParticipantID())
	wantErr(t, "Touch with a well-formed unknown id", err, rooms.ErrNotAdmitted)
}
