package roomsapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// waiting lists the room's knocks as its host sees them.
func (c *cluster) waiting(n *node, h who, room string) []map[string]any {
	c.t.Helper()
	r := call(c.t, nil, http.MethodGet, n.apiURL(room), c.token(h), nil)
	if r.Status != http.StatusOK {
		c.t.Fatalf("room view: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	for _, w := range r.json(c.t)["waiting"].([]any) {
		out = append(out, w.(map[string]any))
	}
	return out
}

// participantOf is the id of sub's admission in room.
func (c *cluster) participantOf(n *node, h who, room, sub string) string {
	c.t.Helper()
	r := call(c.t, nil, http.MethodGet, n.apiURL(room), c.token(h), nil)
	for _, p := range r.json(c.t)["participants"].([]any) {
		m := p.(map[string]any)
		if strings.HasSuffix(m["subject"].(string), "|"+sub) {
			return m["id"].(string)
		}
	}
	c.t.Fatalf("%s is not in %s: %s", sub, room, r.Body)
	return ""
}

// countEvents counts audit records of event in room about subject.
func (c *cluster) countEvents(event, room, subject string) int {
	n := 0
	for _, e := range c.auditEntries() {
		if e.Event == event && e.Str(audit.FieldRoom) == room && e.Str(audit.FieldSubject) == subject {
			n++
		}
	}
	return n
}

// wsDial opens a room WebSocket and reports the HTTP status of a refusal.
func wsDial(n *node, room string, client *http.Client, hdr http.Header) (*websocket.Conn, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/room/"+room+"/ws",
		&websocket.DialOptions{HTTPClient: client, HTTPHeader: hdr})
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return ws, status, err
}

