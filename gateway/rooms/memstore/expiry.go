package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// live returns room id after applying every expiry due at now, or nil if it
// does not exist or has ended.
func (s *Store) live(id string, now time.Time) *room {
	r := s.rooms[id]
	if r == nil {
		return nil
	}
	if !r.minLease.IsZero() && !now.Before(r.minLease) {
		s.pruneLeases(r, now)
	}
	if !r.minWait.IsZero() && !now.Before(r.minWait) {
		s.pruneWaiting(r, now)
	}
	if r.perm || len(r.parts) > 0 {
		return r
	}
	end := r.emptySince.Add(s.cfg.EmptyRoomTTL)
	if now.Before(end) {
		return r
	}
	delete(s.rooms, id)
	if bl := s.bans[id]; bl != nil {
		bl.until = end.Add(s.cfg.BanTTL)
	}
	return nil
}

func (s *Store) pruneLeases(r *room, now time.Time) {
	var lapsed []rooms.ParticipantID
	var last, next time.Time
	for id, p := range r.parts {
		if now.Before(p.lease) {
			if next.IsZero() || p.lease.Before(next) {
				next = p.lease
			}
			continue
		}
		lapsed = append(lapsed, id)
		last = maxTime(last, p.lease)
	}
	r.minLease = next
	for _, id := range lapsed {
		s.drop(r, id, last) // the room has been empty since the last lease lapsed
	}
	if len(lapsed) > 0 {
		slices.Sort(lapsed)
		s.publish(rooms.Event{Kind: rooms.EventExpired}, r.id, now, lapsed)
	}
}

func (s *Store) pruneWaiting(r *room, now time.Time) {
	var next time.Time
	for id, w := range r.waiting {
		if now.Before(w.expires) {
			if next.IsZero() || w.expires.Before(next) {
				next = w.expires
			}
			continue
		}
		delete(r.waiting, id)
	}
	r.minWait = next
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Store) janitor(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep frees everything that has expired.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id := range s.rooms {
		s.live(id, now)
	}
	for id, bl := range s.bans {
		if len(bl.bans) == 0 || !bl.until.IsZero() && !now.Before(bl.until) {
			delete(s.bans, id)
		}
	}
	for id, o := range s.outcomes {
		if !now.Before(o.expires) {
			delete(s.outcomes, id)
		}
	}
	for k, l := range s.limits {
		if l.stale(now, s.cfg.RateLimits) {
			delete(s.limits, k)
		}
	}
}
