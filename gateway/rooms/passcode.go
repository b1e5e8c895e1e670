package rooms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// PasscodeParams are Argon2id costs. The default (19 MiB, 2 passes, 1 lane)
// is OWASP's smallest recommended setting: a stolen Redis dump is slow to
// crack, while one check costs tens of milliseconds, not seconds. Online
// guessing is stopped by the rate limits, not by the hash; a crowd joining
// with the right passcode is served by the success cache (RememberFor).
type PasscodeParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

const (
	passcodeSaltLen = 16
	passcodeKeyLen  = 32
	// MaxPasscodeLen bounds what is hashed.
	MaxPasscodeLen = 128
)

// Bounds on parameters read back from a stored hash, so that a planted
// hash cannot make every verification allocate gigabytes.
const (
	minMemoryKiB, maxMemoryKiB = 8, 256 * 1024
	maxTime, maxThreads        = 16, 16
	minSalt, maxSalt           = 8, 64
	minKey, maxKey             = 16, 64
)

// PasscodeOptions configure Passcodes.
type PasscodeOptions struct {
	// Params for new hashes; zero means 19 MiB, 2 passes, 1 lane.
	Params PasscodeParams
	// MaxConcurrent bounds simultaneous hash computations (each takes
	// MemoryKiB), so a passcode storm cannot exhaust memory. Default
	// GOMAXPROCS.
	MaxConcurrent int
	// RememberFor is how long a successful check is remembered, so that a
	// crowd joining with the right passcode pays for Argon2id once, not
	// once each. Only successes are remembered, keyed by the stored hash
	// (a new passcode starts afresh); wrong guesses always pay in full.
	// Default 10m; negative disables.
	RememberFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Passcodes hashes and verifies room passcodes with Argon2id.
type Passcodes struct {
	params PasscodeParams
	slots  chan struct{}

	remember time.Duration
	now      func() time.Time
	mu       sync.Mutex
	key      []byte                 // keys the remembered successes
	good     map[[32]byte]time.Time // success tag -> forget at
}

// maxRemembered bounds the success cache; when full it starts over.
const maxRemembered = 4096

// NewPasscodes checks the options.
func NewPasscodes(o PasscodeOptions) (*Passcodes, error) {
	if o.Params == (PasscodeParams{}) {
		o.Params = PasscodeParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}
	}
	p := o.Params
	if p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime ||
		p.Threads < 1 || p.Threads > maxThreads {
		return nil, invalid("passcodes.params", "out of bounds")
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if o.MaxConcurrent < 1 {
		return nil, invalid("passcodes.max_concurrent", "must be positive")
	}
	if o.RememberFor == 0 {
		o.RememberFor = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pc := &Passcodes{params: p, slots: make(chan struct{}, o.MaxConcurrent), remember: o.RememberFor, now: o.Now,
		key: make([]byte, 32), good: map[[32]byte]time.Time{}}
	_, _ = rand.Read(pc.key)
	return pc, nil
}

// Hash returns the PHC-style string for passcode:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key> (unpadded
// standard base64), with a fresh random salt.
func (p *Passcodes) Hash(ctx context.Context, passcode string) (string, error) {
	if passcode == "" || len(passcode) > MaxPasscodeLen {
		return "", invalid("passcode", "must be 1 to 128 bytes")
	}
	h := passcodeHash{params: p.params, salt: make([]byte, passcodeSaltLen)}
	_, _ = rand.Read(h.salt)
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	h.key = h.derive(passcode, passcodeKeyLen)
	p.release()
	return h.String(), nil
}

// Verify reports whether passcode matches encoded, comparing in constant
// time. A malformed encoded is an error wrapping ErrPasscodeHash; a wrong
// passcode is (false, nil).
func (p *Passcodes) Verify(ctx context.Context, encoded, passcode string) (bool, error) {
	h, err := parsePasscodeHash(encoded)
	if err != nil {
		return false, err
	}
	if len(passcode) > MaxPasscodeLen {
		return false, nil
	}
	tag := p.tag(encoded, passcode)
	if p.remembered(tag) {
		return true, nil
	}
	if err := p.acquire(ctx); err != nil {
		return false, err
	}
	got := h.derive(passcode, uint32(len(h.key)))
	p.release()
	ok := subtle.ConstantTimeCompare(got, h.key) == 1
	if ok {
		p.rememberSuccess(tag)
	}
	return ok, nil
}

// tag names a (hash, passcode) pair without revealing either: a MAC under a
// per-process random key, so the cache holds nothing that lets a guess be
// tested faster than Argon2id allows.
func (p *Passcodes) tag(encoded, passcode string) [32]byte {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(encoded))
	m.Write([]byte{0})
	m.Write([]byte(passcode))
	var t [32]byte
	m.Sum(t[:0])
	return t
}

func (p *Passcodes) remembered(tag [32]byte) bool {
	if p.remember < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.good[tag]
	if ok && !p.now().Before(until) {
		delete(p.good, tag)
		return false
	}
	return ok
}

func (p *Passcodes) rememberSuccess(tag [32]byte) {
	if p.remember < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.good) >= maxRemembered {
		clear(p.good)
	}
	p.good[tag] = p.now().Add(p.remember)
}

func (p *Passcodes) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil { // the caller is gone: spend nothing
		return fmt.Errorf("rooms: hashing a passcode: %w", err)
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rooms: waiting to hash a passcode: %w", ctx.Err())
	}
}

func (p *Passcodes) release() { <-p.slots }

// ValidatePasscodeHash reports whether encoded is an Argon2id hash this
// package can verify.
func ValidatePasscodeHash(encoded string) error {
	_, err := parsePasscodeHash(encoded)
	return err
}

type passcodeHash struct {
	params    PasscodeParams
	salt, key []byte
}

func (h passcodeHash) derive(passcode string, n uint32) []byte {
	return argon2.IDKey([]byte(passcode), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, n)
}

func (h passcodeHash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.MemoryKiB, h.params.Time, h.params.Threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePasscodeHash accepts only the canonical form String produces, within
// the bounds above.
func parsePasscodeHash(s string) (passcodeHash, error) {
	var h passcodeHash
	bad := func(why string) (passcodeHash, error) {
		return passcodeHash{}, fmt.Errorf("%w: %s", ErrPasscodeHash, why)
	}
	if len(s) > 512 {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=…,t=…,p=…$salt$key")
	}
	if parts[1] != "argon2id" {
		return bad("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	ps := strings.Split(parts[3], ",")
	if len(ps) != 3 {
		return bad("want m=…,t=…,p=…")
	}
	m, okM := decimalParam(ps[0], "m=", maxMemoryKiB)
	t, okT := decimalParam(ps[1], "t=", maxTime)
	p, okP := decimalParam(ps[2], "p=", maxThreads)
	if !okM || !okT || !okP || m < minMemoryKiB || t < 1 || p < 1 {
		return bad("parameters out of bounds")
	}
	h.params = PasscodeParams{MemoryKiB: uint32(m), Time: uint32(t), Threads: uint8(p)}
	var err error
	b64 := base64.RawStdEncoding.Strict()
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < minSalt || len(h.salt) > maxSalt {
		return bad("salt")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < minKey || len(h.key) > maxKey {
		return bad("key")
	}
	return h, nil
}

// decimalParam parses prefix followed by a canonical decimal (no sign, no
// leading zero) no greater than limit.
func decimalParam(s, prefix string, limit uint64) (uint64, bool) {
	v, ok := strings.CutPrefix(s, prefix)
	if !ok || v == "" || len(v) > 10 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > limit {
		return 0, false
	}
	return n, true
}
