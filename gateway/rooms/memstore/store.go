// Package memstore keeps room state in this process: the default store for
// a single gateway node. It must never be used by several nodes behind one
// load balancer (each would enforce capacity, bans and rate limits alone);
// use redisstore for that.
//
// Expiry (empty rooms, lapsed leases, waiting entries, bans, rate-limit
// counters) is decided on every access with the configured clock, so it is
// exact and testable; a janitor only frees the memory of what has expired.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/internal/eventhub"
)

// Options configure a Store.
type Options struct {
	Rooms rooms.Config
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default zap.NewNop().
	Logger *zap.Logger
	// JanitorInterval is how often expired state is freed. Default 30s.
	JanitorInterval time.Duration
}

// Store is the in-memory rooms.Store. One mutex guards everything: every
// operation is a few map lookups, far below the cost of the HTTP request
// around it, and one lock makes every check-and-change trivially atomic.
type Store struct {
	cfg  rooms.Config
	now  func() time.Time
	log  *zap.Logger
	hub  eventhub.Hub
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	closed   bool
	rooms    map[string]*room
	bans     map[string]*banList
	outcomes map[rooms.WaitID]outcome
	limits   map[string]*limitEntry
}

var _ rooms.Store = (*Store)(nil)

type room struct {
	id         string
	owner      rooms.SubjectKey
	settings   rooms.Settings
	perm       bool
	created    time.Time
	emptySince time.Time
	parts      map[rooms.ParticipantID]*participant
	hosts      int
	waiting    map[rooms.WaitID]*waitEntry
	// minLease and minWait are lower bounds on the earliest lease and
	// waiting-entry expiry, so that most operations skip the prune scan.
	minLease, minWait time.Time
}

type participant struct {
	rooms.Participant
	lease time.Time
}

type waitEntry struct {
	rooms.WaitEntry
	expires time.Time
}

// banList outlives its room: until is zero while the room lives and is set
// to end+BanTTL when it ends.
type banList struct {
	bans  map[rooms.SubjectKey]rooms.Ban
	until time.Time
}

type outcome struct {
	room    string
	o       rooms.Outcome
	expires time.Time
}

// New starts a store and its janitor; the janitor stops when ctx ends or on
// Close.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := o.Rooms.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = 30 * time.Second
	}
	if o.JanitorInterval < 0 {
		return nil, &rooms.InvalidError{Field: "janitor_interval", Reason: "must be positive"}
	}
	ctx, stop := context.WithCancel(ctx)
	s := &Store{
		cfg: o.Rooms.WithDefaults(), now: o.Now, log: o.Logger, stop: stop, done: make(chan struct{}),
		rooms: map[string]*room{}, bans: map[string]*banList{},
		outcomes: map[rooms.WaitID]outcome{}, limits: map[string]*limitEntry{},
	}
	go s.janitor(ctx, o.JanitorInterval)
	return s, nil
}

// Close stops the janitor and closes every subscription.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hub.Drop()
	return nil
}

var errClosed = fmt.Errorf("memstore: closed: %w", rooms.ErrStoreUnavailable)

// lock takes the mutex unless the store is closed.
func (s *Store) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

// withRoom runs f under the lock with room id as it stands at now, after
// every expiry due; if the room does not exist or has ended it returns
// missing without calling f. Holding the lock for all of f is what makes
// each operation's check-and-change atomic.
func withRoom[T any](s *Store, id string, missing error, f func(r *room, now time.Time) (T, error)) (T, error) {
	var zero T
	if err := s.lock(); err != nil {
		return zero, err
	}
	defer s.mu.Unlock()
	now := s.now()
	r := s.live(id, now)
	if r == nil {
		return zero, missing
	}
	return f(r, now)
}

// inRoom is withRoom for operations that return only an error.
func (s *Store) inRoom(id string, missing error, f func(r *room, now time.Time) error) error {
	_, err := withRoom(s, id, missing, func(r *room, now time.Time) (struct{}, error) {
		return struct{}{}, f(r, now)
	})
	return err
}

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
	now := s.now()
	r := s.live(id, now)
	f := rooms.Facts{Tags: []string{}, Banned: subject != "" && s.banned(id, subject, now)}
	if r == nil {
		return f, nil
	}
	st := r.settings
	f.Exists, f.Owner, f.Capacity, f.Occupancy = true, r.owner, st.Capacity, len(r.parts)
	f.Locked, f.LobbyEnabled, f.HostPresent = st.Locked, st.LobbyEnabled, r.hosts > 0
	f.PasscodeRequired, f.PasscodeHash, f.E2EERequired = st.PasscodeHash != "", st.PasscodeHash, st.E2EERequired
	f.Tags = slices.Clone(st.Tags)
	return f, nil
}

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
				Device: a.Device, LastSeen: now},
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

// Subscribe implements rooms.Store.
func (s *Store) Subscribe(ctx context.Context) (<-chan rooms.Event, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.hub.Subscribe(ctx), nil
}

func (s *Store) publish(e rooms.Event, roomID string, now time.Time, revoked []rooms.ParticipantID) {
	e.Room, e.At = roomID, now
	if len(revoked) > 0 {
		e.Revoked = slices.Clone(revoked)
	}
	s.hub.Publish(e)
}

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

func validRoomAndPID(roomID string, pid rooms.ParticipantID) error {
	return errors.Join(rooms.ValidateRoomID(roomID), pid.Validate())
}

func validRoomAndWait(roomID string, wid rooms.WaitID) error {
	return errors.Join(rooms.ValidateRoomID(roomID), wid.Validate())
}

// validRoomAndSubject, unlike the two above, stops at the first fault, so a
// bad room ID is reported alone and is never joined with the subject's.
func validRoomAndSubject(roomID string, subject rooms.SubjectKey) error {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return err
	}
	return subject.Validate()
}

// Sizes counts what the store holds, for metrics and for tests of the
// janitor.
type Sizes struct {
	Rooms, BanLists, Outcomes, Counters int
}

// Sizes reports how many rooms, ban lists, remembered outcomes and
// rate-limit counters the store holds.
func (s *Store) Sizes() Sizes {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Sizes{Rooms: len(s.rooms), BanLists: len(s.bans), Outcomes: len(s.outcomes), Counters: len(s.limits)}
}
