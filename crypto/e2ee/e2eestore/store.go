// Package e2eestore is the contract between the end-to-end key Authority (crypto/e2ee) and whatever keeps its
// state: the Store interface, its errors, and the in-process implementation (Memory). The Redis implementation
// shared by several gateway nodes lives with the other Redis stores (gateway/rooms/redisstore); e2eetest is the
// conformance suite both pass. A Store holds bytes only: it never parses, and it never sees a base key, an epoch
// secret or an SFrame key, because the Authority never has one.
package e2eestore

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns. Callers branch on them with errors.Is.
var (
	// ErrNotFound: no live entry under the key.
	ErrNotFound = errors.New("e2ee: store: not found")
	// ErrExists: Create found a live entry under the key.
	ErrExists = errors.New("e2ee: store: key exists")
	// ErrUnavailable wraps every failure to reach a shared store. Callers fail closed: they refuse the request
	// (503), never answer from what they hold locally.
	ErrUnavailable = errors.New("e2ee: store unavailable")
)

// Entry is one stored key and value.
type Entry struct {
	Key   string
	Value []byte
}

// Store holds the Authority's state as bytes (docs/e2ee.md section 13), and the gateway's bindings of room
// admissions to credentials beside it. Keys are printable ASCII; a ttl of zero means no expiry, and an entry
// past its ttl is gone for every method. Every implementation keeps this contract (e2eetest.Run checks it), on
// every node that shares it:
//
//   - Create stores value only if the key is absent, else returns ErrExists. It is atomic: of concurrent
//     Creates of one key on any nodes exactly one succeeds. It orders roster epochs and commits.
//   - Put stores value, replacing what was there. Get returns the value as last stored, or ErrNotFound.
//   - Take returns the value and deletes it in one step: of concurrent Takes of one key at most one gets it
//     (single-use nonces). ErrNotFound when absent.
//   - List returns every live entry whose key starts with prefix, sorted by key. DeletePrefix deletes them all;
//     once it returns, no Get on any node sees them.
//   - Incr adds one to the counter under key (absent counts as 0) and returns the new value, atomically, and
//     wakes every WaitAbove of that key on every node. It keeps the entry's ttl (a counter Put with a ttl
//     still expires). Counter reads it (0 when absent). The counter is a
//     wake-up hint for clients' long-polls, so DeletePrefix may reset it.
//   - WaitAbove returns the counter once it exceeds after, or 0 as soon as the counter is absent although
//     after > 0 (it was deleted: the meeting ended); when ctx ends first it returns the value it last read and
//     ctx's error. A shared store's waiter sees another node's Incr within a second even if its
//     notification was lost.
//
// A store that cannot be reached returns an error wrapping ErrUnavailable.
type Store interface {
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	Take(ctx context.Context, key string) ([]byte, error)
	List(ctx context.Context, prefix string) ([]Entry, error)
	DeletePrefix(ctx context.Context, prefix string) error
	Incr(ctx context.Context, key string) (uint64, error)
	Counter(ctx context.Context, key string) (uint64, error)
	WaitAbove(ctx context.Context, key string, after uint64) (uint64, error)
}

// Clock tells the time; e2ee.Clock satisfies it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
