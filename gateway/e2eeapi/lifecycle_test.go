package e2eeapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestRegister_KeyBeforeAdmissionInE2EERequiredRoom breaks the chicken-and-egg of rooms that admit no one
// without a registered key: the key is registered first, the policy sees it in the device facts, and the
// admission takes it into the roster (at once through OnAdmitted, or on the member's first request).
func TestRegister_KeyBeforeAdmissionInE2EERequiredRoom(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "secure"
	alice, bob, gina, hank := e.user("alice"), e.user("bob"), e.user("gina"), e.user("hank")
	required := true
	e.createRoom(room, alice, rooms.SettingsChange{E2EERequired: &required})

	if d, err := e.api.DeviceFacts(e.ctx, room, alice.id); err != nil || d.KeyRegistered {
		t.Fatalf("device facts before registration: %+v, %v", d, err)
	}
	ca := e.client(alice, room, 0)
	cred, err := ca.Register(e.ctx)
	if err != nil {
		t.Fatalf("register before admission: %v", err)
	}
	if cred.Role != e2ee.RoleHost {
		t.Fatalf("the owner's key was registered as %v, want the forecast host", cred.Role)
	}
	d, err := e.api.DeviceFacts(e.ctx, room, alice.id)
	if err != nil || !d.KeyRegistered || !d.PQ || !strings.HasPrefix(d.KeyFingerprint, "SHA256:") {
		t.Fatalf("device facts after registration: %+v, %v", d, err)
	}
	// Another session of the same person has no key here.
	other := alice.id
	other.SessionID = "another-session"
	if d, _ := e.api.DeviceFacts(e.ctx, room, other); d.KeyRegistered {
		t.Fatal("a key registered by one session is reported for another")
	}
	// Registered is not admitted: the roster stays closed.
	if resp, b := e.call(alice, "GET", room, "roster", "since=0", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("roster before admission: %d %s", resp.StatusCode, b)
	}

	p := e.admit(alice, room, rooms.RoleHost)
	if err := e.api.OnAdmitted(e.ctx, room, admission.Participant{Identity: alice.id, Room: room, Role: string(p.Role), ParticipantID: string(p.ID)}); err != nil {
		t.Fatal(err)
	}
	e.run(ca)
	e.settle([]*e2ee.Client{ca}, 1)

	// Bob is admitted without OnAdmitted: his first request takes his key in.
	cb := e.client(bob, room, 0)
	if _, err := cb.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.admit(bob, room, rooms.RoleParticipant)
	e.run(cb)
	e.settle([]*e2ee.Client{ca, cb}, 2)
	exchangeFrames(t, []*e2ee.Client{ca, cb})

	// Gina's key was registered for a participant, but a host let her in as a host: a credential cannot
	// change its role, so the key is refused and she must register again.
	cg := e.client(gina, room, 0)
	if _, err := cg.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	pg := e.admit(gina, room, rooms.RoleHost)
	err = e.api.OnAdmitted(e.ctx, room, admission.Participant{Identity: gina.id, Room: room, Role: string(pg.Role), ParticipantID: string(pg.ID)})
	if !errors.Is(err, e2eeapi.ErrRoleChanged) {
		t.Fatalf("role change: %v", err)
	}
	if resp, b := e.call(gina, "GET", room, "roster", "since=0", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("roster after a refused key: %d %s", resp.StatusCode, b)
	}
	var roleChanged bool
	for _, en := range e.auditEvents("e2ee.rejected") {
		roleChanged = roleChanged || (en.Str("subject") == "gina-sub" && en.Str("reason") == "role_changed")
	}
	if !roleChanged {
		t.Error("the refused role change is not audited")
	}
	if _, err := e.client(gina, room, 0).Register(e.ctx); err != nil {
		t.Fatalf("register again as a member: %v", err)
	}

	// A banned person's registration waits no longer.
	ch := e.client(hank, room, 0)
	if _, err := ch.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	ph := e.admit(hank, room, rooms.RoleParticipant)
	if _, err := e.rooms.Remove(e.ctx, room, ph.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the banned person's key is dropped", func() bool {
		d, _ := e.api.DeviceFacts(e.ctx, room, hank.id)
		return !d.KeyRegistered
	})
}

// failingAudit is the real audit log with a switch that makes one event fail, as a full disk would.
type failingAudit struct {
	e2eeapi.Auditor
	event string
	fail  atomic.Bool
}

func (f *failingAudit) Record(ctx context.Context, event string, fields ...zap.Field) error {
	if f.fail.Load() && event == f.event {
		return errors.New("audit log unavailable: disk full")
	}
	return f.Auditor.Record(ctx, event, fields...)
}

