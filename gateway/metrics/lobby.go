package metrics

import (
	"context"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Subscriber delivers the cluster's room events (rooms.Store.Subscribe).
type Subscriber interface {
	Subscribe(ctx context.Context) (<-chan rooms.Event, error)
}

// maxTracked bounds the knocks FollowLobby remembers; past it the oldest
// half is forgotten (counted out of the gauge), so a knock storm cannot
// grow memory without bound.
const maxTracked = 100_000

// FollowLobby keeps lobby_waiting and lobby_wait_seconds from the room
// events every node receives, until ctx ends: a knock adds a waiting
// person, a host's admit or deny (or a ban or suspension) removes it and
// observes how long it waited. A knock nobody answers leaves no event, so
// it is counted out after maxWait (rooms.wait_ttl, the longest anyone can
// wait). Every node follows the whole cluster: the gauge is the same on
// each node, so dashboards take max(), not sum().
func (s *Set) FollowLobby(ctx context.Context, sub Subscriber, maxWait time.Duration) {
	if s == nil {
		return
	}
	type key struct {
		room string
		wait rooms.WaitID
	}
	type entry struct {
		since   time.Time
		subject rooms.SubjectKey
	}
	waiting := map[key]entry{}
	expire := func(now time.Time) {
		for k, e := range waiting {
			if now.Sub(e.since) > maxWait {
				delete(waiting, k)
			}
		}
		s.lobbyWaiting.Set(float64(len(waiting)))
	}
	tick := time.NewTicker(min(maxWait, time.Minute))
	defer tick.Stop()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		events, err := sub.Subscribe(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	recv:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				expire(time.Now())
			case ev, ok := <-events:
				if !ok {
					break recv
				}
				at := ev.At
				if at.IsZero() {
					at = time.Now()
				}
				switch ev.Kind {
				case rooms.EventKnocked:
					if len(waiting) >= maxTracked {
						expire(at.Add(-maxWait / 2))
					}
					waiting[key{ev.Room, ev.Wait}] = entry{since: at, subject: ev.Subject}
				case rooms.EventLobbyAdmitted, rooms.EventLobbyDenied:
					k := key{ev.Room, ev.Wait}
					if e, ok := waiting[k]; ok {
						outcome := "admitted"
						if ev.Kind == rooms.EventLobbyDenied {
							outcome = "denied"
						}
						s.lobbyWait.WithLabelValues(outcome).Observe(max(at.Sub(e.since), 0).Seconds())
						delete(waiting, k)
					}
				case rooms.EventBanned, rooms.EventSuspended:
					for k, e := range waiting {
						if k.room == ev.Room && (ev.Kind == rooms.EventSuspended || e.subject == ev.Subject) {
							delete(waiting, k)
						}
					}
				}
				s.lobbyWaiting.Set(float64(len(waiting)))
			}
		}
	}
}
