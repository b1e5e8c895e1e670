package session

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// MemoryOptions configures a MemoryStore.
type MemoryOptions struct {
	// MaxSessions and MaxLogins bound memory; new entries beyond them are
	// refused with ErrFull. Defaults 1,000,000 and 100,000.
	MaxSessions int
	MaxLogins   int
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// MemoryStore is the single-node Store.
type MemoryStore struct {
	opts     MemoryOptions
	mu       sync.Mutex
	sessions map[string]Session
	logins   map[string]Login
	claims   map[[32]byte]time.Time // state digest -> until
}

// NewMemory returns a store whose expired entries are swept until ctx ends.
func NewMemory(ctx context.Context, opts MemoryOptions) *MemoryStore {
	if opts.MaxSessions == 0 {
		opts.MaxSessions = 1_000_000
	}
	if opts.MaxLogins == 0 {
		opts.MaxLogins = 100_000
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	m := &MemoryStore{opts: opts, sessions: map[string]Session{}, logins: map[string]Login{}, claims: map[[32]byte]time.Time{}}
	go m.sweep(ctx)
	return m
}

func (m *MemoryStore) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Sweep drops expired sessions and logins now.
func (m *MemoryStore) Sweep() {
	now := m.opts.Clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.sessions {
		if !now.Before(s.Expires) {
			delete(m.sessions, k)
		}
	}
	for k, l := range m.logins {
		if !now.Before(l.Expires) {
			delete(m.logins, k)
		}
	}
	for k, until := range m.claims {
		if !now.Before(until) {
			delete(m.claims, k)
		}
	}
}

// GetSession returns a live session.
func (m *MemoryStore) GetSession(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	s, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok || !m.opts.Clock().Before(s.Expires) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// ClaimState reports whether state is claimed for the first time; it is
// remembered until until. Beyond MaxLogins remembered states it refuses
// with ErrFull rather than forget one early.
func (m *MemoryStore) ClaimState(_ context.Context, state string, until time.Time) (bool, error) {
	k := sha256.Sum256([]byte(state))
	now := m.opts.Clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.claims[k]; ok && now.Before(u) {
		return false, nil
	}
	if len(m.claims) >= m.opts.MaxLogins {
		return false, ErrFull
	}
	m.claims[k] = until
	return true, nil
}

// PutSession creates or replaces a session.
func (m *MemoryStore) PutSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.sessions[s.ID]; !exists && len(m.sessions) >= m.opts.MaxSessions {
		return ErrFull
	}
	m.sessions[s.ID] = s
	return nil
}

// DeleteSession revokes a session.
func (m *MemoryStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
	return nil
}

// PutLogin records a login in progress.
func (m *MemoryStore) PutLogin(_ context.Context, l Login) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.logins) >= m.opts.MaxLogins {
		return ErrFull
	}
	m.logins[l.State] = l
	return nil
}

// TakeLogin returns and deletes a login, so its state is single-use.
func (m *MemoryStore) TakeLogin(_ context.Context, state string) (Login, error) {
	m.mu.Lock()
	l, ok := m.logins[state]
	delete(m.logins, state)
	m.mu.Unlock()
	if !ok || !m.opts.Clock().Before(l.Expires) {
		return Login{}, ErrNotFound
	}
	return l, nil
}

// SessionIDs lists live session IDs (operators' tools and tests).
func (m *MemoryStore) SessionIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	return ids
}
