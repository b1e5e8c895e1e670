package roomsapi_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// Each test below changes shared state through node A and observes it
// through node B (two gateways, one real Redis): what a load balancer
// without stickiness does to every person between two requests.

// TestCrossNode_RateLimitSpentOnANodeHoldsOnTheOther: five wrong passcodes
// through node A spend the account's failures; the sixth try, with the
// right passcode, through node B is refused 429 like one through A.
func TestCrossNode_RateLimitSpentOnANodeHoldsOnTheOther(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, redis: true})
	a, b := c.nodes[0], c.nodes[1]
	const right = "314159"
	c.createRoom(a, host("hanna"), "sync", map[string]any{"passcode": right, "lobby_enabled": true})
	clumsy := staff("clumsy")
	for i := range 5 {
		r := call(t, nil, http.MethodPost, a.apiURL("sync/join"), c.token(clumsy), map[string]string{"passcode": "00000" + strconv.Itoa(i)})
		if r.Status != http.StatusForbidden {
			t.Fatalf("typo %d through A: %d %s, want 403", i+1, r.Status, r.Body)
		}
	}
	r := call(t, nil, http.MethodPost, b.apiURL("sync/join"), c.token(clumsy), map[string]string{"passcode": right})
	wantRetryAfter(t, "the right passcode through B after five typos through A", r)
	// Someone else is not affected on either node.
	if r := call(t, nil, http.MethodPost, b.apiURL("sync/join"), c.token(staff("punctual")), map[string]string{"passcode": right}); r.Status != http.StatusOK {
		t.Fatalf("another colleague through B: %d %s", r.Status, r.Body)
	}
}

// TestCrossNode_LobbyHeartbeatsThroughAnyNode: a guest knocks through A and
// keeps its place by polling through B only, well past knock_ttl; once it
// stops, the knock expires, and the host on A sees both.
func TestCrossNode_LobbyHeartbeatsThroughAnyNode(t *testing.T) {
	const ttl = 3 * time.Second
	c := newCluster(t, clusterOptions{nodes: 2, redis: true, rooms: func(rc *rooms.Config) {
		rc.KnockTTL, rc.KnockHeartbeat = ttl, ttl/3
	}})
	a, b := c.nodes[0], c.nodes[1]
	h := host("hanna")
	c.createRoom(a, h, "townhall", map[string]any{"lobby_enabled": true})
	gus := guest("gus")
	r := c.join(a, c.token(gus), "townhall", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("knock through A: %d %s", r.Status, r.Body)
	}
	wait := r.str(t, "wait_id")
	listed := func() bool {
		room := call(t, nil, http.MethodGet, a.apiURL("townhall"), c.token(h), nil)
		if room.Status != http.StatusOK {
			t.Fatalf("host view through A: %d %s", room.Status, room.Body)
		}
		return strings.Contains(string(room.Body), wait)
	}
	// Heartbeats through B for three knock_ttls.
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
		if r := call(t, nil, http.MethodGet, b.apiURL("townhall/wait/"+wait+"?timeout=0"), c.token(gus), nil); r.Status != http.StatusAccepted && r.Status != http.StatusOK {
			t.Fatalf("heartbeat through B: %d %s", r.Status, r.Body)
		}
		if !listed() {
			t.Fatal("the host on A lost a knock whose client kept polling through B")
		}
	}
	// Silence: the knock expires for node A too.
	deadline := time.Now().Add(5 * ttl)
	for listed() {
		if time.Now().After(deadline) {
			t.Fatalf("the knock outlived %v of silence", 5*ttl)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCrossNode_TicketRevokedOnANodeIsRefusedOnTheOther: a ticket issued
// by A stops working on A the moment a host removes its holder through B,
// and a ticket issued by B stops on B once its holder leaves through A.
func TestCrossNode_TicketRevokedOnANodeIsRefusedOnTheOther(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, redis: true})
	a, b := c.nodes[0], c.nodes[1]
	h := host("hanna")
	c.createRoom(a, h, "standup", map[string]any{"lobby_enabled": false})
	bob, carol := staff("bob"), staff("carol")
	bobTicket, bobPID := c.mustJoin(a, bob, "standup")
	carolTicket, _ := c.mustJoin(b, carol, "standup")
	uses := func(n *node, w who, ticket string) int {
		return call(t, nil, http.MethodGet, n.URL+"/room/standup/x", c.token(w), nil, roomsapi.TicketHeader, ticket).Status
	}
	for _, n := range c.nodes {
		if st := uses(n, bob, bobTicket); st != http.StatusOK {
			t.Fatalf("bob's ticket before: %d", st)
		}
	}
	if r := call(t, nil, http.MethodPost, b.apiURL("standup/participants/"+bobPID+"/remove"), c.token(h), map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("remove through B: %d %s", r.Status, r.Body)
	}
	for i, n := range c.nodes {
		if st := uses(n, bob, bobTicket); st != http.StatusForbidden {
			t.Errorf("bob's ticket on node %d after removal through B: %d, want 403", i, st)
		}
	}

	if st := uses(b, carol, carolTicket); st != http.StatusOK {
		t.Fatalf("carol's ticket before: %d", st)
	}
	if r := call(t, nil, http.MethodPost, a.apiURL("standup/leave"), c.token(carol), nil, roomsapi.TicketHeader, carolTicket); r.Status != http.StatusNoContent {
		t.Fatalf("carol leaves through A: %d %s", r.Status, r.Body)
	}
	for i, n := range c.nodes {
		if st := uses(n, carol, carolTicket); st != http.StatusForbidden {
			t.Errorf("carol's ticket on node %d after leaving through A: %d, want 403", i, st)
		}
	}
}

// TestCrossNode_ConsoleOnANodeIsPushedWhatHappensOnTheOther: the host's
// live console (the event stream) is open on A; a guest knocks through B
// and a host admits it through B; A's stream sends the new room view each
// time, without being asked.
func TestCrossNode_ConsoleOnANodeIsPushedWhatHappensOnTheOther(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, redis: true})
	a, b := c.nodes[0], c.nodes[1]
	h := host("hanna")
	c.createRoom(a, h, "townhall", map[string]any{"lobby_enabled": true})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.apiURL("townhall/events"), nil)
	req.Header.Set("Authorization", "Bearer "+c.token(h))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("console stream on A: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "room":
				events <- strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	next := func(what string, t0 time.Time, want func(string) bool) {
		t.Helper()
		for {
			select {
			case view, ok := <-events:
				if !ok {
					t.Fatalf("%s: the stream on A ended", what)
				}
				if want(view) {
					t.Logf("%s: pushed to A's console %v after the change through B", what, time.Since(t0))
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s: A's console was not told", what)
			}
		}
	}
	next("first view", time.Now(), func(string) bool { return true })

	gus := guest("gus")
	t0 := time.Now()
	r := c.join(b, c.token(gus), "townhall", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("knock through B: %d %s", r.Status, r.Body)
	}
	wait := r.str(t, "wait_id")
	next("knock through B", t0, func(v string) bool { return strings.Contains(v, wait) })

	t0 = time.Now()
	if r := call(t, nil, http.MethodPost, b.apiURL("townhall/lobby/"+wait+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit through B: %d %s", r.Status, r.Body)
	}
	next("admission through B", t0, func(v string) bool { return !strings.Contains(v, wait) && strings.Contains(v, gus.sub) })
}
