package e2eeapi_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestGateway_CredentialsRenewBeforeExpiryInALockedRoom: with credentials that live 6 seconds, two members of a
// locked room run past their first credentials' expiry over real HTTP. Each renews before it expires, each
// renewal is one audited epoch, the room stays locked, nobody is removed or raises an alarm, and both still
// decrypt each other. Before renewal, the first expiry took both out of the roster.
func TestGateway_CredentialsRenewBeforeExpiryInALockedRoom(t *testing.T) {
	const ttl = 6 * time.Second
	e := newEnv(t, envOptions{credentialTTL: ttl})
	const room = "long-meeting"
	alice, bob := e.user("alice"), e.user("bob")
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
	locked := max(ca.Status().Epoch, cb.Status().Epoch)
	first := []*e2ee.Credential{ca.Credential(), cb.Credential()}
	last := first[0].NotAfter
	if first[1].NotAfter.After(last) {
		last = first[1].NotAfter
	}
	time.Sleep(time.Until(last) + time.Second)
	st := e.settle([]*e2ee.Client{ca, cb}, 2)
	for i, c := range []*e2ee.Client{ca, cb} {
		if cred := c.Credential(); !cred.Renews(first[i]) || !cred.NotAfter.After(time.Now()) {
			t.Fatalf("client %d holds %s expiring %v: not renewed", i, cred.Hash().Short(), cred.NotAfter)
		}
	}
	if !st.Locked {
		t.Fatal("the room is no longer locked in the roster")
	}
	for _, ch := range st.Changes {
		if ch.Epoch > locked && (ch.Kind == e2ee.ChangeAdded || ch.Kind == e2ee.ChangeRemoved) {
			t.Fatalf("a renewal reported as a change: %+v", ch)
		}
	}
	exchangeFrames(t, []*e2ee.Client{ca, cb})
	for _, done := range []<-chan error{doneA, doneB} {
		select {
		case err := <-done:
			t.Fatalf("a client stopped: %v", err)
		default:
		}
	}
	renewed := 0
	for _, ev := range e.auditEvents("e2ee.epoch") {
		if ev.Str("reason") == "credential_renewed" {
			renewed++
		}
	}
	if renewed < 2 {
		t.Fatalf("%d credential_renewed epochs audited, want one per renewal (at least 2)", renewed)
	}
}

// TestGateway_WebClientRenewsBesideAGoClientInALockedRoom: the TypeScript client (under Node) and a Go client
// in a locked room with 6-second credentials: both renew (the web client's renewal and the Go client's are each
// one epoch the other accepts in the locked roster), neither alarms nor leaves, and they still share keys after
// their first credentials expired.
func TestGateway_WebClientRenewsBesideAGoClientInALockedRoom(t *testing.T) {
	const ttl = 6 * time.Second
	e := newEnv(t, envOptions{credentialTTL: ttl})
	const room = "long-interop"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	e.admit(bob, room, rooms.RoleParticipant)
	ca := e.client(alice, room, 0)
	_, doneA := e.run(ca)
	web := e.startWebClient(t, bob, room)
	e.settledWith(web, []*e2ee.Client{ca}, 2)
	if err := e.rooms.Lock(e.ctx, room); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice sees the lock", func() bool { return ca.Status().Locked })
	first := ca.Credential()
	time.Sleep(time.Until(first.NotAfter) + 2*time.Second)
	st, l := e.settledWith(web, []*e2ee.Client{ca}, 2)
	if cred := ca.Credential(); !cred.Renews(first) || !st.Locked {
		t.Fatalf("alice holds %s (locked %v): not renewed", cred.Hash().Short(), st.Locked)
	}
	registered := 0
	for _, ev := range e.auditEvents("e2ee.key_registered") {
		if ev.Str("subject") == "bob-sub" {
			registered++
		}
	}
	if registered < 2 {
		t.Fatalf("the web client registered %d times: it never renewed", registered)
	}
	if l.Alarm != "" || l.Exit != "" {
		t.Fatalf("web client: %+v", l)
	}
	frame, _ := hex.DecodeString(l.Frame)
	if _, _, err := ca.Decrypt([]byte("interop"), frame); err != nil {
		t.Fatalf("alice cannot decrypt the web client's frame after the renewals: %v", err)
	}
	select {
	case err := <-doneA:
		t.Fatalf("alice stopped: %v", err)
	default:
	}
}