// TestRegister_AuditFailureFailsClosed: a registration that cannot be recorded hands out no credential and
// admits nobody; once the log works again the same client registers.
func TestRegister_AuditFailureFailsClosed(t *testing.T) {
	fa := &failingAudit{event: "e2ee.key_registered"}
	e := newEnv(t, envOptions{membership: func(en *env) e2eeapi.Membership {
		fa.Auditor = en.auditLog
		return e2eeapi.TicketMembership{Store: en.rooms, Tickets: en.tickets}
	}, audit: fa})
	const room = "audited"
	alice := e.user("alice")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	ca := e.client(alice, room, 0)

	fa.fail.Store(true)
	_, err := ca.Register(e.ctx)
	var he *e2eehttp.Error
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("register without an audit log: %v", err)
	}
	if d, _ := e.api.DeviceFacts(e.ctx, room, alice.id); d.KeyRegistered {
		t.Fatal("an unaudited key is reported as registered")
	}
	if bytes.Contains(e.storeDump(), []byte("roster/")) {
		t.Fatal("an unaudited key was admitted to a roster")
	}

	fa.fail.Store(false)
	if _, err := ca.Register(e.ctx); err != nil {
		t.Fatalf("register once the log works: %v", err)
	}
	e.run(ca)
	e.settle([]*e2ee.Client{ca}, 1)
}

// TestRoster_FollowsRoomLockAndHostsStillJoin: the roster's lock follows the room's, and a host the rooms store
// lets into a locked room joins through an unlock every member sees, so no honest client raises an alarm.
func TestRoster_FollowsRoomLockAndHostsStillJoin(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "locked"
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	e.admit(bob, room, rooms.RoleParticipant)
	ca, cb := e.client(alice, room, 0), e.client(bob, room, 0)
	_, doneA := e.run(ca)
	_, doneB := e.run(cb)
	e.settle([]*e2ee.Client{ca, cb}, 2)

	if err := e.rooms.Lock(e.ctx, room); err != nil {
		t.Fatal(err)
	}
	eventually(t, "clients see the lock", func() bool { return ca.Status().Locked && cb.Status().Locked })
	st := e.settle([]*e2ee.Client{ca, cb}, 2)

	e.admit(carol, room, rooms.RoleHost) // hosts may enter locked rooms
	cc := e.client(carol, room, 0)
	e.run(cc)
	st3 := e.settle([]*e2ee.Client{ca, cb, cc}, 3)
	if !st3.Locked || st3.Epoch < st.Epoch+3 {
		t.Fatalf("after the host joined: locked %v, epoch %d -> %d (want unlock, admit, lock)", st3.Locked, st.Epoch, st3.Epoch)
	}
	for _, done := range []<-chan error{doneA, doneB} {
		select {
		case err := <-done:
			t.Fatalf("a client stopped: %v", err)
		default:
		}
	}
	if err := e.rooms.Unlock(e.ctx, room); err != nil {
		t.Fatal(err)
	}
	eventually(t, "clients see the unlock", func() bool { return !ca.Status().Locked && !cc.Status().Locked })
}

// TestMeeting_EndsWhenEveryoneLeaves: the last leave purges the meeting instance; the next registration starts
// a new one.
func TestMeeting_EndsWhenEveryoneLeaves(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "daily"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	pa, pb := e.admit(alice, room, rooms.RoleHost), e.admit(bob, room, rooms.RoleParticipant)
	ca, cb := e.client(alice, room, 0), e.client(bob, room, 0)
	e.run(ca)
	e.run(cb)
	e.settle([]*e2ee.Client{ca, cb}, 2)
	first := ca.Credential().Instance

	for _, pid := range []rooms.ParticipantID{pa.ID, pb.ID} {
		if err := e.rooms.Leave(e.ctx, room, pid); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the meeting's key exchange state is purged", func() bool { return len(e.storeDump()) == 0 })
	var ended bool
	for _, en := range e.auditEvents("e2ee.epoch") {
		ended = ended || (en.Str("reason") == "meeting_ended" && en.Str("instance") == first)
	}
	if !ended {
		t.Error("the end of the meeting is not audited")
	}

	e.admit(alice, room, rooms.RoleHost)
	cred, err := e.client(alice, room, 0).Register(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Instance == first {
		t.Fatal("the next meeting reuses the ended instance")
	}
}

// TestRoomStatus_FollowsTheSignedRoster: what the host console shows of a
// room's end-to-end meeting is the roster the gateway signed (epoch and
// members, both clients agreeing); asking about a room without one starts
// nothing.
func TestRoomStatus_FollowsTheSignedRoster(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "daily"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	if st, err := e.api.RoomStatus(e.ctx, room); err != nil || st.Active {
		t.Fatalf("before any key: %+v, %v", st, err)
	}
	if len(e.storeDump()) != 0 {
		t.Fatal("asking for the status started a meeting")
	}
	e.admit(alice, room, rooms.RoleHost)
	e.admit(bob, room, rooms.RoleParticipant)
	ca, cb := e.client(alice, room, 0), e.client(bob, room, 0)
	e.run(ca)
	e.run(cb)
	want := e.settle([]*e2ee.Client{ca, cb}, 2)
	st, err := e.api.RoomStatus(e.ctx, room)
	if err != nil || !st.Active || st.Members != 2 || st.Epoch != want.Epoch {
		t.Fatalf("status = %+v, %v; want active, 2 members, epoch %d", st, err, want.Epoch)
	}
}
