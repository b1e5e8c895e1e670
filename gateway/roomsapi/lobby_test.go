package roomsapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestLobby_GuestGetsNothingUntilAHostAdmits: a guest knocks; until a
// host admits it, it gets no ticket, no room traffic, no participant list
// and no membership; its long-poll then brings the ticket.
func TestLobby_GuestGetsNothingUntilAHostAdmits(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "townhall", map[string]any{"lobby_enabled": true})
	c.mustJoin(n, staff("bob"), "townhall")
	gus := guest("gus")
	gusTok := c.token(gus)

	r := c.join(n, gusTok, "townhall", nil)
	if r.Status != http.StatusAccepted || r.str(t, "status") != "waiting" {
		t.Fatalf("guest knock: %d %s", r.Status, r.Body)
	}
	wait := r.str(t, "wait_id")
	for _, k := range []string{"ticket", "participants", "role", "participant_id"} {
		if _, ok := r.json(t)[k]; ok {
			t.Errorf("waiting answer carries %q: %s", k, r.Body)
		}
	}

	// While waiting, nothing of the room reaches the guest.
	if r := call(t, nil, http.MethodGet, n.URL+"/room/townhall/x", gusTok, nil); r.Status == http.StatusOK {
		t.Errorf("room path while waiting: %d %s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/room/townhall/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + gusTok}}}); err == nil || resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("WebSocket while waiting: %v", err)
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("townhall"), gusTok, nil); r.Status != http.StatusNotFound {
		t.Errorf("participant list while waiting: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("townhall/wait/"+wait+"?timeout=0"), c.token(staff("eve")), nil); r.Status != http.StatusNotFound {
		t.Errorf("someone else reading the guest's wait id: %d %s", r.Status, r.Body)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	gusID := identity.Identity{Issuer: c.idp.URL, Subject: gus.sub, Via: identity.ViaBearer}
	req = req.WithContext(identity.With(req.Context(), gusID))
	if _, err := n.api.Member(req, "townhall"); !errors.Is(err, roomsapi.ErrNotMember) {
		t.Errorf("Member while waiting: %v, want ErrNotMember", err)
	}
	if len(c.up.requestsBy(gus.sub)) != 0 {
		t.Fatal("room traffic reached the upstream for a waiting guest")
	}

	polled := make(chan reply, 1)
	go func() {
		polled <- call(t, nil, http.MethodGet, n.apiURL("townhall/wait/"+wait+"?timeout=20"), gusTok, nil)
	}()
	room := call(t, nil, http.MethodGet, n.apiURL("townhall"), c.token(h), nil)
	if room.Status != http.StatusOK || !strings.Contains(string(room.Body), wait) {
		t.Fatalf("host view does not list the knock: %d %s", room.Status, room.Body)
	}
	time.Sleep(100 * time.Millisecond) // let the long-poll start waiting
	admitted := time.Now()
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+wait+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	var got reply
	select {
	case got = <-polled:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting client's long-poll did not return after the host admitted it")
	}
	t.Logf("host admit → long-poll answer: %v", time.Since(admitted))
	if got.Status != http.StatusOK || got.str(t, "status") != "admitted" || got.str(t, "role") != "viewer" || got.str(t, "ticket") == "" {
		t.Fatalf("long-poll after admission: %d %s", got.Status, got.Body)
	}
	if r := call(t, nil, http.MethodGet, n.URL+"/room/townhall/x", gusTok, nil, roomsapi.TicketHeader, got.str(t, "ticket")); r.Status != http.StatusOK {
		t.Fatalf("admitted guest's ticket: %d %s", r.Status, r.Body)
	}

	// A second guest is turned away and banned: its long-poll says so,
	// and it cannot knock again.
	gil := guest("gil")
	r = c.join(n, c.token(gil), "townhall", nil)
	gilWait := r.str(t, "wait_id")
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+gilWait+"/deny"), c.token(h), map[string]any{"ban": true}); r.Status != http.StatusOK {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("townhall/wait/"+gilWait), c.token(gil), nil); r.Status != http.StatusForbidden || r.str(t, "status") != "denied" {
		t.Errorf("denied guest's poll: %d %s", r.Status, r.Body)
	}
	if r := c.join(n, c.token(gil), "townhall", nil); r.Status != http.StatusForbidden {
		t.Errorf("banned guest knocks again: %d %s", r.Status, r.Body)
	}

	events := map[string]int{}
	for _, e := range c.auditEntries() {
		if e.Str(audit.FieldRoom) == "townhall" {
			events[e.Event]++
		}
	}
	for _, ev := range []string{audit.EventLobbyKnock, audit.EventLobbyAdmit, audit.EventLobbyDeny, audit.EventRoomBan} {
		if events[ev] == 0 {
			t.Errorf("no %s record (have %v)", ev, events)
		}
	}
}

