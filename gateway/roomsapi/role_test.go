package roomsapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// roleOf is sub's role in room as the store has it.
func roleOf(t *testing.T, n *node, room, pid string) rooms.Role {
	t.Helper()
	r, err := n.store.Room(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Participants {
		if string(p.ID) == pid {
			return p.Role
		}
	}
	t.Fatalf("%s is not in %s", pid, room)
	return ""
}

func roleRecords(c *cluster) []*audit.Entry {
	var out []*audit.Entry
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventRoomRole {
			out = append(out, e)
		}
	}
	return out
}

// roleRecordsOf lists the room.role records about sub, oldest first.
func roleRecordsOf(c *cluster, sub string) []*audit.Entry {
	var out []*audit.Entry
	for _, e := range roleRecords(c) {
		if e.Str(audit.FieldTarget) == sub {
			out = append(out, e)
		}
	}
	return out
}

// TestRole_OnlyHostsChangeRolesAndTheStoreIsTheOnlyWord tries the attacks
// on role changes through two real gateways sharing one Redis: a
// participant, and the host of another room, try to change roles (the
// uniform 404, nothing changed, nothing recorded); a demoted participant
// replays the ticket it held as participant and its requests still reach
// the meeting server as viewer, its open socket on the other node closed
// with 4005 so it reconnects as viewer; a demoted host replays its host
// ticket to act as host (refused: before, the policy's word made it host
// again); the last host cannot step down; with the audit log down nothing
// changes.
func TestRole_OnlyHostsChangeRolesAndTheStoreIsTheOnlyWord(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, redis: true, policyTimeout: time.Minute})
	a, b := c.nodes[0], c.nodes[1]
	hanna, henry, bob, carol, olga := host("hanna"), host("henry"), staff("bob"), staff("carol"), staff("olga")
	c.createRoom(a, hanna, "standup", map[string]any{"lobby_enabled": false})
	c.createRoom(a, olga, "olgas", map[string]any{"lobby_enabled": false}) // olga hosts her own room only
	_, hannaPID := c.mustJoin(a, hanna, "standup")
	henryTicket, henryPID := c.mustJoin(a, henry, "standup")
	bobTicket, bobPID := c.mustJoin(b, bob, "standup")
	_, carolPID := c.mustJoin(a, carol, "standup")
	roleURL := func(n *node, room, pid string) string { return n.apiURL(room + "/participants/" + pid + "/role") }
	set := func(n *node, w who, ticket, room, pid string, body any) reply {
		t.Helper()
		var hdr []string
		if ticket != "" {
			hdr = []string{"Meetguard-Ticket", ticket}
		}
		return call(t, nil, http.MethodPost, roleURL(n, room, pid), c.token(w), body, hdr...)
	}
	missing := call(t, nil, http.MethodPost, roleURL(a, "nosuchroom", carolPID), c.token(olga), map[string]any{"role": "viewer"})
	if missing.Status != http.StatusNotFound {
		t.Fatalf("role change in a missing room: %d %s", missing.Status, missing.Body)
	}

	// A participant (with and without its ticket) and another room's host
	// get the missing room's answer byte for byte; nothing changes.
	for _, try := range []struct {
		name   string
		w      who
		ticket string
	}{{"participant bob", bob, bobTicket}, {"participant bob without ticket", bob, ""}, {"olga, host of another room", olga, ""}} {
		r := set(a, try.w, try.ticket, "standup", carolPID, map[string]any{"role": "viewer"})
		if r.Status != missing.Status || string(r.Body) != string(missing.Body) {
			t.Errorf("%s changing carol's role: %d %s; want the missing room's %d %s", try.name, r.Status, r.Body, missing.Status, missing.Body)
		}
	}
	if got := roleOf(t, b, "standup", carolPID); got != rooms.RoleParticipant {
		t.Fatalf("carol is %s after refused changes, want participant", got)
	}
	if recs := roleRecords(c); len(recs) != 0 {
		t.Fatalf("refused changes were recorded: %v", recs)
	}

	// Strict bodies: the field is named.
	for _, body := range []any{map[string]any{"role": "admin"}, map[string]any{"role": "host"}, map[string]any{},
		map[string]any{"role": "viewer", "reason": "Not A Code"}, map[string]any{"role": "viewer", "extra": 1}, map[string]any{"role": 3}} {
		r := set(a, hanna, "", "standup", carolPID, body)
		if r.Status != http.StatusBadRequest {
			t.Errorf("body %v: %d %s, want 400", body, r.Status, r.Body)
		}
		if m, ok := body.(map[string]any); ok && m["extra"] == nil && m["reason"] == nil && !strings.Contains(string(r.Body), "role") {
			t.Errorf("body %v: %s does not name the role field", body, r.Body)
		}
	}

	// bob's socket, through node B, is a participant's.
	ws := dialRoom(t, b, "standup", c.token(bob), bobTicket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := echo(ctx, ws, "hello"); err != nil {
		t.Fatal(err)
	}
	lastRole := func() string {
		reqs := c.up.requestsBy(bob.sub)
		return reqs[len(reqs)-1].Header.Get("X-Meetguard-Role")
	}
	if got := lastRole(); got != "participant" {
		t.Fatalf("bob reached the upstream as %q, want participant", got)
	}

	// hanna demotes bob through node A.
	r := set(a, hanna, "", "standup", bobPID, map[string]any{"role": "viewer", "reason": "disruptive"})
	if r.Status != http.StatusOK || r.str(t, "from") != "participant" || r.str(t, "to") != "viewer" {
		t.Fatalf("hanna demoting bob: %d %s", r.Status, r.Body)
	}
	if ups, _ := r.json(t)["upstreams"].(map[string]any); ups["demo"] != "reconnect" {
		t.Fatalf("upstreams = %v, want demo: reconnect", ups)
	}
	if code, reason := readClose(t, ws); code != websocket.StatusCode(liveconn.CodeRoleChanged) {
		t.Fatalf("bob's socket on node B closed with %d %q, want %d", code, reason, liveconn.CodeRoleChanged)
	}
	recs := roleRecords(c)
	if len(recs) != 1 || recs[0].Str(audit.FieldTarget) != bob.sub || recs[0].Str(audit.FieldActor) != hanna.sub ||
		recs[0].Str(audit.FieldFrom) != "participant" || recs[0].Str(audit.FieldTo) != "viewer" || recs[0].Str(audit.FieldReason) != "disruptive" ||
		recs[0].Str(audit.FieldParticipant) != bobPID {
		t.Fatalf("room.role records = %v", recs)
	}
	// Replaying the ticket issued to him as participant: he is a viewer.
	ws2 := dialRoom(t, b, "standup", c.token(bob), bobTicket)
	if err := echo(ctx, ws2, "again"); err != nil {
		t.Fatal(err)
	}
	if got := lastRole(); got != "viewer" {
		t.Fatalf("bob's replayed participant ticket reached the upstream as %q, want viewer", got)
	}

	// hanna demotes henry (a host by the policy's host group); henry's host
	// ticket no longer makes him host, nor does the policy while he holds
	// the admission.
	if r := set(b, hanna, "", "standup", henryPID, map[string]any{"role": "participant"}); r.Status != http.StatusOK {
		t.Fatalf("hanna demoting henry: %d %s", r.Status, r.Body)
	}
	r = set(a, henry, henryTicket, "standup", carolPID, map[string]any{"role": "viewer"})
	if r.Status != missing.Status || string(r.Body) != string(missing.Body) {
		t.Fatalf("demoted henry replaying his host ticket: %d %s; want the refusal", r.Status, r.Body)
	}
	if got := roleOf(t, a, "standup", carolPID); got != rooms.RoleParticipant {
		t.Fatalf("carol is %s after demoted henry's try, want participant", got)
	}

	// hanna is now the only host: she cannot step down.
	r = set(a, hanna, "", "standup", hannaPID, map[string]any{"role": "participant"})
	if r.Status != http.StatusConflict || r.str(t, "error") != "last_host" {
		t.Fatalf("the last host stepping down: %d %s, want 409 last_host", r.Status, r.Body)
	}
	if got := roleOf(t, b, "standup", hannaPID); got != rooms.RoleHost {
		t.Fatalf("hanna is %s, want host", got)
	}

	// Audit log down on node A: refused, nothing changed.
	before := len(roleRecords(c))
	_ = a.alog.Close()
	r = set(a, hanna, "", "standup", carolPID, map[string]any{"role": "viewer"})
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("role change with the audit log down: %d %s, want 503", r.Status, r.Body)
	}
	if got := roleOf(t, b, "standup", carolPID); got != rooms.RoleParticipant {
		t.Fatalf("carol is %s after the unrecorded change, want participant", got)
	}
	if len(roleRecords(c)) != before {
		t.Fatal("a refused change was recorded")
	}
}
