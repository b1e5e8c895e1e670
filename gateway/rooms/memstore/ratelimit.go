package memstore

import (
	"context"
	"net/netip"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// limitEntry counts for one identity, one address or one room.
type limitEntry struct {
	window             int64 // index of the fixed window the counts belong to
	attempts, failures int
	// passcodeFailures: for an identity, until passcodeUntil; for an
	// address or a room, in window.
	passcodeFailures int
	passcodeUntil    time.Time
	blockedUntil     time.Time
	keepUntil        time.Time // nothing in the entry matters after this
}

func (l *limitEntry) roll(window int64) {
	if l.window != window {
		l.window, l.attempts, l.failures = window, 0, 0
		if l.passcodeUntil.IsZero() {
			// Address and room entries count passcode failures per window.
			l.passcodeFailures = 0
		}
	}
}

func (l *limitEntry) stale(now time.Time, _ rooms.RateLimits) bool {
	return !now.Before(l.keepUntil)
}

func (l *limitEntry) keep(t time.Time) {
	l.keepUntil = maxTime(maxTime(l.keepUntil, t), l.blockedUntil)
}

// identityCounts reads an identity entry (nil reads as zero).
func (l *limitEntry) identityCounts(now time.Time, window int64) rooms.Counts {
	c := rooms.Counts{}
	if l == nil {
		return c
	}
	if l.window == window {
		c.JoinAttempts, c.JoinFailures = l.attempts, l.failures
	}
	if now.Before(l.passcodeUntil) {
		c.PasscodeFailures = l.passcodeFailures
	}
	return c
}

// windowCounts reads an address or room entry.
func (l *limitEntry) windowCounts(window int64) rooms.Counts {
	if l == nil || l.window != window {
		return rooms.Counts{}
	}
	return rooms.Counts{JoinAttempts: l.attempts, JoinFailures: l.failures, PasscodeFailures: l.passcodeFailures}
}

// limitState is one attempt's entries and clock.
type limitState struct {
	now              time.Time
	window, room     int64 // window indexes: the counting window, the room's
	windowEnd        time.Time
	roomEnd          time.Time
	id, ip, roomRate *limitEntry
	limit            int
	trusted          bool
}

// entries returns the attempt's entries: the identity's (nil without an
// identity), the address's (created with create) and the room's (nil
// without a room, or when it does not exist and create is false).
func (s *Store) entries(a rooms.Attempt, create bool) limitState {
	rl := s.cfg.RateLimits
	now := s.now()
	st := limitState{now: now, limit: rl.AddressLimit(a.IP), trusted: rl.Trusted(a.IP)}
	st.window = now.UnixMilli() / rl.Window.Milliseconds()
	st.windowEnd = time.UnixMilli((st.window + 1) * rl.Window.Milliseconds())
	st.room = now.UnixMilli() / rl.RoomPasscodeWindow.Milliseconds()
	st.roomEnd = time.UnixMilli((st.room + 1) * rl.RoomPasscodeWindow.Milliseconds())
	get := func(k string, create bool) *limitEntry {
		l := s.limits[k]
		if l == nil && create {
			l = &limitEntry{window: -1}
			s.limits[k] = l
		}
		return l
	}
	if a.Identity != "" {
		st.id = get("i:"+string(a.Identity), true)
	}
	st.ip = get("p:"+a.IPKey(), true)
	if a.Room != "" {
		st.roomRate = get("r:"+a.Room, create)
	}
	return st
}

func (s *Store) history(st limitState) rooms.History {
	ip := st.ip.windowCounts(st.window)
	room := st.roomRate.windowCounts(st.room)
	rl := s.cfg.RateLimits
	id := st.id.identityCounts(st.now, st.window)
	var memory time.Duration
	if id.PasscodeFailures > 0 {
		memory = st.id.passcodeUntil.Sub(st.now)
	}
	return rooms.History{
		Identity:           id,
		PasscodeMemoryLeft: memory,
		IP:                 rooms.AddressCounts{Counts: ip, Trusted: st.trusted, Limited: ip.JoinFailures >= st.limit},
		Room: rooms.RoomCounts{PasscodeFailures: room.PasscodeFailures,
			PasscodeAttack: room.PasscodeFailures >= rl.RoomPasscodeFailures},
		WindowSeconds: int(rl.Window / time.Second),
		WindowLeft:    st.windowEnd.Sub(st.now),
	}
}

// BeginJoin implements rooms.Store.
func (s *Store) BeginJoin(ctx context.Context, a rooms.Attempt) (rooms.History, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, err
	}
	if err := s.lock(); err != nil {
		return rooms.History{}, err
	}
	defer s.mu.Unlock()
	return s.beginJoin(a)
}

