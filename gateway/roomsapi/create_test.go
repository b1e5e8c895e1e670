package roomsapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestCreate_RacingCreatorsLeaveOneOwnerAndItsSettings is the create race
// of issue 10: many staff members PUT the same missing room at the same
// moment, each with its own capacity, lobby, tags and passcode, through
// every node, with outsiders racing too. Before the create-only write the
// losers' settings (and passcodes) landed on the winner's room and each
// loser wrote room.create and room.update records.
func TestCreate_RacingCreatorsLeaveOneOwnerAndItsSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    clusterOptions
	}{
		{"memory", clusterOptions{policyTimeout: time.Minute}},
		{"redis two nodes", clusterOptions{nodes: 2, redis: true, policyTimeout: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.o)
			passcodes, err := rooms.NewPasscodes(rooms.PasscodeOptions{Params: rooms.PasscodeParams{MemoryKiB: 256, Time: 1, Threads: 1}})
			if err != nil {
				t.Fatal(err)
			}
			const creators, outsiders = 50, 10
			for round := range 2 {
				room := fmt.Sprintf("race-%d", round)
				type racer struct {
					w      who
					token  string
					status int
					body   string
				}
				racers := make([]racer, creators+outsiders)
				for i := range racers {
					w := staff(fmt.Sprintf("creator-%02d", i))
					if i >= creators {
						w = guest(fmt.Sprintf("outsider-%02d", i))
					}
					racers[i] = racer{w: w, token: c.token(w)}
				}
				settings := func(i int) map[string]any {
					return map[string]any{"capacity": 10 + i, "lobby_enabled": i%2 == 0,
						"tags": []string{fmt.Sprintf("by-%d", i)}, "passcode": fmt.Sprintf("pass-%d", i)}
				}
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range racers {
					wg.Go(func() {
						n := c.nodes[i%len(c.nodes)]
						<-start
						r := call(t, nil, http.MethodPut, n.apiURL(room), racers[i].token, settings(i))
						racers[i].status, racers[i].body = r.Status, string(r.Body)
					})
				}
				close(start)
				wg.Wait()

				winner := -1
				for i, r := range racers {
					switch {
					case i >= creators && r.status != http.StatusForbidden:
						t.Errorf("%s: outsider %d got %d %s, want the uniform 403", room, i, r.status, r.body)
					case i >= creators:
					case r.status == http.StatusCreated && winner >= 0:
						t.Fatalf("%s: creators %d and %d both got 201", room, winner, i)
					case r.status == http.StatusCreated:
						winner = i
					case r.status != http.StatusConflict:
						t.Errorf("%s: losing creator %d got %d %s, want 409 room_exists", room, i, r.status, r.body)
					}
				}
				if winner < 0 {
					t.Fatalf("%s: nobody created the room", room)
				}
				w := racers[winner].w

				got := call(t, nil, http.MethodGet, c.nodes[0].apiURL(room), c.token(w), nil).json(t)
				want := settings(winner)
				if got["owner"] != c.idp.URL+"|"+w.sub || got["capacity"] != float64(want["capacity"].(int)) ||
					got["lobby_enabled"] != want["lobby_enabled"] || fmt.Sprint(got["tags"]) != fmt.Sprint(want["tags"]) {
					t.Fatalf("%s: room %v, want owner %s with its settings %v", room, got, w.sub, want)
				}
				f, err := c.nodes[len(c.nodes)-1].store.Facts(t.Context(), room, "")
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := passcodes.Verify(t.Context(), f.PasscodeHash, want["passcode"].(string)); err != nil || !ok {
					t.Fatalf("%s: the room's passcode is not the owner's (%v)", room, err)
				}

				var creates, updates []string
				for _, e := range c.auditEntries() {
					if e.Str(audit.FieldRoom) != room {
						continue
					}
					switch e.Event {
					case audit.EventRoomCreate:
						creates = append(creates, e.Str(audit.FieldActor))
					case audit.EventRoomUpdate:
						updates = append(updates, e.Str(audit.FieldActor))
					}
				}
				if len(creates) != 1 || creates[0] != w.sub || len(updates) != 0 {
					t.Fatalf("%s: audit has room.create by %v and room.update by %v, want one room.create by %s and no update",
						room, creates, updates, w.sub)
				}
			}
		})
	}
}