var dataWait = regexp.MustCompile(`data-wait="([^"]+)"`)

// TestLobby_BrowserKeepsItsPlaceAndGetsInWithoutATicketBefore: a signed-in
// browser opening a lobby room gets the waiting page (202, strict CSP, a
// wait cookie, no ticket); reloading keeps its one place in the list; once
// a host admits it, the next load goes through with a ticket cookie.
func TestLobby_BrowserKeepsItsPlaceAndGetsInWithoutATicketBefore(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "townhall", nil)
	b := c.login(n)
	page := func() reply {
		return call(t, b, http.MethodGet, n.URL+"/room/townhall", "", nil, "Accept", "text/html")
	}
	first := page()
	if first.Status != http.StatusAccepted {
		t.Fatalf("first load: %d %s", first.Status, first.Body)
	}
	csp := first.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("waiting page CSP %q", csp)
	}
	for _, sc := range first.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, roomsapi.TicketCookie) {
			t.Errorf("waiting page set a ticket cookie: %s", sc)
		}
	}
	m := dataWait.FindSubmatch(first.Body)
	if m == nil {
		t.Fatalf("waiting page without its wait id: %s", first.Body)
	}
	second := page()
	if m2 := dataWait.FindSubmatch(second.Body); second.Status != http.StatusAccepted || m2 == nil || string(m2[1]) != string(m[1]) {
		t.Fatalf("reload lost the place in the lobby: %d %s", second.Status, second.Body)
	}
	if waiting := strings.Count(string(call(t, nil, http.MethodGet, n.apiURL("townhall"), c.token(h), nil).Body), `"since"`); waiting != 1 {
		t.Errorf("%d knocks after a reload, want 1", waiting)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+string(m[1])+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	in := page()
	if in.Status != http.StatusOK || !strings.HasPrefix(string(in.Body), "upstream:/room/townhall") {
		t.Fatalf("after admission: %d %s", in.Status, in.Body)
	}
	var ticketSet bool
	for _, sc := range in.Header.Values("Set-Cookie") {
		ticketSet = ticketSet || strings.HasPrefix(sc, roomsapi.TicketCookie+"=")
	}
	if !ticketSet {
		t.Error("no ticket cookie after admission")
	}
}

// TestLobby_WaitAsServerSentEvents: the stream says "waiting" at once and
// brings the ticket when a host admits.
func TestLobby_WaitAsServerSentEvents(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "townhall", nil)
	gusTok := c.token(guest("gus"))
	wait := c.join(n, gusTok, "townhall", nil).str(t, "wait_id")
	req, _ := http.NewRequest(http.MethodGet, n.apiURL("townhall/wait/"+wait), nil)
	req.Header.Set("Authorization", "Bearer "+gusTok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- d
			}
		}
		close(events)
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}
	if e := next(); !strings.Contains(e, `"status":"waiting"`) {
		t.Fatalf("first event %s", e)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+wait+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	if e := next(); !strings.Contains(e, `"status":"admitted"`) || !strings.Contains(e, `"ticket":"`) {
		t.Fatalf("admitted event %s", e)
	}
}

