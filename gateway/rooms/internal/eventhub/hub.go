// Package eventhub fans room events out to the subscribers on one node. It
// never blocks a publisher: a subscriber that falls behind is cut off (its
// channel closed) so that it knows it missed events, rather than silently
// skipping a kick.
package eventhub

import (
	"context"
	"sync"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Buffer is how many events a subscriber may lag behind before it is cut off.
const Buffer = 1024

// Hub is a set of subscribers. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch   chan rooms.Event
	stop func() bool
}

// Subscribe returns a channel that receives every later Publish until ctx
// ends, the subscriber falls Buffer events behind, or Drop is called.
func (h *Hub) Subscribe(ctx context.Context) <-chan rooms.Event {
	s := &subscriber{ch: make(chan rooms.Event, Buffer)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() { h.remove(s) })
	h.mu.Unlock()
	return s.ch
}

// Publish delivers e to every subscriber without blocking.
func (h *Hub) Publish(e rooms.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			h.removeLocked(s)
		}
	}
}

// Drop closes every subscriber's channel: used when events may have been
// lost (the shared bus broke) or the store is closing.
func (h *Hub) Drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.removeLocked(s)
	}
}

// Len is the number of live subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (h *Hub) removeLocked(s *subscriber) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.stop()
	close(s.ch)
}

// PollInterval is how often Await re-reads a knock's state when no event
// arrives: the backstop for lost events and for expiry, which has none.
const PollInterval = 500 * time.Millisecond

// Await implements rooms.Store.Await over a hub and a store's WaitStatus:
// subscribe first, then read, so that no outcome falls between the two.
func Await(ctx context.Context, h *Hub, room string, status func(context.Context) (rooms.Outcome, error)) (rooms.Outcome, error) {
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	events := h.Subscribe(sub)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		o, err := status(ctx)
		if err != nil || o.Status != rooms.Waiting {
			return o, err
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return o, ctx.Err()
			case <-tick.C:
				break wait
			case e, ok := <-events:
				if !ok {
					events = nil // lost: rely on polling
					continue
				}
				if e.Room == room {
					break wait
				}
			}
		}
	}
}
