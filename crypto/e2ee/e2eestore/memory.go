package e2eestore

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is the in-process Store: the state of one gateway node, gone when it stops. Several nodes behind one
// load balancer need a shared Store (redisstore.E2EE), or every room pinned to one node.
type Memory struct {
	clock Clock
	mu    sync.Mutex
	items map[string]memoryItem
	// changed is closed and replaced on every Incr, waking WaitAbove.
	changed chan struct{}
}

type memoryItem struct {
	value   []byte
	expires time.Time
}

// NewMemory returns an empty store whose expiry follows clock (the system clock when nil).
func NewMemory(clock Clock) *Memory {
	if clock == nil {
		clock = systemClock{}
	}
	return &Memory{clock: clock, items: map[string]memoryItem{}, changed: make(chan struct{})}
}

var _ Store = (*Memory)(nil)

// live returns the item under key if it exists and has not expired; the caller holds s.mu.
func (s *Memory) live(key string) (memoryItem, bool) {
	it, ok := s.items[key]
	if ok && !it.expires.IsZero() && !s.clock.Now().Before(it.expires) {
		delete(s.items, key)
		return memoryItem{}, false
	}
	return it, ok
}

func (s *Memory) item(value []byte, ttl time.Duration) memoryItem {
	it := memoryItem{value: bytes.Clone(value)}
	if ttl > 0 {
		it.expires = s.clock.Now().Add(ttl)
	}
	return it
}

// Create implements Store.
func (s *Memory) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); ok {
		return ErrExists
	}
	s.items[key] = s.item(value, ttl)
	return nil
}

// Put implements Store.
func (s *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[key] = s.item(value, ttl)
	return nil
}

// Get implements Store.
func (s *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

// Take implements Store.
func (s *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	delete(s.items, key)
	return it.value, nil
}

// List implements Store. It walks every key of the store, so it drops every expired key it passes, whatever
// its prefix: nonces, rate slots and waiting keys of every room expire without anyone reading them again, and
// were kept (and walked by every List) for the life of the process.
func (s *Memory) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []Entry
	for k, it := range s.items {
		if !it.expires.IsZero() && !now.Before(it.expires) {
			delete(s.items, k)
			continue
		}
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{Key: k, Value: bytes.Clone(it.value)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// DeletePrefix implements Store.
func (s *Memory) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.items {
		if strings.HasPrefix(k, prefix) {
			delete(s.items, k)
		}
	}
	s.wake() // a deleted counter ends its waits
	return nil
}

// wake wakes every WaitAbove to read its counter again; the caller holds s.mu.
func (s *Memory) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// counter reads the counter under key; the caller holds s.mu.
func (s *Memory) counter(key string) uint64 {
	it, ok := s.live(key)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(string(it.value), 10, 64)
	return n
}

// Incr implements Store.
func (s *Memory) Incr(ctx context.Context, key string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counter(key) + 1
	it, _ := s.live(key)
	s.items[key] = memoryItem{value: strconv.AppendUint(nil, n, 10), expires: it.expires}
	s.wake()
	return n, nil
}

// Counter implements Store.
func (s *Memory) Counter(ctx context.Context, key string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter(key), nil
}

// WaitAbove implements Store.
func (s *Memory) WaitAbove(ctx context.Context, key string, after uint64) (uint64, error) {
	for {
		s.mu.Lock()
		_, exists := s.live(key)
		v, ch := s.counter(key), s.changed
		s.mu.Unlock()
		if v > after || (!exists && after > 0) {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}
