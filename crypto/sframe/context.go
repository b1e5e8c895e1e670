package sframe

import (
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrCounterReused reports a send counter the context has already used (or one below it): AES-GCM under a
	// reused nonce leaks the XOR of two plaintexts and the authentication key.
	ErrCounterReused = errors.New("sframe: counter already used under this KID")
	// ErrReplay reports a received frame whose counter was already accepted or is older than the replay window.
	ErrReplay = errors.New("sframe: replayed or too old frame")
)

// ReplayWindow is how many counters below the highest accepted one a ReceiveContext still accepts once each
// (frames of one stream arrive slightly out of order over UDP).
const ReplayWindow = 128

// SendContext protects the frames of one stream under one key. It owns the counter: each frame gets the next
// one, and a counter is never used twice, so two frames never share a nonce. Safe for concurrent use.
type SendContext struct {
	key  *Key
	mu   sync.Mutex
	next uint64
	used bool // next has wrapped, or a caller asked for a counter
}

// NewSendContext returns a context that protects frames under key, starting at counter 0.
func NewSendContext(key *Key) *SendContext { return &SendContext{key: key} }

// KID is the key's id.
func (s *SendContext) KID() uint64 { return s.key.KID() }

// Protect encrypts plaintext with the next counter.
func (s *SendContext) Protect(metadata, plaintext []byte) ([]byte, error) {
	s.mu.Lock()
	if s.used && s.next == 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: counter space exhausted", ErrCounterReused)
	}
	ctr := s.next
	s.next++
	s.used = true
	s.mu.Unlock()
	return s.key.Encrypt(ctr, metadata, plaintext), nil
}

// ProtectAt encrypts plaintext with counter ctr, which must be above every counter used so far (for a sender
// that numbers frames itself, e.g. from the RTP sequence).
func (s *SendContext) ProtectAt(ctr uint64, metadata, plaintext []byte) ([]byte, error) {
	s.mu.Lock()
	if s.used && ctr < s.next || s.used && s.next == 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d", ErrCounterReused, ctr)
	}
	s.next, s.used = ctr+1, true
	s.mu.Unlock()
	return s.key.Encrypt(ctr, metadata, plaintext), nil
}

// ReceiveContext unprotects the frames of one KID and refuses replays: a counter is accepted once, and only
// within ReplayWindow of the highest accepted one. Safe for concurrent use.
type ReceiveContext struct {
	key     *Key
	mu      sync.Mutex
	highest uint64
	any     bool
	seen    [ReplayWindow / 64]uint64 // bit i: highest-i was accepted
}

// NewReceiveContext returns a context that unprotects frames under key.
func NewReceiveContext(key *Key) *ReceiveContext { return &ReceiveContext{key: key} }

// Unprotect authenticates and decrypts a frame, then records its counter. A frame that fails authentication
// does not move the window.
func (r *ReceiveContext) Unprotect(metadata, ciphertext []byte) ([]byte, error) {
	_, ctr, _, err := ParseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	fresh := r.fresh(ctr)
	r.mu.Unlock()
	if !fresh {
		return nil, fmt.Errorf("%w: counter %d", ErrReplay, ctr)
	}
	pt, err := r.key.Decrypt(metadata, ciphertext)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fresh(ctr) { // a concurrent copy won
		return nil, fmt.Errorf("%w: counter %d", ErrReplay, ctr)
	}
	r.mark(ctr)
	return pt, nil
}

func (r *ReceiveContext) fresh(ctr uint64) bool {
	if !r.any || ctr > r.highest {
		return true
	}
	d := r.highest - ctr
	return d < ReplayWindow && r.seen[d/64]&(1<<(d%64)) == 0
}

func (r *ReceiveContext) mark(ctr uint64) {
	if !r.any || ctr > r.highest {
		shift := uint64(ReplayWindow)
		if r.any {
			shift = ctr - r.highest
		}
		r.shift(shift)
		r.highest, r.any = ctr, true
	}
	d := r.highest - ctr
	r.seen[d/64] |= 1 << (d % 64)
}

// shift moves the window up by n counters.
func (r *ReceiveContext) shift(n uint64) {
	if n >= ReplayWindow {
		r.seen = [ReplayWindow / 64]uint64{}
		return
	}
	for ; n > 0; n-- {
		carry := uint64(0)
		for i := range r.seen {
			next := r.seen[i] >> 63
			r.seen[i] = r.seen[i]<<1 | carry
			carry = next
		}
	}
}
