package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/internal/eventhub"
)

// Knock implements rooms.Store.
func (s *Store) Knock(ctx context.Context, a rooms.Admission) (rooms.WaitEntry, error) {
	if err := a.Validate(); err != nil {
		return rooms.WaitEntry{}, err
	}
	return withRoom(s, a.Room, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.WaitEntry, error) {
		switch {
		case s.banned(a.Room, a.Subject, now):
			return rooms.WaitEntry{}, rooms.ErrBanned
		case r.settings.Locked:
			return rooms.WaitEntry{}, rooms.ErrLocked
		}
		// One place per person: a second knock (a new tab, a reload
		// without the wait cookie) replaces the first, so the host never
		// admits a ghost while the real person waits.
		var replaced []rooms.WaitID
		for id, w := range r.waiting {
			if w.Subject == a.Subject {
				replaced = append(replaced, id)
			}
		}
		if len(r.waiting)-len(replaced) >= s.cfg.LobbyPerRoom {
			return rooms.WaitEntry{}, rooms.ErrLobbyFull
		}
		for _, id := range replaced {
			delete(r.waiting, id)
		}
		w := &waitEntry{
			WaitEntry: rooms.WaitEntry{ID: rooms.NewWaitID(), Subject: a.Subject, Name: a.Name, Role: a.Role, Since: now,
				Device: a.Device, LastSeen: now, EmailDomain: a.EmailDomain, Verdict: slices.Clone(a.Verdict)},
			expires: knockExpiry(s.cfg, now, now),
		}
		r.waiting[w.ID] = w
		if r.minWait.IsZero() || w.expires.Before(r.minWait) {
			r.minWait = w.expires
		}
		s.publish(rooms.Event{Kind: rooms.EventKnocked, Wait: w.ID, Subject: a.Subject}, a.Room, now, nil)
		return w.WaitEntry, nil
	})
}

// knockExpiry is when a knock made at since and last renewed at seen
// expires.
func knockExpiry(cfg rooms.Config, since, seen time.Time) time.Time {
	end := seen.Add(cfg.KnockTTL)
	if limit := since.Add(cfg.WaitTTL); limit.Before(end) {
		return limit
	}
	return end
}

// Heartbeat implements rooms.Store.
func (s *Store) Heartbeat(ctx context.Context, roomID string, wid rooms.WaitID) error {
	if err := validRoomAndWait(roomID, wid); err != nil {
		return err
	}
	return s.inRoom(roomID, rooms.ErrNotFound, func(r *room, now time.Time) error {
		w, err := r.waiter(wid)
		if err != nil {
			return err
		}
		w.LastSeen, w.expires = now, knockExpiry(s.cfg, w.Since, now)
		return nil
	})
}

// AdmitWaiting implements rooms.Store.
func (s *Store) AdmitWaiting(ctx context.Context, roomID string, wid rooms.WaitID) (rooms.Participant, error) {
	if err := validRoomAndWait(roomID, wid); err != nil {
		return rooms.Participant{}, err
	}
	return withRoom(s, roomID, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.Participant, error) {
		w, err := r.waiter(wid)
		switch {
		case err != nil:
			return rooms.Participant{}, err
		case s.banned(roomID, w.Subject, now):
			s.decide(r, wid, rooms.Outcome{Status: rooms.Denied}, now)
			return rooms.Participant{}, rooms.ErrBanned
		case len(r.parts) >= r.settings.Capacity:
			return rooms.Participant{}, rooms.ErrRoomFull
		}
		p := s.add(r, rooms.NewParticipantID(), w.Subject, w.Name, w.Role, now)
		s.decide(r, wid, rooms.Outcome{Status: rooms.Admitted, Participant: p}, now)
		s.publish(rooms.Event{Kind: rooms.EventLobbyAdmitted, Wait: wid, Subject: w.Subject, Participant: &p}, roomID, now, nil)
		return p, nil
	})
}

// waiter is the waiting entry wid in r.
func (r *room) waiter(wid rooms.WaitID) (*waitEntry, error) {
	w, ok := r.waiting[wid]
	if !ok {
		return nil, rooms.ErrNotFound
	}
	return w, nil
}

// decide removes a waiting entry and records its outcome for the waiter.
func (s *Store) decide(r *room, wid rooms.WaitID, o rooms.Outcome, now time.Time) {
	w := r.waiting[wid]
	delete(r.waiting, wid)
	o.Wait, o.Subject = wid, w.Subject
	s.outcomes[wid] = outcome{room: r.id, o: o, expires: now.Add(rooms.OutcomeTTL)}
}

// DenyWaiting implements rooms.Store.
func (s *Store) DenyWaiting(ctx context.Context, roomID string, wid rooms.WaitID, ban bool) error {
	if err := validRoomAndWait(roomID, wid); err != nil {
		return err
	}
	return s.inRoom(roomID, rooms.ErrNotFound, func(r *room, now time.Time) error {
		w, err := r.waiter(wid)
		if err != nil {
			return err
		}
		s.decide(r, wid, rooms.Outcome{Status: rooms.Denied}, now)
		s.publish(rooms.Event{Kind: rooms.EventLobbyDenied, Wait: wid, Subject: w.Subject}, roomID, now, nil)
		if ban {
			revoked := s.ban(r, w.Subject, w.Name, now)
			s.publish(rooms.Event{Kind: rooms.EventBanned, Subject: w.Subject}, roomID, now, revoked)
		}
		return nil
	})
}

// WaitStatus implements rooms.Store.
func (s *Store) WaitStatus(ctx context.Context, roomID string, wid rooms.WaitID) (rooms.Outcome, error) {
	if err := validRoomAndWait(roomID, wid); err != nil {
		return rooms.Outcome{}, err
	}
	if err := s.lock(); err != nil {
		return rooms.Outcome{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	if o, ok := s.outcomes[wid]; ok && o.room == roomID && now.Before(o.expires) {
		return o.o, nil
	}
	r := s.live(roomID, now)
	if r == nil {
		return rooms.Outcome{}, rooms.ErrNotFound
	}
	w, err := r.waiter(wid)
	if err != nil {
		return rooms.Outcome{}, err
	}
	return rooms.Outcome{Wait: wid, Status: rooms.Waiting, Subject: w.Subject}, nil
}

// Await implements rooms.Store.
func (s *Store) Await(ctx context.Context, roomID string, wid rooms.WaitID) (rooms.Outcome, error) {
	return eventhub.Await(ctx, &s.hub, roomID, func(ctx context.Context) (rooms.Outcome, error) {
		return s.WaitStatus(ctx, roomID, wid)
	})
}
