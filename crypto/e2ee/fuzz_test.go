package e2ee

import (
	"bytes"
	"testing"
)

// Every decoder of bytes from a client or a gateway is fuzzed. Besides never panicking, each must be canonical:
// what it accepts re-encodes to exactly the input, so signatures and hashes over encodings mean one thing.

func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte{1, 0, 1, 'r', 0, 1, 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChallenge(b)
		if err != nil {
			return
		}
		if out, err := c.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
	})
}

func FuzzParseRegistration(f *testing.F) {
	f.Add(make([]byte, 1+32+32+2+2+1+64))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRegistration(b)
		if err != nil {
			return
		}
		if out, err := r.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
		_ = r.verifyProof("room", "instance")
	})
}

func FuzzParseCredential(f *testing.F) {
	f.Add([]byte{0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredential(b)
		if err != nil {
			return
		}
		if tbs, err := c.encodeTBS(); err != nil || !bytes.Equal(tbs, c.tbs) {
			t.Fatalf("not canonical: %x -> %x, %v", c.tbs, tbs, err)
		}
		_ = c.Verify(make([]byte, 32))
	})
}

func FuzzParseRoster(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRoster(b)
		if err != nil {
			return
		}
		if tbs, err := r.encodeTBS(); err != nil || !bytes.Equal(tbs, r.tbs) {
			t.Fatalf("not canonical: %x -> %x, %v", r.tbs, tbs, err)
		}
	})
}

func FuzzParseRosterUpdate(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseRosterUpdate(b)
		if err != nil {
			return
		}
		if out, err := u.marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := parseBundle(b)
		if err != nil {
			return
		}
		if out, err := bu.marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
		if tbs, err := bu.header.encodeTBS(); err != nil || !bytes.Equal(tbs, bu.header.tbs) {
			t.Fatalf("header not canonical: %v", err)
		}
	})
}

func FuzzParseSealedKeys(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseSealedKeys(b)
		if err != nil {
			return
		}
		for _, sk := range keys {
			if out, err := sk.marshal(); err != nil || !bytes.Equal(out, sk.raw) {
				t.Fatalf("not canonical: %x -> %x, %v", sk.raw, out, err)
			}
			_ = verifyInclusion(leafHash(Hash{}, sk.sealed), uint64(sk.index), uint64(sk.header.LeafCount), sk.proof, sk.header.Root)
		}
	})
}
