package e2eeapi_test

import (
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// secondDevice is another login of u's person (same subject, another token and session): their phone.
func (e *env) secondDevice(u *user, name string) *user {
	e.t.Helper()
	claims := e.idp.Claims(e.idp.ClientID)
	claims["sub"] = u.name + "-sub"
	claims["name"] = u.id.DisplayName()
	claims["email"] = u.name + "@example.com"
	claims["exp"] = time.Now().Add(time.Hour + time.Minute).Unix() // another token, so another session
	tok := e.idp.Sign(e.t, claims, "")
	id, err := e.authn.VerifyBearer(e.ctx, tok)
	if err != nil {
		e.t.Fatal(err)
	}
	if id.Key() != u.id.Key() || id.SessionID == u.id.SessionID {
		e.t.Fatalf("second device: identity %q session %q", id.Key(), id.SessionID)
	}
	return &user{name: name, token: tok, id: id, tickets: map[string]string{}, pids: map[string]rooms.ParticipantID{}}
}

// TestGateway_LaptopAndPhoneOfOnePersonAreFirstClass is item 4 over real HTTP: alice on her laptop, bob and
// carol, then alice's phone joins. No client raises an alarm, all four decrypt each other's streams, every
// roster groups alice's two devices under her identity with their fingerprints, the laptop reports the phone
// as her device added while it was present, and the phone lists the laptop for confirmation.
func TestGateway_LaptopAndPhoneOfOnePersonAreFirstClass(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "two-devices"
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	phone := e.secondDevice(alice, "alice-phone")
	e.createRoom(room, alice, rooms.SettingsChange{})
	client := func(u *user) *e2ee.Client {
		c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: e.transport(u, room), AuthorityKey: e.api.PublicKey(),
			Room: room, ExpectIdentity: e2ee.Identity{Issuer: u.id.Issuer, Subject: u.id.Subject}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var clients []*e2ee.Client
	runs := map[*e2ee.Client]<-chan error{}
	join := func(u *user, role rooms.Role) *e2ee.Client {
		e.admit(u, room, role)
		c := client(u)
		_, done := e.run(c)
		runs[c] = done
		clients = append(clients, c)
		return c
	}
	laptop := join(alice, rooms.RoleHost)
	join(bob, rooms.RoleParticipant)
	join(carol, rooms.RoleParticipant)
	e.settle(clients, 3)
	cp := join(phone, rooms.RoleHost)
	st := e.settle(clients, 4)
	exchangeFrames(t, clients)

	for c, done := range runs {
		select {
		case err := <-done:
			t.Fatalf("a client stopped: %v", err)
		default:
		}
		if s := c.Status(); s.State != e2ee.StateMember {
			t.Fatalf("client state %v", s.State)
		}
	}
	groups := st.Devices()
	if len(groups) != 3 {
		t.Fatalf("%d identities in the roster, want 3: %+v", len(groups), groups)
	}
	var aliceDevices []string
	for _, g := range groups {
		if g[0].Identity.Subject == alice.id.Subject {
			for _, m := range g {
				aliceDevices = append(aliceDevices, m.Fingerprint)
			}
		}
	}
	laptopFP, phoneFP := laptop.Credential().Fingerprint(), cp.Credential().Fingerprint()
	if len(aliceDevices) != 2 || !slices.Contains(aliceDevices, laptopFP) || !slices.Contains(aliceDevices, phoneFP) {
		t.Fatalf("alice's devices %v, want laptop %s and phone %s", aliceDevices, laptopFP, phoneFP)
	}

	ls := laptop.Status()
	var reported bool
	for _, ch := range ls.Changes {
		reported = reported || (ch.Kind == e2ee.ChangeOwnDeviceAdded && ch.Fingerprint == phoneFP)
	}
	if !reported || len(ls.Unconfirmed) != 0 {
		t.Fatalf("laptop: phone reported %v, unconfirmed %v", reported, ls.Unconfirmed)
	}
	for _, m := range ls.Members {
		if m.Fingerprint == phoneFP && (!m.OwnDevice || !m.Confirmed) {
			t.Fatalf("laptop's view of the phone: %+v", m)
		}
	}
	ps := cp.Status()
	if len(ps.Unconfirmed) != 1 || ps.Unconfirmed[0] != laptopFP {
		t.Fatalf("phone: unconfirmed %v, want the laptop %s", ps.Unconfirmed, laptopFP)
	}
	if err := cp.ConfirmDevice(laptopFP); err != nil {
		t.Fatal(err)
	}
	if ps := cp.Status(); len(ps.Unconfirmed) != 0 {
		t.Fatalf("after confirmation: %v", ps.Unconfirmed)
	}
}

// TestGateway_SameDeviceRejoiningReplacesItsOldEntry: a device that keeps its key (a browser reconnecting under a
// new admission while the old one lingers) must never appear twice in the roster, since two entries with one
// device key are an alarm at every client (ErrClone). The gateway takes the old entry out first.
func TestGateway_SameDeviceRejoiningReplacesItsOldEntry(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "rejoin"
	alice, bob := e.user("alice"), e.user("bob")
	again := e.secondDevice(alice, "alice-again")
	e.createRoom(room, alice, rooms.SettingsChange{})
	_, device, _ := ed25519.GenerateKey(nil)
	client := func(u *user) *e2ee.Client {
		c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: e.transport(u, room), AuthorityKey: e.api.PublicKey(),
			Room: room, DeviceKey: device})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.admit(alice, room, rooms.RoleHost)
	first := client(alice)
	e.run(first)
	e.admit(bob, room, rooms.RoleParticipant)
	cb := e.client(bob, room, 0)
	_, bobDone := e.run(cb)
	e.settle([]*e2ee.Client{first, cb}, 2)

	e.admit(again, room, rooms.RoleHost) // the old admission of the same device still stands
	second := client(again)
	e.run(second)
	go func() {
		if err := <-bobDone; err != nil {
			t.Logf("bob stopped: %v", err)
		}
	}()
	st := e.settle([]*e2ee.Client{second, cb}, 2)
	exchangeFrames(t, []*e2ee.Client{second, cb})
	select {
	case err := <-bobDone:
		t.Fatalf("bob stopped: %v", err)
	default:
	}
	if n := len(st.Devices()); n != 2 {
		t.Fatalf("%d identities, want alice once and bob", n)
	}
}