// TestLobby_HostSeesWhoVouchesForEachKnock: the host's lobby list says for
// each knock its email domain and the verdict (staff or guest from the
// policy, MFA from the provider's amr, an address the provider does not
// vouch for), so an outsider who named himself like a colleague stands out.
// A guest cannot make himself look like staff by what he puts in his
// token's claims beyond what the policy checks.
func TestLobby_HostSeesWhoVouchesForEachKnock(t *testing.T) {
	c := newCluster(t, clusterOptions{policyConfig: func(cfg map[string]any) { cfg["participants_wait_for_host"] = true }})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "townhall", map[string]any{"lobby_enabled": true})

	knock := func(sub, email string, verified bool, amr []string) {
		t.Helper()
		cl := c.idp.Claims(c.idp.ClientID)
		cl["sub"], cl["email"], cl["name"], cl["email_verified"], cl["groups"] = sub, email, "Bob Smith", verified, []string{}
		if amr != nil {
			cl["amr"] = amr
		}
		if r := c.join(n, c.idp.Sign(t, cl, ""), "townhall", nil); r.Status != http.StatusAccepted {
			t.Fatalf("%s knock: %d %s", sub, r.Status, r.Body)
		}
	}
	knock("bob", "bob@example.com", true, []string{"pwd", "otp"})
	// Eve calls herself Bob Smith too, and claims a staff address her
	// provider never verified.
	knock("eve", "bob@EXAMPLE.com", false, []string{"mfa"})
	knock("gus", "gus@guest.test", true, nil)

	r := call(t, nil, http.MethodGet, n.apiURL("townhall"), c.token(h), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("host view: %d %s", r.Status, r.Body)
	}
	var view struct {
		Waiting []struct {
			Subject string   `json:"subject"`
			Domain  string   `json:"email_domain"`
			Verdict []string `json:"verdict"`
			Live    bool     `json:"live"`
		} `json:"waiting"`
	}
	if err := json.Unmarshal(r.Body, &view); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bob": "example.com staff,mfa",
		"eve": "example.com guest,mfa,unverified",
		"gus": "guest.test guest",
	}
	if len(view.Waiting) != len(want) {
		t.Fatalf("lobby = %s", r.Body)
	}
	for _, w := range view.Waiting {
		sub := strings.TrimPrefix(w.Subject, c.idp.URL+"|")
		got := w.Domain + " " + strings.Join(w.Verdict, ",")
		if got != want[sub] || !w.Live {
			t.Errorf("%s in the lobby: %q live=%v, want %q live", w.Subject, got, w.Live, want[sub])
		}
	}
}

// TestLobby_WaitingPageSpeaksTheGuestsLanguage: the policy's message for
// the lobby reason reaches a Vietnamese browser in Vietnamese (the shipped
// text maps to the catalog by its reason code), while a message the
// security team wrote in data.json is shown as they wrote it.
func TestLobby_WaitingPageSpeaksTheGuestsLanguage(t *testing.T) {
	nav := []string{"Accept", "text/html", "Accept-Language", "vi-VN,vi;q=0.9", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	c := newCluster(t, clusterOptions{policyConfig: func(cfg map[string]any) {
		cfg["participants_wait_for_host"] = true
		cfg["messages"].(map[string]any)["guest_lobby"] = "Khách vui lòng chờ lễ tân."
	}})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "townhall", map[string]any{"lobby_enabled": true})

	shown := regexp.MustCompile(`<span id="msg">([^<]*)</span>`)
	for _, tc := range []struct{ who, want string }{
		{"bob", "Vui lòng chờ, cuộc họp bắt đầu khi người chủ trì vào."},
		{"gus", "Khách vui lòng chờ lễ tân."},
	} {
		tok := c.token(staff(tc.who))
		if tc.who == "gus" {
			tok = c.token(guest(tc.who))
		}
		r := call(t, nil, http.MethodGet, n.URL+"/room/townhall/", tok, nil, nav...)
		m := shown.FindSubmatch(r.Body)
		if r.Status != http.StatusAccepted || m == nil || string(m[1]) != tc.want {
			t.Errorf("%s's waiting page in a vi browser: %d, message %q, want %q", tc.who, r.Status, m, tc.want)
		}
	}
}
