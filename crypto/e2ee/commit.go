package e2ee

import (
	"bytes"
	"crypto/ed25519"

	"golang.org/x/crypto/cryptobyte"
)

// maxProof bounds an audit path: a tree of at most 65 534 leaves is 16 levels deep.
const maxProof = 16

// commitHeader is the signed part of a commit: one member's fresh epoch secret for an epoch (and generation),
// sealed to every other member's key package (docs/e2ee.md section 4.5).
type commitHeader struct {
	Room       string
	Instance   string
	Epoch      uint64
	Generation uint8
	RosterHash Hash
	Committer  Hash // the committer's cred_hash
	Suite      uint16
	KEMs       []KEM // the KEM of every member's key package, in roster order (the committer's own included)
	LeafCount  uint32
	Root       Hash

	raw  []byte // CommitHeader: tbs<u16> || signature
	tbs  []byte
	sig  []byte
	hash Hash
}

func (h *commitHeader) encodeTBS() ([]byte, error) {
	if err := checkText("commit", "room", h.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText("commit", "instance", h.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if len(h.KEMs) > maxMembers {
		return nil, malformed("commit", "kems", "%d entries", len(h.KEMs))
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, h.Room)
	addString16(b, h.Instance)
	b.AddUint64(h.Epoch)
	b.AddUint8(h.Generation)
	b.AddBytes(h.RosterHash[:])
	b.AddBytes(h.Committer[:])
	b.AddUint16(h.Suite)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, k := range h.KEMs {
			b.AddUint16(uint16(k))
		}
	})
	b.AddUint32(h.LeafCount)
	b.AddBytes(h.Root[:])
	return finish("commit", b)
}

func signCommitHeader(device ed25519.PrivateKey, h *commitHeader) (*commitHeader, error) {
	tbs, err := h.encodeTBS()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, tbs)
	b.AddBytes(sign(device, labelCommit, tbs))
	raw, err := finish("commit_header", b)
	if err != nil {
		return nil, err
	}
	return parseCommitHeader(raw)
}

func parseCommitHeader(b []byte) (*commitHeader, error) {
	outer := newParser("commit_header", b)
	tbs := outer.bytes16("tbs", 1, 1<<16-1)
	outer.fixed("signature", ed25519.SignatureSize)
	if err := outer.end(); err != nil {
		return nil, err
	}
	p := newParser("commit", tbs)
	p.version()
	h := &commitHeader{
		Room:       p.text("room", 1, maxRoom),
		Instance:   p.text("instance", 1, maxInstance),
		Epoch:      p.u64("epoch"),
		Generation: p.u8("generation"),
		RosterHash: p.hash("roster_hash"),
		Committer:  p.hash("committer"),
		Suite:      p.u16("cipher_suite"),
	}
	kems := p.bytes24("kems", 0, 2*maxMembers)
	if p.ok() && len(kems)%2 != 0 {
		p.fail("kems", "odd length %d", len(kems))
	}
	for i := 0; p.ok() && i < len(kems); i += 2 {
		k := KEM(uint16(kems[i])<<8 | uint16(kems[i+1]))
		if _, err := k.hpkeKEM(); err != nil {
			p.fail("kems", "unknown KEM %#04x", uint16(k))
		}
		h.KEMs = append(h.KEMs, k)
	}
	h.LeafCount = p.u32("leaf_count")
	h.Root = p.hash("root")
	if err := p.end(); err != nil {
		return nil, err
	}
	h.raw = bytes.Clone(b)
	h.tbs = h.raw[2 : 2+len(tbs)]
	h.sig = h.raw[2+len(tbs):]
	h.hash = digest(labelCommit, h.tbs)
	return h, nil
}

func (h *commitHeader) verify(signer ed25519.PublicKey) bool {
	return verify(signer, labelCommit, h.tbs, h.sig)
}

type commitEntry struct {
	recipient  Hash
	keyPackage Hash // the hash of the key package the secret is sealed to
	sealed     []byte
}

// commit is what a committer posts: the signed header and one sealed epoch secret per other member.
type commit struct {
	header  *commitHeader
	entries []commitEntry
}

func (c *commit) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, c.header.raw)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range c.entries {
			b.AddBytes(e.recipient[:])
			b.AddBytes(e.keyPackage[:])
			addBytes16(b, e.sealed)
		}
	})
	return finish("commit", b)
}

func parseCommit(b []byte) (*commit, error) {
	p := newParser("commit", b)
	rawHeader := p.bytes16("header", 1, 1<<16-1)
	rawEntries := p.bytes32("entries", 0, maxMembers*(64+2+maxSealed)) // empty for a member alone
	if err := p.end(); err != nil {
		return nil, err
	}
	header, err := parseCommitHeader(rawHeader)
	if err != nil {
		return nil, err
	}
	c := &commit{header: header}
	ep := newParser("commit", rawEntries)
	for len(ep.s) > 0 && ep.ok() {
		if len(c.entries) == maxMembers-1 {
			ep.fail("entries", "more than %d entries", maxMembers-1)
			break
		}
		e := commitEntry{recipient: ep.hash("entries.recipient"), keyPackage: ep.hash("entries.key_package")}
		e.sealed = bytes.Clone(ep.bytes16("entries.sealed", 1, maxSealed))
		c.entries = append(c.entries, e)
	}
	if err := ep.end(); err != nil {
		return nil, err
	}
	return c, nil
}

// sealedSecret is one recipient's share of a commit, as the gateway serves it (docs/e2ee.md section 4.6).
type sealedSecret struct {
	raw        []byte // as received; set by parseSealedSecret
	header     *commitHeader
	index      uint32
	proof      []Hash
	keyPackage Hash
	sealed     []byte
}

func (s *sealedSecret) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, s.header.raw)
	b.AddUint32(s.index)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, h := range s.proof {
			b.AddBytes(h[:])
		}
	})
	b.AddBytes(s.keyPackage[:])
	addBytes16(b, s.sealed)
	return finish("sealed_secret", b)
}

// ParseSealedSecret parses what a gateway serves from GET keys.
func parseSealedSecret(b []byte) (*sealedSecret, error) {
	p := newParser("sealed_secret", b)
	rawHeader := p.bytes16("header", 1, 1<<16-1)
	s := &sealedSecret{raw: bytes.Clone(b), index: p.u32("index")}
	rawProof := p.bytes16("proof", 0, 32*maxProof)
	s.keyPackage = p.hash("key_package")
	s.sealed = bytes.Clone(p.bytes16("sealed", 1, maxSealed))
	if err := p.end(); err != nil {
		return nil, err
	}
	if len(rawProof)%32 != 0 {
		return nil, malformed("sealed_secret", "proof", "length %d is not a list of hashes", len(rawProof))
	}
	for i := 0; i < len(rawProof); i += 32 {
		s.proof = append(s.proof, Hash(rawProof[i:i+32]))
	}
	header, err := parseCommitHeader(rawHeader)
	if err != nil {
		return nil, err
	}
	s.header = header
	return s, nil
}
