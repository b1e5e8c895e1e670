package e2eeapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestClient_RefusedRosterShowsInStatus: a member whose ticket the gateway refuses can follow nothing more, and
// the Go client kept retrying its roster request every second while its Status said "member", no error: it
// looked healthy. Here bob's app swaps in a ticket the gateway signed for another room (as an app holding a
// stale or wrong ticket would): his status must name the refusal (ErrNotMember) while he keeps retrying, and
// once the app sends his ticket again the next roster clears it.
func TestClient_RefusedRosterShowsInStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "refused"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.createRoom("elsewhere", alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	e.admit(bob, room, rooms.RoleParticipant)
	e.admit(bob, "elsewhere", rooms.RoleParticipant)
	ca, cb := e.client(alice, room, 0), e.client(bob, room, 0)
	e.run(ca)
	_, bobDone := e.run(cb)
	e.settle([]*e2ee.Client{ca, cb}, 2)

	bob.mu.Lock()
	good := bob.tickets[room]
	bob.tickets[room] = bob.tickets["elsewhere"]
	bob.mu.Unlock()
	pollUntil(t, "bob's status names the refusal", func() (bool, string) {
		st := cb.Status()
		return st.State == e2ee.StateMember && errors.Is(st.Err, e2ee.ErrNotMember), fmt.Sprintf("%v, err %v", st.State, st.Err)
	})
	select {
	case err := <-bobDone:
		t.Fatalf("bob's client stopped on a refusal that may pass: %v", err)
	default:
	}

	bob.mu.Lock()
	bob.tickets[room] = good
	bob.mu.Unlock()
	pollUntil(t, "bob's status clears once the gateway serves him again", func() (bool, string) {
		_, err := settled([]*e2ee.Client{ca, cb}, 2)
		st := cb.Status()
		return err == nil && st.Err == nil, fmt.Sprintf("%v, err %v", err, st.Err)
	})
}
