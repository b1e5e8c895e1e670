package roomsapi_test

import (
	"context"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestHostActions_OnlyHostsOfThatRoom: every host action, called by a
// participant, by the host of another room, or on a missing room, gets
// the same 404; the room's host gets through.
func TestHostActions_OnlyHostsOfThatRoom(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	olga := staff("olga") // creates and owns "weekly": host by the policy's room_owner
	c.createRoom(n, olga, "weekly", map[string]any{"lobby_enabled": true})
	c.createRoom(n, olga, "otherroom", nil)
	bob := staff("bob")
	bobTicket, bobPID := c.mustJoin(n, bob, "weekly")
	gus := guest("gus")
	wait := c.join(n, c.token(gus), "weekly", nil).str(t, "wait_id")
	// Olga's host ticket for another room proves nothing here.
	_, _ = c.mustJoin(n, olga, "otherroom")

	actions := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "", nil},
		{http.MethodPost, "/lock", nil},
		{http.MethodPost, "/unlock", nil},
		{http.MethodPost, "/suspend", nil},
		{http.MethodPost, "/lobby/" + wait + "/admit", nil},
		{http.MethodPost, "/lobby/" + wait + "/deny", map[string]any{"ban": true}},
		{http.MethodPost, "/participants/" + bobPID + "/remove", map[string]any{"ban": true}},
		{http.MethodPost, "/unban", map[string]any{"subject": c.idp.URL + "|bob"}},
	}
	outsiders := []struct {
		name   string
		token  string
		hdr    []string
		room   string
		prefix string
	}{
		{"participant of the room", c.token(bob), []string{roomsapi.TicketHeader, bobTicket}, "weekly", ""},
		{"waiting guest", c.token(gus), nil, "weekly", ""},
		{"stranger on a missing room", c.token(staff("zed")), nil, "nosuchroom", ""},
	}
	want := ""
	for _, o := range outsiders {
		for _, a := range actions {
			r := call(t, nil, a.method, n.apiURL(o.room+a.path), o.token, a.body, o.hdr...)
			got := comparable(r, o.room)
			if r.Status != http.StatusNotFound {
				t.Errorf("%s: %s %s: %d %s, want 404", o.name, a.method, a.path, r.Status, r.Body)
			}
			if want == "" {
				want = got
			} else if got != want {
				t.Errorf("%s: %s %s answers differently:\n%s\n---\n%s", o.name, a.method, a.path, got, want)
			}
		}
	}
	// Nothing changed: bob is still in, the guest still waits.
	if r := call(t, nil, http.MethodGet, n.URL+"/room/weekly/x", c.token(bob), nil, roomsapi.TicketHeader, bobTicket); r.Status != http.StatusOK {
		t.Fatalf("bob after outsiders' attempts: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("weekly"), c.token(olga), nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), wait) {
		t.Fatalf("owner's view: %d %s", r.Status, r.Body)
	}
}

// recordingRemover is a stand-in meeting-server adapter that records which
// participants the gateway asked it to remove.
type recordingRemover struct {
	mu   sync.Mutex
	got  []admission.Participant
	done chan struct{}
}

func (r *recordingRemover) Forward(context.Context, *httputil.ProxyRequest, *admission.Participant) error {
	return nil
}

func (r *recordingRemover) RemoveParticipant(_ context.Context, p admission.Participant) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, p)
	select {
	case r.done <- struct{}{}:
	default:
	}
	return nil
}

// TestSuspend_LocksRemovesEveryoneButHostsAndEmptiesLobby, and tells the
// meeting server's adapter whom to drop.
func TestSuspend_LocksRemovesEveryoneButHostsAndEmptiesLobby(t *testing.T) {
	rm := &recordingRemover{done: make(chan struct{}, 1)}
	c := newCluster(t, clusterOptions{adapters: map[string]admission.Adapter{"demo": rm}})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "weekly", map[string]any{"lobby_enabled": true})
	hostTicket, _ := c.mustJoin(n, h, "weekly")
	bob := staff("bob")
	bobTok := c.token(bob)
	bobTicket, bobPID := c.mustJoin(n, bob, "weekly")
	ws := dialRoom(t, n, "weekly", bobTok, bobTicket)
	gus := guest("gus")
	gusTok := c.token(gus)
	wait := c.join(n, gusTok, "weekly", nil).str(t, "wait_id")

	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	if r := call(t, nil, http.MethodPost, n.apiURL("weekly/suspend"), c.token(h), nil, roomsapi.TicketHeader, hostTicket); r.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.Status, r.Body)
	}
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("participant's socket still open 1s after suspend")
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("weekly/wait/"+wait), gusTok, nil); r.Status != http.StatusForbidden {
		t.Errorf("waiting guest after suspend: %d %s", r.Status, r.Body)
	}
	if r := c.join(n, c.token(bob), "weekly", nil); r.Status != http.StatusForbidden {
		t.Errorf("rejoin of a suspended room: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodGet, n.URL+"/room/weekly/x", c.token(h), nil, roomsapi.TicketHeader, hostTicket); r.Status != http.StatusOK {
		t.Errorf("the host was removed by suspend: %d %s", r.Status, r.Body)
	}
	view := call(t, nil, http.MethodGet, n.apiURL("weekly"), c.token(h), nil).json(t)
	if view["locked"] != true || len(view["waiting"].([]any)) != 0 || len(view["participants"].([]any)) != 1 {
		t.Errorf("room after suspend: %v", view)
	}
	select {
	case <-rm.done:
	case <-time.After(5 * time.Second):
		t.Fatal("adapter never asked to remove anyone")
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.got) != 1 || rm.got[0].ParticipantID != bobPID || rm.got[0].Identity.Subject != bob.sub || rm.got[0].Upstream != "demo" {
		t.Errorf("adapter asked to remove %+v, want bob's admission %s only", rm.got, bobPID)
	}
}

