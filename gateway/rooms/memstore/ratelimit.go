package memstore

import (
	"context"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// limitEntry counts for one identity or one IP.
type limitEntry struct {
	window             int64 // index of the fixed window the counts belong to
	attempts, failures int
	passcodeFailures   int
	passcodeUntil      time.Time // passcodeFailures reset then
	blockedUntil       time.Time
}

func (l *limitEntry) roll(window int64) {
	if l.window != window {
		l.window, l.attempts, l.failures = window, 0, 0
	}
}

func (l *limitEntry) counts(now time.Time, window int64) rooms.Counts {
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

func (l *limitEntry) stale(now time.Time, rl rooms.RateLimits) bool {
	windowEnd := time.UnixMilli((l.window + 1) * rl.Window.Milliseconds())
	return !now.Before(windowEnd) && !now.Before(l.passcodeUntil) && !now.Before(l.blockedUntil)
}

// entries returns the identity entry (nil without an identity) and the IP
// entry, creating them.
func (s *Store) entries(a rooms.Attempt) (id, ip *limitEntry) {
	get := func(k string) *limitEntry {
		l := s.limits[k]
		if l == nil {
			l = &limitEntry{window: -1}
			s.limits[k] = l
		}
		return l
	}
	if a.Identity != "" {
		id = get("i:" + string(a.Identity))
	}
	return id, get("p:" + a.IPKey())
}

func (s *Store) history(id, ip *limitEntry, now time.Time, window int64) rooms.History {
	return rooms.History{
		Identity: id.counts(now, window), IP: ip.counts(now, window),
		WindowSeconds: int(s.cfg.RateLimits.Window / time.Second),
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
	now, rl := s.now(), s.cfg.RateLimits
	window := now.UnixMilli() / rl.Window.Milliseconds()
	id, ip := s.entries(a)
	blocked := ip.blockedUntil
	if id != nil {
		blocked = maxTime(blocked, id.blockedUntil)
	}
	if now.Before(blocked) {
		return s.history(id, ip, now, window), &rooms.RateLimitedError{RetryAfter: blocked.Sub(now), Backoff: true}
	}
	ip.roll(window)
	ip.attempts++
	over := ip.attempts > rl.JoinAttemptsPerIP
	if id != nil {
		id.roll(window)
		id.attempts++
		over = over || id.attempts > rl.JoinAttemptsPerIdentity
	}
	h := s.history(id, ip, now, window)
	if over {
		end := time.UnixMilli((window + 1) * rl.Window.Milliseconds())
		return h, &rooms.RateLimitedError{RetryAfter: end.Sub(now)}
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
	now, rl := s.now(), s.cfg.RateLimits
	window := now.UnixMilli() / rl.Window.Milliseconds()
	id, ip := s.entries(a)
	var n [2]int
	for i, l := range []*limitEntry{id, ip} {
		if l == nil {
			continue
		}
		l.roll(window)
		l.failures++
		if f == rooms.FailurePasscode {
			if !now.Before(l.passcodeUntil) {
				l.passcodeFailures = 0
			}
			l.passcodeFailures++
			l.passcodeUntil = now.Add(rl.FailureMemory)
			n[i] = l.passcodeFailures
		}
	}
	if d := rl.Backoff(n[0], n[1]); d > 0 {
		until := now.Add(d)
		for _, l := range []*limitEntry{id, ip} {
			if l != nil {
				l.blockedUntil = maxTime(l.blockedUntil, until)
			}
		}
	}
	return s.history(id, ip, now, window), nil
}
