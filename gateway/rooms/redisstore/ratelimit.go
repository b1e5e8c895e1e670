package redisstore

import (
	"context"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func (s *Store) limitKeys(a rooms.Attempt) []string {
	keys := []string{s.prefix + "rl:p:" + a.IPKey()}
	if a.Identity != "" {
		keys = append(keys, s.prefix+"rl:i:"+string(a.Identity))
	}
	return keys
}

// BeginJoin implements rooms.Store.
func (s *Store) BeginJoin(ctx context.Context, a rooms.Attempt) (rooms.History, error) {
	if err := a.Validate(); err != nil {
		return rooms.History{}, err
	}
	rl := s.cfg.RateLimits
	v, err := beginJoinScript.Run(ctx, s.client, s.limitKeys(a), rl.Window.Milliseconds(), rl.FailureMemory.Milliseconds(),
		rl.JoinAttemptsPerIP, rl.JoinAttemptsPerIdentity).Slice()
	if err != nil {
		return rooms.History{}, s.unavailable("begin_join", err)
	}
	return s.limitReply("begin_join", v)
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
	v, err := recordFailureScript.Run(ctx, s.client, s.limitKeys(a), rl.Window.Milliseconds(), rl.FailureMemory.Milliseconds(),
		flag(f == rooms.FailurePasscode), rl.PasscodeFailuresPerIP, rl.PasscodeFailuresPerIdentity,
		rl.BackoffBase.Milliseconds(), rl.BackoffMax.Milliseconds()).Slice()
	if err != nil {
		return rooms.History{}, s.unavailable("record_failure", err)
	}
	return s.limitReply("record_failure", v)
}

// limitReply decodes {status, retry ms, ip a f pf, identity a f pf}.
func (s *Store) limitReply(op string, v []any) (rooms.History, error) {
	if len(v) != 8 {
		return rooms.History{}, s.unavailable(op, errShortReply)
	}
	n := make([]int, 8)
	for i := 1; i < 8; i++ {
		x, _ := v[i].(int64)
		n[i] = int(x)
	}
	h := rooms.History{
		IP:            rooms.Counts{JoinAttempts: n[2], JoinFailures: n[3], PasscodeFailures: n[4]},
		Identity:      rooms.Counts{JoinAttempts: n[5], JoinFailures: n[6], PasscodeFailures: n[7]},
		WindowSeconds: int(s.cfg.RateLimits.Window / time.Second),
	}
	retry := time.Duration(n[1]) * time.Millisecond
	switch v[0] {
	case "blocked":
		return h, &rooms.RateLimitedError{RetryAfter: retry, Backoff: true}
	case "limited":
		return h, &rooms.RateLimitedError{RetryAfter: retry}
	}
	return h, nil
}