// TestCreate_ThePolicyDecidesWhoMayCreate: only creators (staff or
// meeting-creators by the shipped policy) create rooms; others get one
// refusal whether or not the name is taken; hosts change settings.
func TestCreate_ThePolicyDecidesWhoMayCreate(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	put := func(w who, room string, body any) reply {
		return call(t, nil, http.MethodPut, n.apiURL(room), c.token(w), body)
	}
	olga := staff("olga")
	r := put(olga, "planning", map[string]any{"capacity": 12})
	if r.Status != http.StatusCreated || r.json(t)["capacity"] != float64(12) || r.json(t)["lobby_enabled"] != true {
		t.Fatalf("staff creates: %d %s", r.Status, r.Body)
	}
	if !strings.HasSuffix(r.str(t, "owner"), "|olga") {
		t.Errorf("owner %q", r.str(t, "owner"))
	}
	guestMissing := put(guest("gus"), "newroom1", map[string]any{})
	guestTaken := put(guest("gus"), "planning", map[string]any{})
	if guestMissing.Status != http.StatusForbidden || comparable(guestMissing, "newroom1") != comparable(guestTaken, "planning") {
		t.Errorf("non-creator refusals differ:\n%d %s\n%d %s", guestMissing.Status, guestMissing.Body, guestTaken.Status, guestTaken.Body)
	}
	if r := put(staff("bob"), "planning", map[string]any{"capacity": 500}); r.Status != http.StatusConflict || r.str(t, "error") != "room_exists" {
		t.Errorf("another creator on a taken name: %d %s", r.Status, r.Body)
	}
	if r := put(olga, "planning", map[string]any{"locked": true, "passcode": "1234"}); r.Status != http.StatusOK || r.json(t)["locked"] != true || r.json(t)["passcode_set"] != true {
		t.Errorf("owner updates: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(put(olga, "planning", nil).Body), "argon2") {
		t.Error("room view shows the passcode hash")
	}
	bad := []struct {
		name  string
		body  string
		field string
	}{
		{"capacity zero", `{"capacity":0}`, "capacity"},
		{"capacity above max", `{"capacity":100000}`, "capacity"},
		{"capacity as string", `{"capacity":"12"}`, "capacity"},
		{"unknown field", `{"capacityy":12}`, ""},
		{"too many tags", `{"tags":[` + strings.Repeat(`"t",`, 40) + `"t"]}`, "tags"},
		{"passcode too long", `{"passcode":"` + strings.Repeat("9", 200) + `"}`, "passcode"},
		{"two objects", `{} {}`, ""},
	}
	for _, tc := range bad {
		req, _ := http.NewRequest(http.MethodPut, n.apiURL("planning"), strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token(olga))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, resp.StatusCode)
		}
	}
}

// TestSettings_CapacityAndLobbyOnlyByHosts: the console's capacity and
// waiting-room controls are PUT rooms/{room}. A participant (and a
// signed-in browser on another site) cannot use it to open the room to
// guests or shrink it; a host can, recorded as room.update first, and the
// new settings hold at the next join.
func TestSettings_CapacityAndLobbyOnlyByHosts(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "weekly", map[string]any{"lobby_enabled": true, "capacity": 10})
	bob := staff("bob")
	bobTicket, _ := c.mustJoin(n, bob, "weekly")

	settings := func() map[string]any {
		t.Helper()
		r := call(t, nil, http.MethodGet, n.apiURL("weekly"), c.token(h), nil)
		if r.Status != http.StatusOK {
			t.Fatalf("host view: %d %s", r.Status, r.Body)
		}
		return r.json(t)
	}
	r := call(t, nil, http.MethodPut, n.apiURL("weekly"), c.token(bob), map[string]any{"capacity": 1, "lobby_enabled": false},
		roomsapi.TicketHeader, bobTicket)
	if r.Status == http.StatusOK {
		t.Fatalf("participant changed the settings: %d %s", r.Status, r.Body)
	}
	if s := settings(); s["capacity"] != float64(10) || s["lobby_enabled"] != true {
		t.Fatalf("settings after the participant's attempt: %v", s)
	}

	r = call(t, nil, http.MethodPut, n.apiURL("weekly"), c.token(h), map[string]any{"capacity": 2, "lobby_enabled": false})
	if r.Status != http.StatusOK {
		t.Fatalf("host PUT: %d %s", r.Status, r.Body)
	}
	if s := settings(); s["capacity"] != float64(2) || s["lobby_enabled"] != false {
		t.Fatalf("settings after the host's change: %v", s)
	}
	var update *audit.Entry
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventRoomUpdate && e.Str(audit.FieldRoom) == "weekly" && e.Str(audit.FieldActor) == "hanna" {
			update = e
		}
	}
	if update == nil || !slices.Equal(update.Strs("changes"), []string{"capacity", "lobby_enabled"}) {
		t.Fatalf("room.update record = %+v", update)
	}
	// Without a waiting room a guest has nowhere to wait: refused, not queued.
	if r := c.join(n, c.token(guest("gus")), "weekly", nil); r.Status != http.StatusForbidden {
		t.Errorf("guest join with the waiting room off: %d %s", r.Status, r.Body)
	}
	// Two seats: bob and one more staff member; a third is refused.
	c.mustJoin(n, staff("sue"), "weekly")
	if r := c.join(n, c.token(staff("tom")), "weekly", nil); r.Status != http.StatusForbidden {
		t.Errorf("join over the new capacity: %d %s", r.Status, r.Body)
	}
}
