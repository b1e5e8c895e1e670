package redisstore

import (
	"context"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// limitCall is the keys and common arguments of both rate-limit scripts:
// the address, the identity and the room are read and written in the one
// script, so the bookkeeping of a join is one round trip (BeginJoin), and
// one more only for a join that failed (RecordFailure).
func (s *Store) limitCall(a rooms.Attempt) (keys []string, args []any) {
	rl := s.cfg.RateLimits
	// Absent units get a key the scripts never touch (HAS_ID/HAS_ROOM).
	id, room := s.prefix+"rl:none", s.prefix+"rl:none"
	if a.Identity != "" {
		id = s.prefix + "rl:i:" + string(a.Identity)
	}
	if a.Room != "" {
		room = s.prefix + "rl:r:" + a.Room
	}
	keys = []string{s.prefix + "rl:p:" + a.IPKey(), id, room}
	args = []any{rl.Window.Milliseconds(), rl.FailureMemory.Milliseconds(), rl.RoomPasscodeWindow.Milliseconds(),
		flag(a.Identity != ""), flag(a.Room != ""), rl.AddressLimit(a.IP), rl.RoomPasscodeFailures}
	return keys, args
}

// BeginJoin implements rooms.Store.
func (s *Store) BeginJoin(ctx context.Context, a rooms.Attempt) (rooms.History, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, err
	}
	keys, args := s.limitCall(a)
	v, err := beginJoinScript.Run(ctx, s.client, keys, append(args, s.cfg.RateLimits.JoinAttemptsPerIdentity)...).Slice()
	if err != nil {
		return rooms.History{}, s.unavailable("begin_join", err)
	}
	return s.limitReply("begin_join", a, v)
}

// StartJoin implements rooms.Store: BeginJoin and Facts are one script
// (start_join.lua), so a join's reads before the policy are one round trip.
func (s *Store) StartJoin(ctx context.Context, a rooms.Attempt) (rooms.History, rooms.Facts, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, rooms.Facts{}, err
	}
	if a.Room == "" {
		return rooms.History{}, rooms.Facts{}, &rooms.InvalidError{Field: "room", Reason: "required"}
	}
	lkeys, largs := s.limitCall(a)
	keys := append(s.roomKeys(a.Room), lkeys...)
	argv := s.roomArgs(a.Room, append(largs, s.cfg.RateLimits.JoinAttemptsPerIdentity, string(a.Identity))...)
	v, err := startJoinScript.Run(ctx, s.client, keys, argv...).Slice()
	if err != nil {
		return rooms.History{}, rooms.Facts{}, s.unavailable("start_join", err)
	}
	if len(v) == 0 {
		return rooms.History{}, rooms.Facts{}, s.unavailable("start_join", errShortReply)
	}
	counts, _ := v[0].([]any)
	h, err := s.limitReply("start_join", a, counts)
	if err != nil {
		// Refused (the room was not read), or a reply it cannot read.
		return h, rooms.Facts{}, err
	}
	if len(v) != 2 {
		return rooms.History{}, rooms.Facts{}, s.unavailable("start_join", errShortReply)
	}
	facts, _ := v[1].([]any)
	f, err := s.factsReply("start_join", facts)
	if err != nil {
		return rooms.History{}, rooms.Facts{}, err
	}
	return h, f, nil
}

// RecordFailure implements rooms.Store.
func (s *Store) RecordFailure(ctx context.Context, a rooms.Attempt, f rooms.Failure) (rooms.History, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, err
	}
	if f != rooms.FailureJoin && f != rooms.FailurePasscode {
		return rooms.History{}, &rooms.InvalidError{Field: "failure", Reason: "unknown kind"}
	}
	rl := s.cfg.RateLimits
	if f != rooms.FailurePasscode {
		// Only passcode guesses are charged to a room.
		a.Room = ""
	}
	keys, args := s.limitCall(a)
	v, err := recordFailureScript.Run(ctx, s.client, keys, append(args, flag(f == rooms.FailurePasscode), flag(a.Member),
		rl.PasscodeFailuresPerIdentity, rl.BackoffBase.Milliseconds(), rl.BackoffMax.Milliseconds())...).Slice()
	if err != nil {
		return rooms.History{}, s.unavailable("record_failure", err)
	}
	return s.limitReply("record_failure", a, v)
}

// limitReply decodes {status, retry ms, ip a f pf, identity a f pf, room
// pf, window left ms, began, identity passcode memory left ms}.
func (s *Store) limitReply(op string, a rooms.Attempt, v []any) (rooms.History, error) {
	const fields = 12
	if len(v) != fields {
		return rooms.History{}, s.unavailable(op, errShortReply)
	}
	n := make([]int, fields)
	for i := 1; i < fields; i++ {
		x, _ := v[i].(int64)
		n[i] = int(x)
	}
	rl := s.cfg.RateLimits
	ip := rooms.Counts{JoinAttempts: n[2], JoinFailures: n[3], PasscodeFailures: n[4]}
	h := rooms.History{
		Identity:           rooms.Counts{JoinAttempts: n[5], JoinFailures: n[6], PasscodeFailures: n[7]},
		IP:                 rooms.AddressCounts{Counts: ip, Trusted: rl.Trusted(a.IP), Limited: ip.JoinFailures >= rl.AddressLimit(a.IP)},
		Room:               rooms.RoomCounts{PasscodeFailures: n[8], PasscodeAttack: n[8] >= rl.RoomPasscodeFailures, AttackBegan: n[10] == 1},
		WindowSeconds:      int(rl.Window / time.Second),
		WindowLeft:         time.Duration(n[9]) * time.Millisecond,
		PasscodeMemoryLeft: time.Duration(n[11]) * time.Millisecond,
	}
	retry := time.Duration(n[1]) * time.Millisecond
	switch v[0] {
	case "blocked":
		return h, &rooms.RateLimitedError{RetryAfter: retry, Unit: rooms.UnitIdentity, Reason: rooms.ReasonPasscodeFailures}
	case "address":
		return h, &rooms.RateLimitedError{RetryAfter: retry, Unit: rooms.UnitAddress, Reason: rooms.ReasonAddressFailures}
	case "limited":
		return h, &rooms.RateLimitedError{RetryAfter: retry, Unit: rooms.UnitIdentity, Reason: rooms.ReasonJoinAttempts}
	}
	return h, nil
}

// PasscodeBudget implements rooms.PasscodeBudgets.
func (s *Store) PasscodeBudget(ctx context.Context, room string) (rooms.RoomCounts, error) {
	if err := rooms.ValidateRoomID(room); err != nil {
		return rooms.RoomCounts{}, err
	}
	rl := s.cfg.RateLimits
	n, err := passcodeBudgetScript.Run(ctx, s.client, []string{s.prefix + "rl:r:" + room}, rl.RoomPasscodeWindow.Milliseconds()).Int()
	if err != nil {
		return rooms.RoomCounts{}, s.unavailable("passcode_budget", err)
	}
	return rooms.RoomCounts{PasscodeFailures: n, PasscodeAttack: n >= rl.RoomPasscodeFailures}, nil
}
