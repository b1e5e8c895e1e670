package e2ee

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store errors.
var (
	ErrNotFound = errors.New("e2ee: store: not found")
	ErrExists   = errors.New("e2ee: store: key exists")
)

// Entry is one stored key and value.
type Entry struct {
	Key   string
	Value []byte
}

// Store holds the Authority's state as bytes (docs/e2ee.md section 13). A ttl of zero means no expiry.
// Implementations must make Create and Take atomic: Create orders roster epochs, Take makes nonces single-use.
type Store interface {
	// Create stores value under key only if the key is absent, else it returns ErrExists.
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Put stores value under key, replacing what was there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value under key or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value under key and deletes it in one step, or returns ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// List returns every entry whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Entry, error)
	// DeletePrefix deletes every entry whose key starts with prefix.
	DeletePrefix(ctx context.Context, prefix string) error
}

// MemoryStore is the in-process Store.
type MemoryStore struct {
	clock Clock
	mu    sync.Mutex
	items map[string]memoryItem
}

type memoryItem struct {
	value   []byte
	expires time.Time
}

// NewMemoryStore returns an empty store whose expiry follows clock (the system clock when nil).
func NewMemoryStore(clock Clock) *MemoryStore {
	if clock == nil {
		clock = SystemClock{}
	}
	return &MemoryStore{clock: clock, items: map[string]memoryItem{}}
}

// live returns the item under key if it exists and has not expired; the caller holds s.mu.
func (s *MemoryStore) live(key string) (memoryItem, bool) {
	it, ok := s.items[key]
	if ok && !it.expires.IsZero() && !s.clock.Now().Before(it.expires) {
		delete(s.items, key)
		return memoryItem{}, false
	}
	return it, ok
}

func (s *MemoryStore) item(value []byte, ttl time.Duration) memoryItem {
	it := memoryItem{value: bytes.Clone(value)}
	if ttl > 0 {
		it.expires = s.clock.Now().Add(ttl)
	}
	return it
}

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
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
func (s *MemoryStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[key] = s.item(value, ttl)
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key string) ([]byte, error) {
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
func (s *MemoryStore) Take(ctx context.Context, key string) ([]byte, error) {
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

// List implements Store.
func (s *MemoryStore) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for k := range s.items {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if it, ok := s.live(k); ok {
			out = append(out, Entry{Key: k, Value: bytes.Clone(it.value)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// DeletePrefix implements Store.
func (s *MemoryStore) DeletePrefix(ctx context.Context, prefix string) error {
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
	return nil
}
