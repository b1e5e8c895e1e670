package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// healthEvery is how long the relay waits for a message before pinging, and
// then for the pong before it declares the subscription dead: a silently
// dropped link is noticed within 2*healthEvery.
const healthEvery = time.Second

// subscribeWait bounds how long Subscribe waits for the relay's first
// connection; once a connection has failed, Subscribe fails at once until
// the relay is back.
const subscribeWait = 2 * time.Second

// Subscribe implements rooms.Store. It returns only once the node's Redis
// subscription is confirmed, so no event published after it returns is
// missed without the channel closing.
func (s *Store) Subscribe(ctx context.Context) (<-chan rooms.Event, error) {
	var ch <-chan rooms.Event
	err := s.whenSubscribed(ctx, "subscribe: event", rooms.ErrStoreUnavailable, func() { ch = s.hub.Subscribe(ctx) })
	return ch, err
}

// whenSubscribed calls attach, with s.mu held, once the node's Redis
// subscription is confirmed, so that the subscriber attached misses nothing
// published after whenSubscribed returns without its channel closing. It
// fails with an error wrapping unavailable when the store is closed, the
// subscription is down, ctx ends, or subscribeWait passes first. Every
// fan-out of the relay (room events, session ends) subscribes through it.
func (s *Store) whenSubscribed(ctx context.Context, what string, unavailable error, attach func()) error {
	deadline := time.NewTimer(subscribeWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("%w: redisstore closed", unavailable)
		}
		if s.healthy {
			attach()
			s.mu.Unlock()
			return nil
		}
		down, changed := s.down, s.changed
		s.mu.Unlock()
		if down {
			return fmt.Errorf("%w: redisstore %s subscription is down", unavailable, what)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: redisstore %s subscription: %w", unavailable, what, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w: redisstore %s subscription is down", unavailable, what)
		}
	}
}

func (s *Store) setHealthy(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = !ok
	if s.healthy == ok {
		return
	}
	s.healthy = ok
	if !ok {
		s.hub.Drop() // subscribers must learn they may have missed events
		s.ended.drop()
		s.counters.drop()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// relay keeps one Redis subscription per node and fans its events out to
// the local subscribers, reconnecting with backoff.
func (s *Store) relay(ctx context.Context) {
	defer close(s.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		ps := s.client.Subscribe(ctx, s.channel, s.sessChannel, s.e2eeChannel)
		s.ps = ps
		s.mu.Unlock()
		wasHealthy, err := s.pump(ctx, ps)
		_ = ps.Close()
		s.setHealthy(false)
		if ctx.Err() != nil {
			return
		}
		if wasHealthy {
			backoff = 50 * time.Millisecond
			s.log.Warn("redisstore.events_lost", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Store) pump(ctx context.Context, ps *redis.PubSub) (wasHealthy bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthEvery)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return wasHealthy, err
				}
				pinged = true
				continue
			}
			return wasHealthy, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				wasHealthy = true
				s.loadScripts(ctx)
				s.setHealthy(true)
			}
		case *redis.Message:
			switch m.Channel {
			case s.sessChannel:
				s.ended.publish(m.Payload)
				continue
			case s.e2eeChannel:
				s.counters.publish(m.Payload)
				continue
			}
			e, err := decodeEvent(m.Payload)
			if err != nil {
				s.log.Error("redisstore.bad_event", zap.Error(err))
				continue
			}
			s.hub.Publish(e)
		}
	}
}

// wireEvent is what the scripts publish.
type wireEvent struct {
	Kind        string   `json:"kind"`
	Room        string   `json:"room"`
	Revoked     []string `json:"revoked"`
	Subject     string   `json:"subject"`
	Wait        string   `json:"wait_id"`
	Participant *record  `json:"participant"`
	AtMS        int64    `json:"at_ms"`
}

func decodeEvent(payload string) (rooms.Event, error) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return rooms.Event{}, err
	}
	if w.Kind == "" || w.Room == "" {
		return rooms.Event{}, errors.New("event without kind or room")
	}
	e := rooms.Event{Kind: rooms.EventKind(w.Kind), Room: w.Room, Subject: rooms.SubjectKey(w.Subject),
		Wait: rooms.WaitID(w.Wait), At: time.UnixMilli(w.AtMS)}
	for _, id := range w.Revoked {
		e.Revoked = append(e.Revoked, rooms.ParticipantID(id))
	}
	if p := w.Participant; p != nil {
		e.Participant = &rooms.Participant{ID: rooms.ParticipantID(p.ID), Subject: rooms.SubjectKey(p.S),
			Name: p.N, Role: rooms.Role(p.R), JoinedAt: time.UnixMilli(p.J)}
	}
	return e, nil
}

// loadScripts puts every script in Redis's cache whenever the link comes
// (back) up, so that a join storm right after a start or a Redis restart
// does not send each script's source with every call. Failure is harmless:
// Script.Run falls back to EVAL.
func (s *Store) loadScripts(ctx context.Context) {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			s.log.Warn("redisstore.script_load_failed", zap.Error(err))
			return
		}
	}
}
