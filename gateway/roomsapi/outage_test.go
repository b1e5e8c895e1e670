package roomsapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestOutage_RedisDownFailsClosedAuditedAndOpenSocketsLive: with Redis
// gone, joins, room-path requests and host actions get 503 (nothing is
// admitted on stale state), a store.failure record is written, readiness
// fails, and WebSockets that were already open keep working.
func TestOutage_RedisDownFailsClosedAuditedAndOpenSocketsLive(t *testing.T) {
	c := newCluster(t, clusterOptions{redis: true, sweep: 50 * time.Millisecond,
		rooms: func(cfg *rooms.Config) { cfg.ParticipantLease = 300 * time.Millisecond }})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "standup", map[string]any{"lobby_enabled": false})
	bob := staff("bob")
	tok := c.token(bob)
	ticket, _ := c.mustJoin(n, bob, "standup")
	ws := dialRoom(t, n, "standup", tok, ticket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := echo(ctx, ws, "before"); err != nil {
		t.Fatal(err)
	}

	c.redis.Kill()

	cases := []struct {
		name string
		do   func() reply
	}{
		{"join", func() reply { return c.join(n, c.token(staff("carol")), "standup", nil) }},
		{"room path with a ticket", func() reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/standup/x", tok, nil, roomsapi.TicketHeader, ticket)
		}},
		{"room path without a ticket", func() reply { return call(t, nil, http.MethodGet, n.URL+"/room/standup/x", c.token(staff("dan")), nil) }},
		{"host action", func() reply { return call(t, nil, http.MethodPost, n.apiURL("standup/lock"), c.token(h), nil) }},
		{"create", func() reply { return call(t, nil, http.MethodPut, n.apiURL("newroom"), c.token(h), map[string]any{}) }},
	}
	for _, tc := range cases {
		if r := tc.do(); r.Status != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis down: %d %s, want 503", tc.name, r.Status, r.Body)
		}
	}
	if r := call(t, nil, http.MethodGet, n.URL+"/.meetguard/readyz", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down: %d %s", r.Status, r.Body)
	}
	// Several lease periods pass with failing renewals: the socket stays.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := echo(ctx, ws, "during"); err != nil {
			t.Fatalf("open socket cut by the outage: %v", err)
		}
	}
	var failures int
	var joinFailure bool
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventStoreFailure && e.Str("store") == "redis" {
			failures++
			// The join's one read before the policy (StartJoin) failed.
			joinFailure = joinFailure || e.Str(audit.FieldOp) == "rooms.begin_join"
		}
	}
	if failures == 0 || !joinFailure {
		t.Errorf("%d store.failure records, the join's among them: %t", failures, joinFailure)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(roomsapi.TicketHeader, ticket)
	req = req.WithContext(identity.With(req.Context(), identity.Identity{Issuer: c.idp.URL, Subject: bob.sub, Via: identity.ViaBearer}))
	if _, err := n.api.Member(req, "standup"); !errors.Is(err, rooms.ErrStoreUnavailable) || errors.Is(err, roomsapi.ErrNotMember) {
		t.Errorf("Member with Redis down: %v, want ErrStoreUnavailable", err)
	}
}
