package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Roster is one gateway-signed epoch of the roster chain (docs/e2ee.md section 4.4). Its fields are parsed from
// its encoding; verification and hashing use the encoding.
type Roster struct {
	Room     string
	Instance string
	Epoch    uint64
	IssuedAt time.Time // millisecond precision
	Prev     Hash      // hash of the previous epoch; zero for epoch 1
	Locked   bool
	Members  []Hash // credential hashes, strictly ascending

	raw  []byte // Roster: tbs<u32> || signature
	tbs  []byte
	sig  []byte
	hash Hash
}

func (r *Roster) encodeTBS() ([]byte, error) {
	const what = "roster"
	if err := checkText(what, "room", r.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText(what, "instance", r.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if r.Epoch == 0 || r.Epoch > 1<<32-1 {
		return nil, malformed(what, "epoch", "%d outside 1..2^32-1", r.Epoch)
	}
	if len(r.Members) > maxMembers {
		return nil, malformed(what, "members", "%d members, at most %d", len(r.Members), maxMembers)
	}
	for i := 1; i < len(r.Members); i++ {
		if compareHash(r.Members[i-1], r.Members[i]) >= 0 {
			return nil, malformed(what, "members", "entry %d not strictly ascending", i)
		}
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, r.Room)
	addString16(b, r.Instance)
	b.AddUint64(r.Epoch)
	b.AddUint64(unixMillis(r.IssuedAt))
	b.AddBytes(r.Prev[:])
	if r.Locked {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, m := range r.Members {
			b.AddBytes(m[:])
		}
	})
	return finish(what, b)
}

// issueRoster signs r with the authority key and returns the parsed result.
func issueRoster(key ed25519.PrivateKey, r *Roster) (*Roster, error) {
	tbs, err := r.encodeTBS()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(tbs) })
	b.AddBytes(sign(key, labelRoster, tbs))
	raw, err := finish("roster", b)
	if err != nil {
		return nil, err
	}
	return ParseRoster(raw)
}

// ParseRoster parses a signed roster epoch strictly. It does not verify the signature: call Verify.
func ParseRoster(b []byte) (*Roster, error) {
	outer := newParser("roster", b)
	tbs := outer.bytes32("tbs", 1, 1<<24)
	outer.fixed("signature", ed25519.SignatureSize)
	if err := outer.end(); err != nil {
		return nil, err
	}
	p := newParser("roster", tbs)
	p.version()
	r := &Roster{
		Room:     p.text("room", 1, maxRoom),
		Instance: p.text("instance", 1, maxInstance),
		Epoch:    p.u64("epoch"),
	}
	if p.ok() && (r.Epoch == 0 || r.Epoch > 1<<32-1) {
		p.fail("epoch", "%d outside 1..2^32-1", r.Epoch)
	}
	r.IssuedAt = p.unixMillis("issued_ms")
	r.Prev = p.hash("prev")
	r.Locked = p.boolean("locked")
	r.Members = p.sortedHashes("members", p.bytes24("members", 0, 32*maxMembers), maxMembers)
	if err := p.end(); err != nil {
		return nil, err
	}
	r.raw = bytes.Clone(b)
	r.tbs = r.raw[4 : 4+len(tbs)]
	r.sig = r.raw[4+len(tbs):]
	r.hash = digest(labelRoster, r.tbs)
	return r, nil
}

// Bytes returns the signed encoding.
func (r *Roster) Bytes() []byte { return bytes.Clone(r.raw) }

// Hash is the roster hash: what the next epoch's Prev, every bundle and the security code commit to.
func (r *Roster) Hash() Hash { return r.hash }

// Verify checks the authority's signature.
func (r *Roster) Verify(authority ed25519.PublicKey) error {
	if !verify(authority, labelRoster, r.tbs, r.sig) {
		return fmt.Errorf("%w: roster epoch %d", ErrBadSignature, r.Epoch)
	}
	return nil
}

// Index returns the position of h among the members.
func (r *Roster) Index(h Hash) (int, bool) {
	return slices.BinarySearchFunc(r.Members, h, compareHash)
}

// Has reports whether h is a member.
func (r *Roster) Has(h Hash) bool {
	_, ok := r.Index(h)
	return ok
}

// rosterUpdate is what the gateway returns for Roster(since) (docs/e2ee.md section 4.6).
type rosterUpdate struct {
	version     uint64
	rosters     [][]byte
	credentials [][]byte
}

// Limits for one update: a client never needs more than the epochs of one meeting and the credentials of its
// members, and these keep a hostile update from making a client allocate without bound.
const (
	maxUpdateRosters     = 1 << 16
	maxUpdateCredentials = 1 << 17
)

func (u *rosterUpdate) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint64(u.version)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, r := range u.rosters {
			b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r) })
		}
	})
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range u.credentials {
			addBytes16(b, c)
		}
	})
	return finish("roster_update", b)
}

func parseRosterUpdate(b []byte) (*rosterUpdate, error) {
	p := newParser("roster_update", b)
	u := &rosterUpdate{version: p.u64("version")}
	u.rosters = p.list("rosters", p.bytes32("rosters", 0, 1<<31), 4, maxUpdateRosters)
	u.credentials = p.list("credentials", p.bytes32("credentials", 0, 1<<31), 2, maxUpdateCredentials)
	if err := p.end(); err != nil {
		return nil, err
	}
	return u, nil
}
