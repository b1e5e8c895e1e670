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
	// granted is the role the admission was made with (the policy's
	// grant): SetRole gives RoleHost back only to admissions made as host.
	granted rooms.Role
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