// StartJoin implements rooms.Store: BeginJoin and Facts under one lock.
func (s *Store) StartJoin(ctx context.Context, a rooms.Attempt) (rooms.History, rooms.Facts, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, rooms.Facts{}, err
	}
	if a.Room == "" {
		return rooms.History{}, rooms.Facts{}, &rooms.InvalidError{Field: "room", Reason: "required"}
	}
	if err := s.lock(); err != nil {
		return rooms.History{}, rooms.Facts{}, err
	}
	defer s.mu.Unlock()
	h, err := s.beginJoin(a)
	if err != nil {
		return h, rooms.Facts{}, err
	}
	return h, s.facts(a.Room, a.Identity), nil
}

// beginJoin is BeginJoin with s.mu held.
func (s *Store) beginJoin(a rooms.Attempt) (rooms.History, error) {
	rl := s.cfg.RateLimits
	st := s.entries(a, false)
	if st.id != nil && st.now.Before(st.id.blockedUntil) {
		return s.history(st), &rooms.RateLimitedError{RetryAfter: st.id.blockedUntil.Sub(st.now),
			Unit: rooms.UnitIdentity, Reason: rooms.ReasonPasscodeFailures}
	}
	h := s.history(st)
	// The address backstop, as far as the store can apply it: an
	// identity that failed itself (or a caller without one) is refused
	// at an address over its limit. Whom the policy vouches for is the
	// policy's to say (history.ip.limited).
	if h.IP.Limited && (a.Identity == "" || h.Identity.Failed()) {
		return h, &rooms.RateLimitedError{RetryAfter: h.WindowLeft, Unit: rooms.UnitAddress, Reason: rooms.ReasonAddressFailures}
	}
	st.ip.roll(st.window)
	st.ip.attempts++
	st.ip.keep(st.windowEnd)
	over := false
	if st.id != nil {
		st.id.roll(st.window)
		st.id.attempts++
		st.id.keep(st.windowEnd)
		over = st.id.attempts > rl.JoinAttemptsPerIdentity
	}
	h = s.history(st)
	if over {
		return h, &rooms.RateLimitedError{RetryAfter: h.WindowLeft, Unit: rooms.UnitIdentity, Reason: rooms.ReasonJoinAttempts}
	}
	return h, nil
}

// RecordFailure implements rooms.Store.
func (s *Store) RecordFailure(ctx context.Context, a rooms.Attempt, f rooms.Failure) (rooms.History, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, err
	}
	if f != rooms.FailureJoin && f != rooms.FailurePasscode {
		return rooms.History{}, &rooms.InvalidError{Field: "failure", Reason: "unknown kind"}
	}
	if err := s.lock(); err != nil {
		return rooms.History{}, err
	}
	defer s.mu.Unlock()
	rl := s.cfg.RateLimits
	passcode := f == rooms.FailurePasscode
	if !passcode {
		// Only passcode guesses are charged to a room.
		a.Room = ""
	}
	st := s.entries(a, true)
	if id := st.id; id != nil {
		id.roll(st.window)
		id.failures++
		id.keep(st.windowEnd)
		if passcode {
			if !st.now.Before(id.passcodeUntil) {
				id.passcodeFailures = 0
			}
			id.passcodeFailures++
			id.passcodeUntil = st.now.Add(rl.FailureMemory)
			if d := rl.Backoff(id.passcodeFailures); d > 0 {
				id.blockedUntil = maxTime(id.blockedUntil, st.now.Add(d))
			}
			id.keep(id.passcodeUntil)
		}
	}
	if passcode || !a.Member {
		st.ip.roll(st.window)
		st.ip.failures++
		if passcode {
			st.ip.passcodeFailures++
		}
		st.ip.keep(st.windowEnd)
	}
	began := false
	if r := st.roomRate; passcode && r != nil {
		r.roll(st.room)
		r.passcodeFailures++
		r.keep(st.roomEnd)
		began = r.passcodeFailures == rl.RoomPasscodeFailures
	}
	h := s.history(st)
	h.Room.AttackBegan = began
	return h, nil
}

// PasscodeBudget implements rooms.PasscodeBudgets.
func (s *Store) PasscodeBudget(ctx context.Context, room string) (rooms.RoomCounts, error) {
	if err := rooms.ValidateRoomID(room); err != nil {
		return rooms.RoomCounts{}, err
	}
	if err := s.lock(); err != nil {
		return rooms.RoomCounts{}, err
	}
	defer s.mu.Unlock()
	rl := s.cfg.RateLimits
	st := s.entries(rooms.Attempt{IP: netip.IPv4Unspecified(), Room: room}, false)
	n := st.roomRate.windowCounts(st.room).PasscodeFailures
	return rooms.RoomCounts{PasscodeFailures: n, PasscodeAttack: n >= rl.RoomPasscodeFailures}, nil
}
