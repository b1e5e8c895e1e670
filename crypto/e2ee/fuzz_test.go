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

func FuzzParseKeyPackage(f *testing.F) {
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeyPackage(b)
		if err != nil {
			return
		}
		if tbs, err := k.encodeTBS(); err != nil || !bytes.Equal(tbs, k.tbs) {
			t.Fatalf("not canonical: %x -> %x, %v", k.tbs, tbs, err)
		}
		_ = k.Verify()
	})
}

func FuzzParseKeyPackages(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		kps, err := parseKeyPackages(b)
		if err != nil {
			return
		}
		var items [][]byte
		for _, k := range kps {
			items = append(items, k.raw)
		}
		if out, err := marshalKeyPackages(items); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
	})
}

func FuzzParseCommit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCommit(b)
		if err != nil {
			return
		}
		if out, err := c.marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, out, err)
		}
		if tbs, err := c.header.encodeTBS(); err != nil || !bytes.Equal(tbs, c.header.tbs) {
			t.Fatalf("header not canonical: %v", err)
		}
	})
}

func FuzzParseSealedSecrets(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		secrets, err := parseSealedSecrets(b)
		if err != nil {
			return
		}
		for _, s := range secrets {
			if out, err := s.marshal(); err != nil || !bytes.Equal(out, s.raw) {
				t.Fatalf("not canonical: %x -> %x, %v", s.raw, out, err)
			}
			_ = verifyInclusion(leafHash(Hash{}, s.keyPackage, s.sealed), uint64(s.index), uint64(s.header.LeafCount), s.proof, s.header.Root)
		}
	})
}
