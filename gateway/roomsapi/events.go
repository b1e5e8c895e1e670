package roomsapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// Run is the node's event loop, until ctx ends. It closes, within the
// store's event delivery time, every live connection on this node whose
// admission ended on any node (kick, ban, suspend, leave, lapsed lease). It
// renews the lease of every participant with a live connection here
// (Touch, every ParticipantLease/3), closes those the store no longer
// admits, and calls Leave once a participant has had no connection here for
// LeaveGrace. When the subscription breaks (events may be lost) it
// resubscribes with backoff and then re-checks every live connection.
func (a *API) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.o.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.sweep(ctx, false)
			}
		}
	}()
	backoff := 50 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		events, err := a.o.Store.Subscribe(ctx)
		if err != nil {
			a.log.Warn("room events: subscribe failed; retrying", zap.Duration("in", backoff), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if !first {
			// Whatever happened while unsubscribed: ask the store.
			a.sweep(ctx, true)
			a.consoles.notifyAll()
		}
		first = false
		for e := range events {
			a.apply(e)
		}
		if ctx.Err() == nil {
			a.log.Warn("room events: subscription lost; re-checking live connections")
		}
	}
	wg.Wait()
	return nil
}

// apply closes this node's connections of every admission e ended, and
// tells the room's open host consoles.
func (a *API) apply(e rooms.Event) {
	a.consoles.notify(e.Room)
	if e.Kind == rooms.EventRoleChanged {
		a.roleChanged(e)
		return
	}
	if len(e.Revoked) == 0 {
		return
	}
	revoked := make(map[string]bool, len(e.Revoked))
	for _, p := range e.Revoked {
		revoked[string(p)] = true
	}
	a.conns.ended(e.Room, e.Revoked, e.Kind)
	code, reason := closeCode(e.Kind)
	n := a.o.Live.CloseWith(func(m liveconn.Meta) bool { return m.Room == e.Room && revoked[m.ParticipantID] }, code, reason)
	if n > 0 {
		a.log.Info("closed live connections of ended admissions", zap.String("room", e.Room), zap.String("kind", string(e.Kind)), zap.Int("connections", n))
	}
}

// closeCode is the WebSocket close code and reason for a connection whose
// admission e ended (documented in docs/api.md): the page knows it was
// removed and must not reconnect.
func closeCode(k rooms.EventKind) (uint16, string) {
	switch k {
	case rooms.EventBanned:
		return liveconn.CodeBanned, "banned"
	case rooms.EventRemoved, rooms.EventSuspended:
		return liveconn.CodeRemoved, "removed"
	}
	return liveconn.CodeEnded, "admission ended"
}

// connKey names one admission.
type connKey struct {
	room string
	pid  rooms.ParticipantID
}

type connState struct {
	lastSeen  time.Time // last sweep that found a live connection
	lastTouch time.Time
}

// tracker remembers the admissions that have (or recently had) live
// connections on this node.
type tracker struct {
	mu    sync.Mutex
	conns map[connKey]*connState
	// gone are admissions the store ended; they need no Leave.
	gone map[connKey]goneMark
}

// goneMark says when and how an admission ended: a sweep that finds one
// of its connections still open (the event's close still under way, or a
// connection registered after it) closes it with the event's close code,
// so the client learns it was removed or banned, not of a network fault.
type goneMark struct {
	at   time.Time
	kind rooms.EventKind
}

func newTracker() *tracker {
	return &tracker{conns: map[connKey]*connState{}, gone: map[connKey]goneMark{}}
}

func (t *tracker) ended(room string, pids []rooms.ParticipantID, kind rooms.EventKind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, p := range pids {
		k := connKey{room, p}
		if _, ok := t.conns[k]; ok {
			delete(t.conns, k)
			t.gone[k] = goneMark{at: now, kind: kind}
		}
	}
}

