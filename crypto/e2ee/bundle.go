package e2ee

import (
	"bytes"
	"crypto/ed25519"

	"golang.org/x/crypto/cryptobyte"
)

// maxProof bounds an audit path: a tree of at most 65 534 leaves is 16 levels deep.
const maxProof = 16

// bundleHeader is the signed part of a sender's bundle (docs/e2ee.md section 4.5).
type bundleHeader struct {
	Room       string
	Instance   string
	Epoch      uint64
	Generation uint16
	RosterHash Hash
	Sender     Hash
	Suite      uint16
	LeafCount  uint32
	Root       Hash

	raw []byte // BundleHeader: tbs<u16> || signature
	tbs []byte
	sig []byte
}

func (h *bundleHeader) encodeTBS() ([]byte, error) {
	if err := checkText("bundle", "room", h.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText("bundle", "instance", h.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, h.Room)
	addString16(b, h.Instance)
	b.AddUint64(h.Epoch)
	b.AddUint16(h.Generation)
	b.AddBytes(h.RosterHash[:])
	b.AddBytes(h.Sender[:])
	b.AddUint16(h.Suite)
	b.AddUint32(h.LeafCount)
	b.AddBytes(h.Root[:])
	return finish("bundle", b)
}

func signBundleHeader(device ed25519.PrivateKey, h *bundleHeader) (*bundleHeader, error) {
	tbs, err := h.encodeTBS()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, tbs)
	b.AddBytes(sign(device, labelBundle, tbs))
	raw, err := finish("bundle_header", b)
	if err != nil {
		return nil, err
	}
	return parseBundleHeader(raw)
}

func parseBundleHeader(b []byte) (*bundleHeader, error) {
	outer := newParser("bundle_header", b)
	tbs := outer.bytes16("tbs", 1, 1<<16-1)
	outer.fixed("signature", ed25519.SignatureSize)
	if err := outer.end(); err != nil {
		return nil, err
	}
	p := newParser("bundle", tbs)
	p.version()
	h := &bundleHeader{
		Room:       p.text("room", 1, maxRoom),
		Instance:   p.text("instance", 1, maxInstance),
		Epoch:      p.u64("epoch"),
		Generation: p.u16("generation"),
		RosterHash: p.hash("roster_hash"),
		Sender:     p.hash("sender"),
		Suite:      p.u16("cipher_suite"),
		LeafCount:  p.u32("leaf_count"),
		Root:       p.hash("root"),
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	h.raw = bytes.Clone(b)
	h.tbs = h.raw[2 : 2+len(tbs)]
	h.sig = h.raw[2+len(tbs):]
	return h, nil
}

func (h *bundleHeader) verify(signer ed25519.PublicKey) bool {
	return verify(signer, labelBundle, h.tbs, h.sig)
}

type bundleEntry struct {
	recipient Hash
	sealed    []byte
}

// bundle is what a sender posts: the signed header and one sealed key per other member.
type bundle struct {
	header  *bundleHeader
	entries []bundleEntry
}

func (bu *bundle) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, bu.header.raw)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range bu.entries {
			b.AddBytes(e.recipient[:])
			addBytes16(b, e.sealed)
		}
	})
	return finish("bundle", b)
}

func parseBundle(b []byte) (*bundle, error) {
	p := newParser("bundle", b)
	rawHeader := p.bytes16("header", 1, 1<<16-1)
	rawEntries := p.bytes32("entries", 1, maxMembers*(32+2+maxSealed))
	if err := p.end(); err != nil {
		return nil, err
	}
	header, err := parseBundleHeader(rawHeader)
	if err != nil {
		return nil, err
	}
	bu := &bundle{header: header}
	ep := newParser("bundle", rawEntries)
	for len(ep.s) > 0 && ep.ok() {
		if len(bu.entries) == maxMembers-1 {
			ep.fail("entries", "more than %d entries", maxMembers-1)
			break
		}
		e := bundleEntry{recipient: ep.hash("entries.recipient")}
		e.sealed = bytes.Clone(ep.bytes16("entries.sealed", 1, maxSealed))
		bu.entries = append(bu.entries, e)
	}
	if err := ep.end(); err != nil {
		return nil, err
	}
	return bu, nil
}

// sealedKey is one recipient's share of a bundle, as the gateway serves it.
type sealedKey struct {
	raw    []byte // as received; set by parseSealedKey
	header *bundleHeader
	index  uint32
	proof  []Hash
	sealed []byte
}

func (s *sealedKey) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, s.header.raw)
	b.AddUint32(s.index)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, h := range s.proof {
			b.AddBytes(h[:])
		}
	})
	addBytes16(b, s.sealed)
	return finish("sealed_key", b)
}

func parseSealedKey(b []byte) (*sealedKey, error) {
	p := newParser("sealed_key", b)
	rawHeader := p.bytes16("header", 1, 1<<16-1)
	s := &sealedKey{raw: b, index: p.u32("index")}
	rawProof := p.bytes16("proof", 0, 32*maxProof)
	s.sealed = bytes.Clone(p.bytes16("sealed", 1, maxSealed))
	if err := p.end(); err != nil {
		return nil, err
	}
	if len(rawProof)%32 != 0 {
		return nil, malformed("sealed_key", "proof", "length %d is not a list of hashes", len(rawProof))
	}
	for i := 0; i < len(rawProof); i += 32 {
		s.proof = append(s.proof, Hash(rawProof[i:i+32]))
	}
	header, err := parseBundleHeader(rawHeader)
	if err != nil {
		return nil, err
	}
	s.header = header
	return s, nil
}

func marshalSealedKeys(items [][]byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, it := range items {
			addBytes16(b, it)
		}
	})
	return finish("sealed_keys", b)
}

func parseSealedKeys(b []byte) ([]*sealedKey, error) {
	p := newParser("sealed_keys", b)
	items := p.list("keys", p.bytes32("keys", 0, 1<<31), 2, maxMembers-1)
	if err := p.end(); err != nil {
		return nil, err
	}
	out := make([]*sealedKey, 0, len(items))
	for _, it := range items {
		s, err := parseSealedKey(it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
