package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Admit implements rooms.Store.
func (s *Store) Admit(ctx context.Context, a rooms.Admission) (rooms.Participant, error) {
	if err := a.Validate(); err != nil {
		return rooms.Participant{}, err
	}
	return withRoom(s, a.Room, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.Participant, error) {
		switch {
		case s.banned(a.Room, a.Subject, now):
			return rooms.Participant{}, rooms.ErrBanned
		case r.settings.Locked && a.Role != rooms.RoleHost:
			return rooms.Participant{}, rooms.ErrLocked
		case len(r.parts) >= r.settings.Capacity:
			return rooms.Participant{}, rooms.ErrRoomFull
		}
		return s.add(r, rooms.NewParticipantID(), a.Subject, a.Name, a.Role, now), nil
	})
}

func (s *Store) add(r *room, id rooms.ParticipantID, subject rooms.SubjectKey, name string, role rooms.Role, now time.Time) rooms.Participant {
	p := &participant{
		Participant: rooms.Participant{ID: id, Subject: subject, Name: name, Role: role, JoinedAt: now},
		lease:       now.Add(s.cfg.ParticipantLease),
		granted:     role,
	}
	r.parts[id] = p
	if role == rooms.RoleHost {
		r.hosts++
	}
	if r.minLease.IsZero() || p.lease.Before(r.minLease) {
		r.minLease = p.lease
	}
	return p.Participant
}

// drop ends one admission; the caller publishes.
func (s *Store) drop(r *room, id rooms.ParticipantID, now time.Time) (*participant, bool) {
	p, ok := r.parts[id]
	if !ok {
		return nil, false
	}
	delete(r.parts, id)
	if p.Role == rooms.RoleHost {
		r.hosts--
	}
	if len(r.parts) == 0 {
		r.emptySince = now
	}
	return p, true
}

// Touch implements rooms.Store.
func (s *Store) Touch(ctx context.Context, roomID string, pid rooms.ParticipantID) (rooms.Participant, error) {
	if err := validRoomAndPID(roomID, pid); err != nil {
		return rooms.Participant{}, err
	}
	return withRoom(s, roomID, rooms.ErrNotAdmitted, func(r *room, now time.Time) (rooms.Participant, error) {
		p, err := r.admitted(pid)
		if err != nil {
			return rooms.Participant{}, err
		}
		p.lease = now.Add(s.cfg.ParticipantLease)
		return p.Participant, nil
	})
}

// Leave implements rooms.Store.
func (s *Store) Leave(ctx context.Context, roomID string, pid rooms.ParticipantID) error {
	if err := validRoomAndPID(roomID, pid); err != nil {
		return err
	}
	return s.inRoom(roomID, rooms.ErrNotAdmitted, func(r *room, now time.Time) error {
		p, ok := s.drop(r, pid, now)
		if !ok {
			return rooms.ErrNotAdmitted
		}
		s.publish(rooms.Event{Kind: rooms.EventLeft, Subject: p.Subject}, roomID, now, []rooms.ParticipantID{pid})
		return nil
	})
}

// Remove implements rooms.Store.
func (s *Store) Remove(ctx context.Context, roomID string, pid rooms.ParticipantID, ban bool) (rooms.Removal, error) {
	if err := validRoomAndPID(roomID, pid); err != nil {
		return rooms.Removal{}, err
	}
	return withRoom(s, roomID, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.Removal, error) {
		p, err := r.admitted(pid)
		if err != nil {
			return rooms.Removal{}, err
		}
		rm := rooms.Removal{Room: roomID, Subject: p.Subject}
		if ban {
			rm.Revoked = s.ban(r, p.Subject, p.Name, now)
			s.publish(rooms.Event{Kind: rooms.EventBanned, Subject: p.Subject}, roomID, now, rm.Revoked)
			return rm, nil
		}
		s.drop(r, pid, now)
		rm.Revoked = []rooms.ParticipantID{pid}
		s.publish(rooms.Event{Kind: rooms.EventRemoved, Subject: p.Subject}, roomID, now, rm.Revoked)
		return rm, nil
	})
}

// SetRole implements rooms.Store.
func (s *Store) SetRole(ctx context.Context, roomID string, pid rooms.ParticipantID, role rooms.Role) (rooms.RoleChange, error) {
	if err := validRoomAndPID(roomID, pid); err != nil {
		return rooms.RoleChange{}, err
	}
	if err := role.Validate(); err != nil {
		return rooms.RoleChange{}, err
	}
	return withRoom(s, roomID, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.RoleChange, error) {
		p, err := r.admitted(pid)
		if err != nil {
			return rooms.RoleChange{}, err
		}
		ch := rooms.RoleChange{From: p.Role}
		switch {
		case p.Role == role:
			ch.Participant = p.Participant
			return ch, nil
		case role == rooms.RoleHost && p.granted != rooms.RoleHost:
			return rooms.RoleChange{}, rooms.ErrRoleNotGranted
		case p.Role == rooms.RoleHost && r.hosts <= 1:
			return rooms.RoleChange{}, rooms.ErrLastHost
		}
		if p.Role == rooms.RoleHost {
			r.hosts--
		}
		if role == rooms.RoleHost {
			r.hosts++
		}
		p.Role = role
		ch.Participant = p.Participant
		changed := p.Participant
		s.publish(rooms.Event{Kind: rooms.EventRoleChanged, Subject: p.Subject, Participant: &changed}, roomID, now, nil)
		return ch, nil
	})
}

// admitted is pid's admission in r.
func (r *room) admitted(pid rooms.ParticipantID) (*participant, error) {
	p, ok := r.parts[pid]
	if !ok {
		return nil, rooms.ErrNotAdmitted
	}
	return p, nil
}

// ban records the ban and ends every admission and waiting entry of
// subject in r, returning the admissions it ended.
func (s *Store) ban(r *room, subject rooms.SubjectKey, name string, now time.Time) []rooms.ParticipantID {
	bl := s.bans[r.id]
	if bl == nil {
		bl = &banList{bans: map[rooms.SubjectKey]rooms.Ban{}}
		s.bans[r.id] = bl
	}
	bl.bans[subject] = rooms.Ban{Subject: subject, Name: name, At: now}
	revoked := []rooms.ParticipantID{}
	for id, p := range r.parts {
		if p.Subject == subject {
			s.drop(r, id, now)
			revoked = append(revoked, id)
		}
	}
	for id, w := range r.waiting {
		if w.Subject == subject {
			s.decide(r, id, rooms.Outcome{Status: rooms.Denied}, now)
		}
	}
	slices.Sort(revoked)
	return revoked
}

// Unban implements rooms.Store.
func (s *Store) Unban(ctx context.Context, roomID string, subject rooms.SubjectKey) error {
	if err := validRoomAndSubject(roomID, subject); err != nil {
		return err
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if bl := s.bans[roomID]; bl != nil {
		delete(bl.bans, subject)
	}
	return nil
}

// IsBanned implements rooms.Store.
func (s *Store) IsBanned(ctx context.Context, roomID string, subject rooms.SubjectKey) (bool, error) {
	if err := validRoomAndSubject(roomID, subject); err != nil {
		return false, err
	}
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.live(roomID, now) // an ended room starts its bans' countdown
	return s.banned(roomID, subject, now), nil
}

func (s *Store) banned(roomID string, subject rooms.SubjectKey, now time.Time) bool {
	bl := s.bans[roomID]
	if bl == nil {
		return false
	}
	if !bl.until.IsZero() && !now.Before(bl.until) {
		delete(s.bans, roomID)
		return false
	}
	_, ok := bl.bans[subject]
	return ok
}
