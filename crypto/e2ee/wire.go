package e2ee

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// wireVersion is the protocol version carried by every message.
const wireVersion = 2

// Labels separate the domains of signatures, hashes and the HPKE info (docs/e2ee.md section 3).
const (
	labelCredential    = "meetguard/e2ee/v2 credential"
	labelKeyPackage    = "meetguard/e2ee/v2 key package"
	labelRoster        = "meetguard/e2ee/v2 roster"
	labelCommit        = "meetguard/e2ee/v2 commit"
	labelRegistration  = "meetguard/e2ee/v2 registration"
	labelEpochSecret   = "meetguard/e2ee/v2 epoch secret"
	labelAuthenticator = "meetguard/e2ee/v2 authenticator"
	labelSenderKey     = "meetguard/e2ee/v2 sender key"
	labelDevice        = "meetguard/e2ee/v2 device"
)

// Field limits (docs/e2ee.md section 3).
const (
	maxRoom        = 256
	maxInstance    = 128
	maxIssuer      = 512
	maxSubject     = 512
	maxDisplayName = 256
	maxMembers     = 65535
	maxSealed      = 4096
	// maxTime keeps times far from int64 overflow so every encoded time round-trips.
	maxTime = 1<<62 - 1
)

// Hash is a SHA-256 digest naming a credential or a roster epoch.
type Hash [32]byte

// String is the full lowercase hex encoding.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 8 bytes in hex, for logs and messages.
func (h Hash) Short() string { return hex.EncodeToString(h[:8]) }

// IsZero reports whether h is all zero bytes (the prev hash of epoch 1).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash decodes a 64-character hex string.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, malformed("hash", "hex", "want %d hex characters, got %d", 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, malformed("hash", "hex", "%v", err)
	}
	return h, nil
}

func hashEqual(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// labelled is label || 0x00 || tbs: the exact bytes that are signed and hashed.
func labelled(label string, tbs []byte) []byte {
	m := make([]byte, 0, len(label)+1+len(tbs))
	m = append(m, label...)
	m = append(m, 0)
	return append(m, tbs...)
}

func digest(label string, tbs []byte) Hash { return sha256.Sum256(labelled(label, tbs)) }

func sign(key ed25519.PrivateKey, label string, tbs []byte) []byte {
	return ed25519.Sign(key, labelled(label, tbs))
}

func verify(pub ed25519.PublicKey, label string, tbs, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, labelled(label, tbs), sig)
}

// parser reads one message strictly and remembers the first failure with the field it happened in.
type parser struct {
	what string
	s    cryptobyte.String
	err  error
}

func newParser(what string, b []byte) *parser { return &parser{what: what, s: cryptobyte.String(b)} }

func (p *parser) fail(field, format string, args ...any) {
	if p.err == nil {
		p.err = malformed(p.what, field, format, args...)
	}
}

func (p *parser) ok() bool { return p.err == nil }

func (p *parser) version() {
	if v := p.u8("version"); p.ok() && v != wireVersion {
		p.fail("version", "unsupported version %d", v)
	}
}

func (p *parser) u8(field string) uint8 {
	var v uint8
	if p.ok() && !p.s.ReadUint8(&v) {
		p.fail(field, "truncated")
	}
	return v
}

func (p *parser) u16(field string) uint16 {
	var v uint16
	if p.ok() && !p.s.ReadUint16(&v) {
		p.fail(field, "truncated")
	}
	return v
}

func (p *parser) u32(field string) uint32 {
	var v uint32
	if p.ok() && !p.s.ReadUint32(&v) {
		p.fail(field, "truncated")
	}
	return v
}

func (p *parser) u64(field string) uint64 {
	var v uint64
	if p.ok() && !p.s.ReadUint64(&v) {
		p.fail(field, "truncated")
	}
	return v
}

func (p *parser) boolean(field string) bool {
	v := p.u8(field)
	if p.ok() && v > 1 {
		p.fail(field, "boolean must be 0 or 1, got %d", v)
	}
	return v == 1
}

func (p *parser) fixed(field string, n int) []byte {
	var v []byte
	if p.ok() && !p.s.ReadBytes(&v, n) {
		p.fail(field, "truncated, want %d bytes", n)
	}
	return v
}

func (p *parser) hash(field string) Hash {
	var h Hash
	copy(h[:], p.fixed(field, len(h)))
	return h
}

func (p *parser) checkLen(field string, v []byte, lo, hi int) []byte {
	if p.ok() && (len(v) < lo || len(v) > hi) {
		p.fail(field, "length %d outside %d..%d", len(v), lo, hi)
	}
	return v
}

