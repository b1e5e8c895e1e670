package roomsapi_test

import (
	"net/http"
	"testing"

	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestRefusal_EveryDoorAnswersTheSameBytes: a refused join through the
// rooms API, a refused request through the proxy, and a request whose
// ticket does not hold (garbage, tampered, another room's) get the same
// status, the same headers and the same body, byte for byte but for Date
// and X-Request-Id. The API used to answer {"status":"denied",…}, the
// proxy {"error":"denied",…} and a bad ticket {"status":"denied",
// "error":"ticket_invalid",…}, which told an outsider which door held.
func TestRefusal_EveryDoorAnswersTheSameBytes(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h := host("hanna")
	// Rooms of one length, so the body's mention of one (if any) compares.
	const locked, open, other = "door-locked1", "door-opened1", "door-other01"
	c.createRoom(n, h, locked, map[string]any{"locked": true, "lobby_enabled": false})
	c.createRoom(n, h, open, map[string]any{"lobby_enabled": false})
	c.createRoom(n, h, other, map[string]any{"lobby_enabled": false})
	// One caller per door, so that none reaches a failure limit (429).
	callers := []who{staff("dora0"), staff("dora1"), staff("dora2"), staff("dora3"), staff("dora4"), staff("dora5")}
	otherTicket, _ := c.mustJoin(n, callers[5], other)
	tampered := []byte(otherTicket)
	tampered[len(tampered)/2] ^= 1

	doors := []struct {
		name string
		do   func(w who) reply
	}{
		{"api join, locked room", func(w who) reply { return c.join(n, c.token(w), locked, nil) }},
		{"api join, missing room", func(w who) reply { return c.join(n, c.token(w), "door-missing", nil) }},
		{"proxy json, locked room", func(w who) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+locked+"/x", c.token(w), nil, "Accept", "application/json")
		}},
		{"proxy, no Accept, missing room", func(w who) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/door-missing/x", c.token(w), nil)
		}},
		{"garbage ticket", func(w who) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+open+"/x", c.token(w), nil, roomsapi.TicketHeader, "not-a-ticket")
		}},
		{"another room's ticket", func(w who) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+open+"/x", c.token(callers[5]), nil, roomsapi.TicketHeader, otherTicket)
		}},
		{"tampered ticket", func(w who) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+other+"/x", c.token(callers[5]), nil, roomsapi.TicketHeader, string(tampered))
		}},
	}
	want, wantDoor := "", ""
	for i, d := range doors {
		r := d.do(callers[i%5])
		if r.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403: %s", d.name, r.Status, r.Body)
			continue
		}
		got := comparable(r, "\x00")
		if want == "" {
			want, wantDoor = got, d.name
			if s := r.str(t, "status"); s != "denied" || r.str(t, "message") != roomsapi.DeniedMessage {
				t.Errorf("%s: body %s, want the documented refusal", d.name, r.Body)
			}
			continue
		}
		if got != want {
			t.Errorf("%s answers differently from %s:\n--- %s\n%s\n--- %s\n%s", d.name, wantDoor, wantDoor, want, d.name, got)
		}
	}
}
