package roomsapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestActivity_HostsReadTheirRoomsRecentEvents: the console's Recent
// events come from the audit log, newest first, about this room only, with
// the names the host already sees and nothing else of the people involved
// (no subject, address or client IP). Everyone but a host of the room gets
// the 404 a missing room gets.
func TestActivity_HostsReadTheirRoomsRecentEvents(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "weekly", map[string]any{"lobby_enabled": true})
	c.createRoom(n, h, "other", nil)
	c.mustJoin(n, h, "weekly")
	bobTicket, bobPID := c.mustJoin(n, staff("bob"), "weekly")
	c.mustJoin(n, staff("zoe"), "other")
	wait := c.join(n, c.token(guest("gus")), "weekly", nil).str(t, "wait_id")
	if r := call(t, nil, http.MethodPost, n.apiURL("weekly/lobby/"+wait+"/deny"), c.token(h), map[string]any{"reason": "uninvited"}); r.Status != http.StatusOK {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("weekly/participants/"+bobPID+"/remove"), c.token(h), map[string]any{"ban": true, "reason": "disruptive"}); r.Status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.Status, r.Body)
	}

	r := call(t, nil, http.MethodGet, n.apiURL("weekly/activity"), c.token(h), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("activity: %d %s", r.Status, r.Body)
	}
	var got struct {
		Events []struct {
			Event, Decision, Reason, Who, By string
		} `json:"events"`
		Available bool `json:"events_available"`
	}
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got.Events {
		lines = append(lines, strings.TrimSpace(strings.Join([]string{e.Event, e.Decision, e.Reason, e.Who, "by=" + e.By}, " ")))
	}
	want := []string{
		"room.ban  disruptive bob by=hanna",
		"room.remove  disruptive bob by=hanna",
		// Gus is no longer in any of the room's lists: his name is not
		// the host's to see any more.
		"lobby.deny  uninvited  by=hanna",
		"lobby.knock    by=",
		"admission.decision lobby guest_lobby  by=",
		"admission.decision allow staff_domain bob by=",
		"admission.decision allow host_group hanna by=",
	}
	if !got.Available || len(lines) < len(want) || strings.Join(lines[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Fatalf("recent events:\n%s\nwant first:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, leak := range []string{"zoe", "@example.com", "@guest.test", "127.0.0.1", c.idp.URL} {
		if strings.Contains(string(r.Body), leak) {
			t.Errorf("activity shows %q: %s", leak, r.Body)
		}
	}

	// Not a host of this room: the answer of a missing room.
	missing := call(t, nil, http.MethodGet, n.apiURL("nosuchroom/activity"), c.token(staff("zed")), nil)
	for name, rr := range map[string]reply{
		"banned participant":   call(t, nil, http.MethodGet, n.apiURL("weekly/activity"), c.token(staff("bob")), nil, "Meetguard-Ticket", bobTicket),
		"host of another room": call(t, nil, http.MethodGet, n.apiURL("weekly/activity"), c.token(staff("zoe")), nil),
		"guest":                call(t, nil, http.MethodGet, n.apiURL("weekly/activity"), c.token(guest("gus")), nil),
	} {
		if rr.Status != http.StatusNotFound || string(rr.Body) != string(missing.Body) {
			t.Errorf("%s: %d %s, want the missing room's %d %s", name, rr.Status, rr.Body, missing.Status, missing.Body)
		}
	}
}