func (p *parser) bytes16(field string, lo, hi int) []byte {
	var v cryptobyte.String
	if p.ok() && !p.s.ReadUint16LengthPrefixed(&v) {
		p.fail(field, "truncated")
	}
	return p.checkLen(field, v, lo, hi)
}

func (p *parser) bytes24(field string, lo, hi int) []byte {
	var v cryptobyte.String
	if p.ok() && !p.s.ReadUint24LengthPrefixed(&v) {
		p.fail(field, "truncated")
	}
	return p.checkLen(field, v, lo, hi)
}

func (p *parser) bytes32(field string, lo, hi int) []byte {
	var v cryptobyte.String
	if p.ok() && !readUint32LengthPrefixed(&p.s, &v) {
		p.fail(field, "truncated")
	}
	return p.checkLen(field, v, lo, hi)
}

func (p *parser) text(field string, lo, hi int) string {
	v := p.bytes16(field, lo, hi)
	if p.ok() && !utf8.Valid(v) {
		p.fail(field, "not valid UTF-8")
	}
	return string(v)
}

func (p *parser) unixSeconds(field string) time.Time {
	v := p.u64(field)
	if p.ok() && v > maxTime {
		p.fail(field, "time out of range")
	}
	return time.Unix(int64(v), 0).UTC()
}

func (p *parser) unixMillis(field string) time.Time {
	v := p.u64(field)
	if p.ok() && v > maxTime {
		p.fail(field, "time out of range")
	}
	return time.UnixMilli(int64(v)).UTC()
}

// sortedHashes reads a list of 32-byte hashes that must be strictly ascending.
func (p *parser) sortedHashes(field string, raw []byte, max int) []Hash {
	if !p.ok() {
		return nil
	}
	if len(raw)%32 != 0 || len(raw)/32 > max {
		p.fail(field, "length %d is not a list of at most %d hashes", len(raw), max)
		return nil
	}
	out := make([]Hash, len(raw)/32)
	for i := range out {
		copy(out[i][:], raw[32*i:])
		if i > 0 && compareHash(out[i-1], out[i]) >= 0 {
			p.fail(field, "entry %d not strictly ascending", i)
			return nil
		}
	}
	return out
}

// list splits a <u32> list of <u16> or <u32> items.
func (p *parser) list(field string, raw []byte, itemPrefix int, maxItems int) [][]byte {
	if !p.ok() {
		return nil
	}
	s := cryptobyte.String(raw)
	var out [][]byte
	for !s.Empty() {
		var item cryptobyte.String
		ok := false
		switch itemPrefix {
		case 2:
			ok = s.ReadUint16LengthPrefixed(&item)
		case 4:
			ok = readUint32LengthPrefixed(&s, &item)
		}
		if !ok {
			p.fail(field, "item %d truncated", len(out))
			return nil
		}
		if len(out) == maxItems {
			p.fail(field, "more than %d items", maxItems)
			return nil
		}
		out = append(out, item)
	}
	return out
}

// readUint32LengthPrefixed is the <u32> counterpart of cryptobyte's 8, 16 and 24-bit readers.
func readUint32LengthPrefixed(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	var v []byte
	if !s.ReadUint32(&n) || !s.ReadBytes(&v, int(n)) {
		return false
	}
	*out = v
	return true
}

func (p *parser) end() error {
	if p.ok() && !p.s.Empty() {
		p.fail("end", "%d trailing bytes", len(p.s))
	}
	return p.err
}

func compareHash(a, b Hash) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Builder helpers. Values are validated before encoding, so a cryptobyte error here is a bug; it is still
// returned, never ignored.

func addBytes16(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addString16(b *cryptobyte.Builder, v string) { addBytes16(b, []byte(v)) }

func finish(what string, b *cryptobyte.Builder) ([]byte, error) {
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s: %v", ErrMalformed, what, err)
	}
	return out, nil
}

func checkText(what, field, v string, lo, hi int) error {
	if len(v) < lo || len(v) > hi {
		return malformed(what, field, "length %d outside %d..%d", len(v), lo, hi)
	}
	if !utf8.ValidString(v) {
		return malformed(what, field, "not valid UTF-8")
	}
	return nil
}

func unixSeconds(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(min(s, maxTime))
}

func unixMillis(t time.Time) uint64 {
	s := t.UnixMilli()
	if s < 0 {
		return 0
	}
	return uint64(min(s, maxTime))
}
