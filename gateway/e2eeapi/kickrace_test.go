package e2eeapi_test

import (
	"testing"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestKick_SilentMemberLeavesTheRosterWhateverItsCommitterSlot is the browser meeting's kick at the Go level: a
// member whose client went silent before the kick (a page that ignores its removal) is kicked. Whichever slot
// the silent member held in the designated-committer order, the others move to an epoch without it. Run for
// several meetings so the silent member is the designated committer of the next epoch in some of them.
func TestKick_SilentMemberLeavesTheRosterWhateverItsCommitterSlot(t *testing.T) {
	for i := range 3 {
		e := newEnv(t, envOptions{})
		room := "kick-" + string(rune('a'+i))
		alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
		e.createRoom(room, alice, rooms.SettingsChange{})
		e.admit(alice, room, rooms.RoleHost)
		pb := e.admit(bob, room, rooms.RoleParticipant)
		e.admit(carol, room, rooms.RoleParticipant)
		ca, cb, cc := e.client(alice, room, 0), e.client(bob, room, 0), e.client(carol, room, 0)
		e.run(ca)
		stopBob, _ := e.run(cb)
		e.run(cc)
		before := e.settle([]*e2ee.Client{ca, cb, cc}, 3)
		stopBob()
		if _, err := e.rooms.Remove(e.ctx, room, pb.ID, false); err != nil {
			t.Fatal(err)
		}
		after := e.settle([]*e2ee.Client{ca, cc}, 2)
		if after.Epoch <= before.Epoch {
			t.Fatalf("meeting %d: epoch %d after the kick, %d before", i, after.Epoch, before.Epoch)
		}
	}
}

// TestKick_WhileAnotherEpochIsBeingCommitted kicks a silent member right after a newcomer's admission started
// an epoch that nobody has committed yet: the kick must still start an epoch without the kicked member.
func TestKick_WhileAnotherEpochIsBeingCommitted(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "busy"
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	pb := e.admit(bob, room, rooms.RoleParticipant)
	e.admit(carol, room, rooms.RoleParticipant)
	ca, cb, cc := e.client(alice, room, 0), e.client(bob, room, 0), e.client(carol, room, 0)
	e.run(ca)
	stopBob, _ := e.run(cb)
	e.run(cc)
	e.settle([]*e2ee.Client{ca, cb, cc}, 3)
	stopBob()
	e.admit(dave, room, rooms.RoleParticipant)
	cd := e.client(dave, room, 0)
	if _, err := cd.Register(e.ctx); err != nil { // admitted into the roster: epoch started, not committed
		t.Fatal(err)
	}
	if _, err := e.rooms.Remove(e.ctx, room, pb.ID, false); err != nil {
		t.Fatal(err)
	}
	e.run(cd)
	e.settle([]*e2ee.Client{ca, cc, cd}, 3)
	for _, m := range ca.Status().Members {
		if m.Credential == cb.Credential().Hash() {
			t.Fatal("the kicked member is still in the roster")
		}
	}
}

// TestKick_BetweenAdmissionAndOnAdmitted is a removal that lands after the rooms API admitted someone whose key
// waits for the admission and before it called OnAdmitted: the removal's reconcile finds nothing bound to the
// admission, and OnAdmitted then takes the key of an admission that no longer exists into the roster. Nothing
// else would take it out before the next sweep (a minute): the kicked person would hold the keys of every
// epoch until then.
func TestKick_BetweenAdmissionAndOnAdmitted(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "window"
	alice, bob := e.user("alice"), e.user("bob")
	required := true
	e.createRoom(room, alice, rooms.SettingsChange{E2EERequired: &required})
	pa := e.admit(alice, room, rooms.RoleHost)
	ca := e.client(alice, room, 0)
	if err := e.api.OnAdmitted(e.ctx, room, admission.Participant{Identity: alice.id, Room: room, Role: string(pa.Role), ParticipantID: string(pa.ID)}); err != nil {
		t.Fatal(err)
	}
	e.run(ca)
	e.settle([]*e2ee.Client{ca}, 1)

	cb := e.client(bob, room, 0)
	if _, err := cb.Register(e.ctx); err != nil { // before admission: the key waits
		t.Fatal(err)
	}
	pb := e.admit(bob, room, rooms.RoleParticipant)
	if _, err := e.rooms.Remove(e.ctx, room, pb.ID, false); err != nil {
		t.Fatal(err)
	}
	// A lock after the removal: once the roster follows it, the follower has reconciled the removal too (one
	// follower handles the room's events in order).
	if err := e.rooms.Lock(e.ctx, room); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the roster follows the lock", func() bool {
		st, err := e.api.RoomStatus(e.ctx, room)
		return err == nil && st.Locked
	})
	if err := e.api.OnAdmitted(e.ctx, room, admission.Participant{Identity: bob.id, Room: room, Role: string(pb.Role), ParticipantID: string(pb.ID)}); err == nil {
		t.Error("OnAdmitted of an admission that ended reports no error")
	}
	st, err := e.api.RoomStatus(e.ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if st.Members != 1 {
		t.Fatalf("the roster has %d members after a removed admission's OnAdmitted, want 1 (alice)", st.Members)
	}
}