// sweep looks at this node's live connections: renews leases that are due
// (all of them when force), closes what the store no longer admits, and
// leaves for admissions whose last connection here closed LeaveGrace ago.
func (a *API) sweep(ctx context.Context, force bool) {
	live := map[connKey]int{}
	a.o.Live.Close(func(m liveconn.Meta) bool {
		if m.Room != "" && m.ParticipantID != "" {
			live[connKey{m.Room, rooms.ParticipantID(m.ParticipantID)}]++
		}
		return false
	})
	now := time.Now()
	touchEvery := a.cfg.ParticipantLease / 3
	var touch, leave []connKey
	goneLive := map[connKey]rooms.EventKind{}
	t := a.conns
	t.mu.Lock()
	for k := range live {
		if g, gone := t.gone[k]; gone {
			// Ended, yet a connection is open: it was registered after
			// the event closed the others, or the event is closing it
			// right now. Close it now, as the event would.
			goneLive[k] = g.kind
			continue
		}
		st := t.conns[k]
		if st == nil {
			// First seen: the request that opened it was just checked.
			st = &connState{lastTouch: now}
			t.conns[k] = st
		}
		st.lastSeen = now
		if force || now.Sub(st.lastTouch) >= touchEvery {
			touch = append(touch, k)
		}
	}
	for k, st := range t.conns {
		if live[k] == 0 && now.Sub(st.lastSeen) >= a.o.LeaveGrace {
			leave = append(leave, k)
		}
	}
	for k, g := range t.gone {
		if now.Sub(g.at) > time.Minute {
			delete(t.gone, k)
		}
	}
	t.mu.Unlock()
	if len(goneLive) > 0 {
		// One CloseWith per close code; the frame goes out once even if
		// the event's own close is sending it at the same time.
		codes := map[uint16]string{}
		for _, kind := range goneLive {
			code, reason := closeCode(kind)
			codes[code] = reason
		}
		n := 0
		for code, reason := range codes {
			n += a.o.Live.CloseWith(func(m liveconn.Meta) bool {
				kind, ok := goneLive[connKey{m.Room, rooms.ParticipantID(m.ParticipantID)}]
				if !ok {
					return false
				}
				c, _ := closeCode(kind)
				return c == code
			}, code, reason)
		}
		a.log.Info("closed live connections of ended admissions found by the sweep", zap.Int("connections", n))
	}

	for _, k := range touch {
		_, err := a.o.Store.Touch(ctx, k.room, k.pid)
		switch {
		case err == nil:
			t.mu.Lock()
			if st := t.conns[k]; st != nil {
				st.lastTouch = now
			}
			t.mu.Unlock()
		case errors.Is(err, rooms.ErrNotAdmitted):
			// Ended while we were not listening (or the lease lapsed).
			a.apply(rooms.Event{Kind: rooms.EventExpired, Room: k.room, Revoked: []rooms.ParticipantID{k.pid}})
		default:
			// The store is down: open connections keep working, and we
			// try again next sweep.
			a.log.Warn("room events: lease renewal failed", zap.String("room", k.room), zap.Error(err))
		}
	}
	for _, k := range leave {
		err := a.o.Store.Leave(ctx, k.room, k.pid)
		if err != nil && !errors.Is(err, rooms.ErrNotAdmitted) {
			a.log.Warn("room events: leave failed; will retry", zap.String("room", k.room), zap.Error(err))
			continue
		}
		t.mu.Lock()
		delete(t.conns, k)
		t.mu.Unlock()
	}
}

// RecheckAdmission implements admission.Rechecker: it asks the
// store whether the participant is still admitted (renewing the lease, as
// any room-path request does). Called right after a WebSocket is taken
// over, it catches a kick that landed during the handshake.
func (a *API) RecheckAdmission(ctx context.Context, p admission.Participant) error {
	if _, err := a.o.Store.Touch(ctx, p.Room, rooms.ParticipantID(p.ParticipantID)); err != nil {
		return fmt.Errorf("room %s: %w", p.Room, err)
	}
	return nil
}
