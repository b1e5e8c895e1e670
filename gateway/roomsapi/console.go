package roomsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// The host console (GET rooms/{room}/console) is a page of the web layer
// whose script drives this API and nothing else: every button is one of
// the host calls above (same CSRF rule, same host check, same audit), so
// the console adds no authority. Its live view is GET rooms/{room}/events,
// a stream of the host view (GET rooms/{room}) sent again whenever the
// store reports an event for the room, on any node.

// consoleHeartbeat is how often an idle event stream says it is alive and
// re-checks that its reader is still a host of the room.
const consoleHeartbeat = 15 * time.Second

// consoles are the event streams open on this node, by room. A
// notification is a wake-up, not a message: a stream that is behind reads
// the room once for all the events it missed.
type consoles struct {
	mu    sync.Mutex
	rooms map[string]map[chan struct{}]struct{}
}

func newConsoles() *consoles { return &consoles{rooms: map[string]map[chan struct{}]struct{}{}} }

func (c *consoles) watch(room string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.rooms[room] == nil {
		c.rooms[room] = map[chan struct{}]struct{}{}
	}
	c.rooms[room][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.rooms[room], ch)
		if len(c.rooms[room]) == 0 {
			delete(c.rooms, room)
		}
		c.mu.Unlock()
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *consoles) notify(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.rooms[room] {
		wake(ch)
	}
}

func (c *consoles) notifyAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.rooms {
		for ch := range m {
			wake(ch)
		}
	}
}

// consolePage is what the console template shows before its script runs.
type consolePage struct {
	Room        string
	RoomURL     string
	MaxCapacity int
}

// serveConsole is GET rooms/{room}/console: the page for hosts; anyone
// else, whether the room exists or not, gets the refusal page every
// refused browser gets.
func (a *API) serveConsole(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	_, host, err := a.isHost(ctx, r, id, room)
	if err != nil {
		fail(w, err)
		return
	}
	if !host {
		a.deniedPage(room)(w, r)
		return
	}
	roomURL := ""
	if paths := a.roomPaths(room); len(paths) > 0 {
		roomURL = paths[0]
	}
	a.pages.web.Render(w, r, http.StatusOK, web.View{
		Template: "console", Title: web.T("console.title", room), Script: "console.js",
		Data: consolePage{Room: room, RoomURL: roomURL, MaxCapacity: a.cfg.MaxCapacity},
	})
}

// serveRoomEvents is GET rooms/{room}/events: for hosts, a text/event-stream
// of "room" events, each the host view of GET rooms/{room}; anyone else
// gets the 404 an unknown room gets.
func (a *API) serveRoomEvents(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	_, host, err := a.isHost(ctx, r, id, room)
	if err != nil {
		fail(w, err)
		return
	}
	if !host {
		notFound(w)
		return
	}
	wakeup, stop := a.consoles.watch(room)
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	snapshot := func() bool {
		rm, err := a.o.Store.Room(ctx, room)
		if errors.Is(err, rooms.ErrNotFound) {
			send("ended", map[string]string{"status": "gone"})
			return false
		}
		if err == nil {
			var view hostRoomView
			if view, err = a.hostView(ctx, rm); err == nil {
				return send("room", view)
			}
		}
		_ = a.storeFailure(ctx, "console", err)
		// The client's EventSource reconnects; its page says so meanwhile.
		send("unavailable", map[string]string{"status": "unavailable"})
		return false
	}
	if !snapshot() {
		return
	}
	beat := time.NewTicker(consoleHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wakeup:
			if !snapshot() {
				return
			}
		case <-beat.C:
			// A host who lost the role (policy change, removed) stops
			// seeing the room within one heartbeat.
			if _, still, err := a.isHost(ctx, r, id, room); err != nil || !still {
				send("ended", map[string]string{"status": "not_host"})
				return
			}
			if _, err := fmt.Fprint(w, ": beat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