// readClose reads until the connection ends and returns its close code.
func readClose(t *testing.T, ws *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// TestKick_TabNeverKnocksAgainByItself is issue 10's sixth item through a
// real browser session: a removed tab's WebSocket gets close code 4001
// before the cut; its reconnects, background requests and reload neither
// get in nor knock; only the person's explicit "join again" knocks.
// Before the fix the reconnect ran the join flow and put the removed
// person back in the lobby.
func TestKick_TabNeverKnocksAgainByItself(t *testing.T) {
	c := newCluster(t, clusterOptions{policyTimeout: time.Minute})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "townhall", map[string]any{"lobby_enabled": true})
	b := c.login(n) // the provider's test user: a guest, who waits in the lobby
	nav := []string{"Accept", "text/html", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	if r := call(t, b, http.MethodGet, n.URL+"/room/townhall", "", nil, nav...); r.Status != http.StatusAccepted {
		t.Fatalf("first page load: %d, want the waiting page", r.Status)
	}
	ws := c.waiting(n, h, "townhall")
	if len(ws) != 1 {
		t.Fatalf("lobby %v, want the one knock", ws)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+ws[0]["id"].(string)+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	if r := call(t, b, http.MethodGet, n.URL+"/room/townhall", "", nil, nav...); r.Status != http.StatusOK {
		t.Fatalf("page load after admission: %d %s", r.Status, r.Body)
	}
	origin := http.Header{"Origin": {n.URL}} // a browser's socket names its page's origin
	conn, status, err := wsDial(n, "townhall", b, origin)
	if err != nil {
		t.Fatalf("the admitted tab's WebSocket: %v (%d)", err, status)
	}
	defer conn.CloseNow()
	sub := c.idp.Username
	for _, r := range c.auditEntries() {
		if r.Event == audit.EventLobbyKnock {
			sub = r.Str(audit.FieldSubject)
		}
	}
	knocks := c.countEvents(audit.EventLobbyKnock, "townhall", sub)
	decisions := c.countEvents(audit.EventAdmissionDecision, "townhall", sub)

	pid := c.participantOf(n, h, "townhall", sub)
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/participants/"+pid+"/remove"), c.token(h), map[string]any{"ban": false}); r.Status != http.StatusOK {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if code, reason := readClose(t, conn); code != 4001 || reason != "removed" {
		t.Fatalf("close frame %d %q, want 4001 removed", code, reason)
	}

	// What the tab does by itself: reconnect, background requests, reload.
	if _, status, err := wsDial(n, "townhall", b, origin); err == nil || status != http.StatusForbidden {
		t.Errorf("reconnect with the removed ticket: %v (%d), want 403", err, status)
	}
	bg := call(t, b, http.MethodGet, n.URL+"/room/townhall/state", "", nil, "Accept", "*/*", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	if bg.Status != http.StatusForbidden || !strings.Contains(string(bg.Body), roomsapi.DeniedMessage) {
		t.Errorf("background request: %d %s, want the uniform refusal", bg.Status, bg.Body)
	}
	page := call(t, b, http.MethodGet, n.URL+"/room/townhall", "", nil, nav...)
	if page.Status != http.StatusForbidden || !strings.Contains(string(page.Body), "You were removed from this meeting") {
		t.Errorf("reload: %d %s, want the removed page", page.Status, page.Body)
	}
	if got := c.waiting(n, h, "townhall"); len(got) != 0 {
		t.Fatalf("the removed tab is back in the lobby by itself: %v", got)
	}
	if k, d := c.countEvents(audit.EventLobbyKnock, "townhall", sub), c.countEvents(audit.EventAdmissionDecision, "townhall", sub); k != knocks || d != decisions {
		t.Fatalf("after the kick: %d knocks and %d decisions, want %d and %d (nothing ran the join)", k, d, knocks, decisions)
	}

	// The person asks, explicitly ("Ask to join again" posts this).
	r := call(t, b, http.MethodPost, n.apiURL("townhall/join"), "", map[string]any{}, roomsapi.CSRFHeader, "1")
	if r.Status != http.StatusAccepted {
		t.Fatalf("explicit join: %d %s", r.Status, r.Body)
	}
	if got := c.waiting(n, h, "townhall"); len(got) != 1 {
		t.Fatalf("lobby after the explicit join: %v", got)
	}
}

// TestKick_BannedSocketOnOtherNodeGetsCode4003AndStaysOut: an app's
// WebSocket through node B, banned by a host on node A, is told 4003
// before the cut; its reconnect loop (no ticket, or the dead one) never
// runs the join, so no DENY banned records pile up.
func TestKick_BannedSocketOnOtherNodeGetsCode4003AndStaysOut(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, redis: true})
	a, b := c.nodes[0], c.nodes[1]
	h := host("hanna")
	c.createRoom(a, h, "townhall", map[string]any{"lobby_enabled": false})
	gina := staff("gina")
	ticket, _ := c.mustJoin(b, gina, "townhall")
	tok := c.token(gina)
	conn := dialRoom(t, b, "townhall", tok, ticket)
	if err := echo(t.Context(), conn, "hello"); err != nil {
		t.Fatal(err)
	}
	pid := c.participantOf(a, h, "townhall", gina.sub)
	decisions := c.countEvents(audit.EventAdmissionDecision, "townhall", gina.sub)
	if r := call(t, nil, http.MethodPost, a.apiURL("townhall/participants/"+pid+"/remove"), c.token(h), map[string]any{"ban": true}); r.Status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.Status, r.Body)
	}
	if code, reason := readClose(t, conn); code != 4003 || reason != "banned" {
		t.Fatalf("close frame %d %q, want 4003 banned", code, reason)
	}
	for range 5 {
		for _, hdr := range []http.Header{
			{"Authorization": {"Bearer " + tok}},
			{"Authorization": {"Bearer " + tok}, roomsapi.TicketHeader: {ticket}},
		} {
			if _, status, err := wsDial(b, "townhall", nil, hdr); err == nil || status != http.StatusForbidden {
				t.Fatalf("reconnect after the ban: %v (%d), want 403", err, status)
			}
		}
	}
	if d := c.countEvents(audit.EventAdmissionDecision, "townhall", gina.sub); d != decisions {
		t.Fatalf("reconnects wrote %d admission decisions, want none", d-decisions)
	}
}
