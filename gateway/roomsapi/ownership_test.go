package roomsapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

// TestCreate_ConfiguredRoomIsOnlyCreatedByItsHosts: data.json reserves
// "board" for board-members. Staff and room creators may create other
// rooms, but not this one, even when it does not exist; once a board
// member has created it, a staff member who joins is a participant, not
// a host, and cannot change it.
func TestCreate_ConfiguredRoomIsOnlyCreatedByItsHosts(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	put := func(w who, room string, body any) reply {
		return call(t, nil, http.MethodPut, n.apiURL(room), c.token(w), body)
	}
	mallory := staff("mallory")
	creator := who{sub: "cora", email: "cora@example.com", groups: []string{"meeting-creators"}}
	for _, w := range []who{mallory, creator} {
		r := put(w, "board", map[string]any{"passcode": "1234", "lobby_enabled": false})
		if r.Status != http.StatusForbidden {
			t.Fatalf("%s squats the reserved room: %d %s", w.sub, r.Status, r.Body)
		}
		if other := put(guest("gus"), "no-such-room", map[string]any{}); comparable(r, "board") != comparable(other, "no-such-room") {
			t.Errorf("refusal to %s differs from a non-creator's:\n%s\n%s", w.sub, comparable(r, "board"), comparable(other, "no-such-room"))
		}
	}
	if r := put(mallory, "standup", map[string]any{}); r.Status != http.StatusCreated {
		t.Fatalf("staff creating an unreserved room: %d %s", r.Status, r.Body)
	}
	bea := who{sub: "bea", email: "bea@example.com", groups: []string{"board-members"}}
	if r := put(bea, "board", map[string]any{"tags": []string{"confidential"}}); r.Status != http.StatusCreated {
		t.Fatalf("board member creating the board room: %d %s", r.Status, r.Body)
	}
	if r := put(mallory, "board", map[string]any{"locked": true}); r.Status == http.StatusOK {
		t.Fatalf("staff changed the board room: %d %s", r.Status, r.Body)
	}
}

// TestCreate_BannedPersonCannotRecreateTheEndedRoom: a host bans mallory
// (staff, who may create rooms); the room ends; mallory's attempt to create
// it again as its owner is refused exactly like anyone's who may not create
// rooms, while the host creates it again.
func TestCreate_BannedPersonCannotRecreateTheEndedRoom(t *testing.T) {
	clock := roomstest.NewClock()
	c := newCluster(t, clusterOptions{clock: clock.Now, rooms: func(r *rooms.Config) {
		r.EmptyRoomTTL, r.BanTTL = time.Minute, 24*time.Hour
	}})
	n := c.nodes[0]
	hal, mallory := host("hal"), staff("mallory")
	c.createRoom(n, hal, "retro", map[string]any{"lobby_enabled": false})
	_, pid := c.mustJoin(n, mallory, "retro")
	if r := call(t, nil, http.MethodPost, n.apiURL("retro/participants/"+pid+"/remove"), c.token(hal), map[string]any{"ban": true}); r.Status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.Status, r.Body)
	}
	clock.Advance(2 * time.Minute) // the room is empty and ends
	if r := call(t, nil, http.MethodGet, n.apiURL("retro"), c.token(hal), nil); r.Status != http.StatusNotFound {
		t.Fatalf("room did not end: %d %s", r.Status, r.Body)
	}
	r := call(t, nil, http.MethodPut, n.apiURL("retro"), c.token(mallory), map[string]any{"locked": true, "passcode": "1234"})
	if r.Status != http.StatusForbidden {
		t.Fatalf("banned person re-creates the room: %d %s", r.Status, r.Body)
	}
	other := call(t, nil, http.MethodPut, n.apiURL("no-such-room"), c.token(guest("gus")), map[string]any{})
	if comparable(r, "retro") != comparable(other, "no-such-room") {
		t.Errorf("the banned person's refusal differs from a non-creator's:\n%s\n%s", comparable(r, "retro"), comparable(other, "no-such-room"))
	}
	c.createRoom(n, hal, "retro", nil)
}

// TestJoin_HostCannotStripTheSecurityClassification: data.json classifies
// "board" as confidential (MFA and an end-to-end key). A host who creates
// it without tags, or removes them, does not open it to a staff member
// without MFA; and a host's "Confidential" counts as confidential.
func TestJoin_HostCannotStripTheSecurityClassification(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	bea := who{sub: "bea", email: "bea@example.com", groups: []string{"board-members"}}
	c.createRoom(n, bea, "board", map[string]any{"lobby_enabled": false, "tags": []string{}})
	c.createRoom(n, host("hal"), "retro", map[string]any{"lobby_enabled": false, "tags": []string{"Confidential"}})
	for _, room := range []string{"board", "retro"} {
		if r := c.join(n, c.token(staff("sam")), room, nil); r.Status != http.StatusForbidden {
			t.Errorf("staff without MFA joins %s: %d %s", room, r.Status, r.Body)
		}
	}
	if r := c.join(n, c.token(staff("sam")), "retro-open", nil); r.Status != http.StatusForbidden {
		t.Fatalf("missing room: %d", r.Status)
	}
	c.createRoom(n, host("hal"), "retro-open", map[string]any{"lobby_enabled": false, "tags": []string{"weekly"}})
	if r := c.join(n, c.token(staff("sam")), "retro-open", nil); r.Status != http.StatusOK {
		t.Errorf("staff joining an unclassified room: %d %s", r.Status, r.Body)
	}
}

// TestJoin_ConfusableEmailDomainsAreNotStaff: with kit.edu and an
// internationalised domain as staff domains, an address at "\u212Ait.edu"
// (Kelvin sign) or "\u0130..." waits in the lobby as a guest, while the
// IDN address is staff through its ASCII form.
func TestJoin_ConfusableEmailDomainsAreNotStaff(t *testing.T) {
	c := newCluster(t, clusterOptions{policyConfig: func(cfg map[string]any) {
		cfg["staff_domains"] = []string{"kit.edu", "istanbul.edu", "xn--bcher-kva.example"}
	}})
	n := c.nodes[0]
	c.createRoom(n, host("hal"), "retro", map[string]any{"lobby_enabled": true})
	for _, email := range []string{"mallory@\u212Ait.edu", "mallory@\u0130stanbul.edu", "mallory@\uff4bit.edu", "mallory@kit\u3002edu"} {
		r := c.join(n, c.token(who{sub: "m-" + email, email: email}), "retro", nil)
		if r.Status == http.StatusOK && r.str(t, "status") == "admitted" {
			t.Errorf("%q is admitted as staff: %s", email, r.Body)
		}
	}
	for _, email := range []string{"kim@KIT.edu", "j\u00f6rg@b\u00fccher.example"} {
		r := c.join(n, c.token(who{sub: "s-" + email, email: email}), "retro", nil)
		if r.Status != http.StatusOK || r.str(t, "status") != "admitted" || r.str(t, "role") != "participant" {
			t.Errorf("%q is not staff: %d %s", email, r.Status, r.Body)
		}
	}
}
