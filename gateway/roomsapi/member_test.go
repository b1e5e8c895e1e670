package roomsapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/policy"
)

// keyDevices reports a registered end-to-end key for the subjects listed.
type keyDevices map[string]bool

func (d keyDevices) DeviceFacts(_ context.Context, _ string, id identity.Identity) (policy.Device, error) {
	return policy.Device{KeyRegistered: d[id.Subject], PQ: d[id.Subject]}, nil
}

// TestMember_AndCanRegisterKey is the contract the end-to-end key API
// relies on.
func TestMember_AndCanRegisterKey(t *testing.T) {
	c := newCluster(t, clusterOptions{devices: keyDevices{"kim": true, "gus": true}})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "secret", map[string]any{"e2ee_required": true, "lobby_enabled": true})
	c.createRoom(n, h, "closed", map[string]any{"locked": true})

	// Kim and Gus have keys: she gets in, he waits. Bob has none: refused
	// until he has one.
	kimTicket, kimPID := c.mustJoin(n, staff("kim"), "secret")
	if r := c.join(n, c.token(staff("bob")), "secret", nil); r.Status != http.StatusForbidden {
		t.Fatalf("bob without a key: %d %s", r.Status, r.Body)
	}
	gusWait := c.join(n, c.token(guest("gus")), "secret", nil)
	if gusWait.Status != http.StatusAccepted {
		t.Fatalf("guest with a key knocks: %d %s", gusWait.Status, gusWait.Body)
	}

	people := map[string]who{"kim": staff("kim"), "bob": staff("bob"), "gus": guest("gus")}
	asCaller := func(sub string, hdr ...string) *http.Request {
		w := people[sub]
		r, _ := http.NewRequest(http.MethodPost, "/.meetguard/api/v1/e2ee/secret", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r.WithContext(identity.With(r.Context(), identity.Identity{
			Issuer: c.idp.URL, Subject: w.sub, Email: w.email, EmailVerified: true, Groups: w.groups, Via: identity.ViaBearer,
		}))
	}

	p, err := n.api.Member(asCaller("kim", roomsapi.TicketHeader, kimTicket), "secret")
	if err != nil || p.ParticipantID != kimPID || p.Role != "participant" || p.Room != "secret" {
		t.Fatalf("Member(kim) = %+v, %v", p, err)
	}
	notMembers := []struct {
		name string
		req  *http.Request
		room string
	}{
		{"no ticket", asCaller("bob"), "secret"},
		{"someone else's ticket", asCaller("bob", roomsapi.TicketHeader, kimTicket), "secret"},
		{"ticket for another room", asCaller("kim", roomsapi.TicketHeader, kimTicket), "closed"},
		{"waiting guest", asCaller("gus"), "secret"},
		{"no identity", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, "/", nil); return r }(), "secret"},
		{"invalid room", asCaller("kim", roomsapi.TicketHeader, kimTicket), "../secret"},
	}
	for _, tc := range notMembers {
		if _, err := n.api.Member(tc.req, tc.room); !errors.Is(err, roomsapi.ErrNotMember) {
			t.Errorf("Member, %s: %v, want ErrNotMember", tc.name, err)
		}
	}

	keys := []struct {
		name    string
		req     *http.Request
		room    string
		allowed bool
		role    string
	}{
		{"member", asCaller("kim", roomsapi.TicketHeader, kimTicket), "secret", true, "participant"},
		{"staff who would get in with a key", asCaller("bob"), "secret", true, "participant"},
		{"guest the policy sends to the lobby", asCaller("gus"), "secret", false, ""},
		{"locked room", asCaller("bob"), "closed", false, ""},
		{"missing room", asCaller("bob"), "nosuchroom", false, ""},
	}
	for _, tc := range keys {
		err := n.api.CanRegisterKey(tc.req, tc.room)
		if tc.allowed && err != nil {
			t.Errorf("CanRegisterKey, %s: %v, want nil", tc.name, err)
		}
		if !tc.allowed && !errors.Is(err, roomsapi.ErrNotMember) {
			t.Errorf("CanRegisterKey, %s: %v, want ErrNotMember", tc.name, err)
		}
		role, err := n.api.ForecastRole(tc.req, tc.room)
		if tc.allowed && (err != nil || role != tc.role) {
			t.Errorf("ForecastRole, %s: %q, %v, want %q", tc.name, role, err, tc.role)
		}
	}
	// Asking changed nothing: bob is still not admitted.
	if _, err := n.api.Member(asCaller("bob"), "secret"); !errors.Is(err, roomsapi.ErrNotMember) {
		t.Errorf("CanRegisterKey admitted bob: %v", err)
	}
}
