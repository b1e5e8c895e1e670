package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Put implements rooms.Store.
func (s *Store) Put(ctx context.Context, id string, owner rooms.SubjectKey, ch rooms.SettingsChange) (bool, error) {
	return s.put(id, owner, ch, false)
}

// Create implements rooms.Store.
func (s *Store) Create(ctx context.Context, id string, owner rooms.SubjectKey, ch rooms.SettingsChange) error {
	_, err := s.put(id, owner, ch, true)
	return err
}

// put is Put, or with createOnly Create: the existence check and the write
// happen under one hold of the lock.
func (s *Store) put(id string, owner rooms.SubjectKey, ch rooms.SettingsChange, createOnly bool) (bool, error) {
	if err := validRoomAndSubject(id, owner); err != nil {
		return false, err
	}
	if err := ch.Validate(s.cfg); err != nil {
		return false, err
	}
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := s.now()
	r := s.live(id, now)
	created := r == nil
	if !created && createOnly {
		return false, fmt.Errorf("memstore: create %s: %w", id, rooms.ErrExists)
	}
	if created {
		r = &room{
			id: id, owner: owner, created: now, emptySince: now,
			settings: rooms.Settings{Capacity: s.cfg.DefaultCapacity, Tags: []string{}},
			parts:    map[rooms.ParticipantID]*participant{}, waiting: map[rooms.WaitID]*waitEntry{},
		}
		s.rooms[id] = r
		if bl := s.bans[id]; bl != nil {
			bl.until = time.Time{}
		}
	}
	st := &r.settings
	lockWas := st.Locked
	set(&st.Capacity, ch.Capacity)
	set(&st.Locked, ch.Locked)
	set(&st.LobbyEnabled, ch.LobbyEnabled)
	set(&st.PasscodeHash, ch.PasscodeHash)
	set(&st.E2EERequired, ch.E2EERequired)
	if ch.Tags != nil {
		st.Tags = slices.Clone(*ch.Tags)
	}
	if ch.Permanent != nil && *ch.Permanent != r.perm {
		r.perm = *ch.Permanent
		if len(r.parts) == 0 {
			r.emptySince = now
		}
	}
	if !created {
		if st.Locked != lockWas {
			s.publish(lockEvent(st.Locked), id, now, nil)
		}
		if ch.Capacity != nil || ch.LobbyEnabled != nil || ch.PasscodeHash != nil || ch.E2EERequired != nil ||
			ch.Tags != nil || ch.Permanent != nil {
			s.publish(rooms.Event{Kind: rooms.EventUpdated}, id, now, nil)
		}
	}
	return created, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func lockEvent(locked bool) rooms.Event {
	if locked {
		return rooms.Event{Kind: rooms.EventLocked}
	}
	return rooms.Event{Kind: rooms.EventUnlocked}
}

// Room implements rooms.Store.
func (s *Store) Room(ctx context.Context, id string) (rooms.Room, error) {
	if err := rooms.ValidateRoomID(id); err != nil {
		return rooms.Room{}, err
	}
	return withRoom(s, id, rooms.ErrNotFound, func(r *room, _ time.Time) (rooms.Room, error) {
		return s.snapshot(r), nil
	})
}

// snapshot copies r, with its bans, for a caller outside the lock.
func (s *Store) snapshot(r *room) rooms.Room {
	out := rooms.Room{
		ID: r.id, Owner: r.owner, Settings: r.settings, PasscodeSet: r.settings.PasscodeHash != "",
		Permanent: r.perm, CreatedAt: r.created,
		Participants: make([]rooms.Participant, 0, len(r.parts)),
		Waiting:      make([]rooms.WaitEntry, 0, len(r.waiting)),
		Bans:         []rooms.Ban{},
	}
	out.Tags = slices.Clone(r.settings.Tags)
	for _, p := range r.parts {
		out.Participants = append(out.Participants, p.Participant)
	}
	for _, w := range r.waiting {
		out.Waiting = append(out.Waiting, w.WaitEntry)
	}
	if bl := s.bans[r.id]; bl != nil {
		for _, b := range bl.bans {
			out.Bans = append(out.Bans, b)
		}
	}
	out.Sort()
	return out
}

// Facts implements rooms.Store.
func (s *Store) Facts(ctx context.Context, id string, subject rooms.SubjectKey) (rooms.Facts, error) {
	if err := rooms.ValidateRoomID(id); err != nil {
		return rooms.Facts{}, err
	}
	if subject != "" {
		if err := subject.Validate(); err != nil {
			return rooms.Facts{}, err
		}
	}
	if err := s.lock(); err != nil {
		return rooms.Facts{}, err
	}
	defer s.mu.Unlock()
	return s.facts(id, subject), nil
}

// facts is Facts with s.mu held.
func (s *Store) facts(id string, subject rooms.SubjectKey) rooms.Facts {
	now := s.now()
	r := s.live(id, now)
	f := rooms.Facts{Tags: []string{}, Banned: subject != "" && s.banned(id, subject, now)}
	if r == nil {
		return f
	}
	st := r.settings
	f.Exists, f.Owner, f.Capacity, f.Occupancy = true, r.owner, st.Capacity, len(r.parts)
	f.Locked, f.LobbyEnabled, f.HostPresent = st.Locked, st.LobbyEnabled, r.hosts > 0
	f.PasscodeRequired, f.PasscodeHash, f.E2EERequired = st.PasscodeHash != "", st.PasscodeHash, st.E2EERequired
	f.Tags = slices.Clone(st.Tags)
	return f
}

// Lock implements rooms.Store.
func (s *Store) Lock(ctx context.Context, roomID string) error { return s.setLock(roomID, true) }

// Unlock implements rooms.Store.
func (s *Store) Unlock(ctx context.Context, roomID string) error { return s.setLock(roomID, false) }

func (s *Store) setLock(roomID string, locked bool) error {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return err
	}
	return s.inRoom(roomID, rooms.ErrNotFound, func(r *room, now time.Time) error {
		if r.settings.Locked != locked {
			r.settings.Locked = locked
			s.publish(lockEvent(locked), roomID, now, nil)
		}
		return nil
	})
}

// Suspend implements rooms.Store.
func (s *Store) Suspend(ctx context.Context, roomID string) (rooms.Removal, error) {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return rooms.Removal{}, err
	}
	return withRoom(s, roomID, rooms.ErrNotFound, func(r *room, now time.Time) (rooms.Removal, error) {
		r.settings.Locked = true
		rm := rooms.Removal{Room: roomID, Revoked: []rooms.ParticipantID{}}
		for id, p := range r.parts {
			if p.Role != rooms.RoleHost {
				s.drop(r, id, now)
				rm.Revoked = append(rm.Revoked, id)
			}
		}
		for id := range r.waiting {
			s.decide(r, id, rooms.Outcome{Status: rooms.Denied}, now)
		}
		slices.Sort(rm.Revoked)
		s.publish(rooms.Event{Kind: rooms.EventSuspended}, roomID, now, rm.Revoked)
		return rm, nil
	})
}
