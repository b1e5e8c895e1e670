package sframe

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
)

type rfcVectors struct {
	Headers []struct {
		KID, CTR, Header string
	} `json:"headers"`
	Encryption []struct {
		CipherSuite     int    `json:"cipher_suite"`
		KID             string `json:"kid"`
		CTR             string `json:"ctr"`
		BaseKey         string `json:"base_key"`
		SFrameKeyLabel  string `json:"sframe_key_label"`
		SFrameSaltLabel string `json:"sframe_salt_label"`
		SFrameKey       string `json:"sframe_key"`
		SFrameSalt      string `json:"sframe_salt"`
		Metadata        string `json:"metadata"`
		Nonce           string `json:"nonce"`
		PT              string `json:"pt"`
		CT              string `json:"ct"`
	} `json:"encryption"`
}

func loadRFC(t *testing.T) rfcVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/rfc9605.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Headers) == 0 || len(v.Encryption) == 0 {
		t.Fatal("testdata/rfc9605.json has no vectors")
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func hexUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHeader_RFC9605Vectors(t *testing.T) {
	for _, tc := range loadRFC(t).Headers {
		kid, ctr, want := hexUint(t, tc.KID), hexUint(t, tc.CTR), unhex(t, tc.Header)
		if got := AppendHeader(nil, kid, ctr); !bytes.Equal(got, want) {
			t.Errorf("AppendHeader(%#x, %#x) = %x, want %x", kid, ctr, got, want)
		}
		gk, gc, n, err := ParseHeader(append(want, 0xAA, 0xBB))
		if err != nil || gk != kid || gc != ctr || n != len(want) {
			t.Errorf("ParseHeader(%x) = %#x, %#x, %d, %v; want %#x, %#x, %d", want, gk, gc, n, err, kid, ctr, len(want))
		}
	}
}

func TestDeriveKey_RFC9605Vector(t *testing.T) {
	for _, tc := range loadRFC(t).Encryption {
		if tc.CipherSuite != int(CipherSuite) {
			continue
		}
		kid := hexUint(t, tc.KID)
		if got := label("SFrame 1.0 Secret key ", kid); !bytes.Equal([]byte(got), unhex(t, tc.SFrameKeyLabel)) {
			t.Errorf("key label = %x, want %s", got, tc.SFrameKeyLabel)
		}
		if got := label("SFrame 1.0 Secret salt ", kid); !bytes.Equal([]byte(got), unhex(t, tc.SFrameSaltLabel)) {
			t.Errorf("salt label = %x, want %s", got, tc.SFrameSaltLabel)
		}
		k, err := DeriveKey(kid, unhex(t, tc.BaseKey))
		if err != nil {
			t.Fatal(err)
		}
		key, salt := k.Material()
		if !bytes.Equal(key[:], unhex(t, tc.SFrameKey)) || !bytes.Equal(salt[:], unhex(t, tc.SFrameSalt)) {
			t.Errorf("DeriveKey = key %x salt %x, want %s %s", key, salt, tc.SFrameKey, tc.SFrameSalt)
		}
		if got := k.nonce(hexUint(t, tc.CTR)); !bytes.Equal(got, unhex(t, tc.Nonce)) {
			t.Errorf("nonce = %x, want %s", got, tc.Nonce)
		}
	}
}

func TestEncryptDecrypt_RFC9605Vector(t *testing.T) {
	checked := 0
	for _, tc := range loadRFC(t).Encryption {
		if tc.CipherSuite != int(CipherSuite) {
			continue
		}
		checked++
		k, err := DeriveKey(hexUint(t, tc.KID), unhex(t, tc.BaseKey))
		if err != nil {
			t.Fatal(err)
		}
		meta, pt, ct := unhex(t, tc.Metadata), unhex(t, tc.PT), unhex(t, tc.CT)
		if got := k.Encrypt(hexUint(t, tc.CTR), meta, pt); !bytes.Equal(got, ct) {
			t.Errorf("Encrypt = %x, want %x", got, ct)
		}
		got, err := k.Decrypt(meta, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Decrypt = %x, %v; want %x", got, err, pt)
		}
	}
	if checked == 0 {
		t.Fatal("no vector for cipher suite 0x0004")
	}
}

func TestDecrypt_RefusesTamperedInput(t *testing.T) {
	k, err := DeriveKey(0x123, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := DeriveKey(0x124, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	meta := []byte("rtp metadata")
	ct := k.Encrypt(77, meta, []byte("a video frame"))
	flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 1; return c }
	cases := []struct {
		name string
		key  *Key
		meta []byte
		ct   []byte
		want error
	}{
		{"flipped payload bit", k, meta, flip(len(ct) - 20), ErrAuthentication},
		{"flipped tag bit", k, meta, flip(len(ct) - 1), ErrAuthentication},
		{"other metadata", k, []byte("rtp metadatA"), ct, ErrAuthentication},
		{"counter changed in header", k, meta, append(AppendHeader(nil, 0x123, 78), ct[len(AppendHeader(nil, 0x123, 77)):]...), ErrAuthentication},
		{"other KID's key", other, meta, ct, ErrWrongKey},
		{"truncated below tag", k, meta, ct[:len(AppendHeader(nil, 0x123, 77))+TagSize-1], ErrMalformed},
		{"empty", k, meta, nil, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.key.Decrypt(tc.meta, tc.ct); !errors.Is(err, tc.want) {
				t.Fatalf("Decrypt error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseHeader_RefusesNonMinimalAndShort(t *testing.T) {
	cases := map[string][]byte{
		"kid 5 in extended form":      {0x80, 0x05},
		"ctr with leading zero byte":  {0x09, 0x00, 0xff},
		"kid with leading zero byte":  {0x90, 0x00, 0x10},
		"kid length beyond input":     {0xf0, 0x01, 0x02},
		"ctr length beyond input":     {0x0f, 0x01},
		"extended kid missing entire": {0x80},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseHeader(%x) error = %v, want ErrMalformed", b, err)
			}
		})
	}
}

func TestKey_EqualComparesEverything(t *testing.T) {
	base := []byte("0123456789abcdef0123456789abcdef")
	a, _ := DeriveKey(9, base)
	b, _ := DeriveKey(9, base)
	c, _ := DeriveKey(10, base)
	d, _ := DeriveKey(9, []byte("another base key of 32 bytes...."))
	if !a.Equal(b) || a.Equal(c) || a.Equal(d) {
		t.Fatalf("Equal: same=%v otherKID=%v otherBase=%v", a.Equal(b), a.Equal(c), a.Equal(d))
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add([]byte{0x99, 0x01, 0x23, 0x45, 0x67})
	f.Add([]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		kid, ctr, n, err := ParseHeader(b)
		if err != nil {
			return
		}
		if got := AppendHeader(nil, kid, ctr); !bytes.Equal(got, b[:n]) {
			t.Fatalf("ParseHeader(%x) = %d,%d but encodes to %x", b, kid, ctr, got)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	k, err := DeriveKey(0x123, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("meta"), k.Encrypt(1, []byte("meta"), []byte("frame")))
	f.Add([]byte{}, []byte{0x99, 0x01, 0x23})
	f.Fuzz(func(t *testing.T, meta, ct []byte) {
		pt, err := k.Decrypt(meta, ct)
		if err != nil {
			return
		}
		// Anything that authenticates must be exactly what Encrypt produces for that counter.
		_, ctr, _, _ := ParseHeader(ct)
		if again := k.Encrypt(ctr, meta, pt); !bytes.Equal(again, ct) {
			t.Fatalf("accepted a ciphertext Encrypt would not produce")
		}
	})
}

func BenchmarkDeriveKey(b *testing.B) {
	b.ReportAllocs()
	base := make([]byte, 32)
	for b.Loop() {
		if _, err := DeriveKey(0x100000001, base); err != nil {
			b.Fatal(err)
		}
	}
}

func testKey(t *testing.T, kid uint64) *Key {
	t.Helper()
	k, err := DeriveKey(kid, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSendContext_RefusesReusedCounter(t *testing.T) {
	s := NewSendContext(testKey(t, 9))
	if _, err := s.ProtectAt(5, nil, []byte("a")); err != nil {
		t.Fatal(err)
	}
	for _, ctr := range []uint64{5, 4, 0} {
		if _, err := s.ProtectAt(ctr, nil, []byte("b")); !errors.Is(err, ErrCounterReused) {
			t.Fatalf("ProtectAt(%d) after 5 = %v, want ErrCounterReused", ctr, err)
		}
	}
	ct, err := s.Protect(nil, []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ctr, _, _ := ParseHeader(ct); ctr != 6 {
		t.Fatalf("next counter %d, want 6", ctr)
	}
}

func TestReceiveContext_ReplayWindow(t *testing.T) {
	key := testKey(t, 300)
	frames := map[uint64][]byte{}
	for _, ctr := range []uint64{0, 1, 2, 3, 200, 199, 100, 50} {
		frames[ctr] = key.Encrypt(ctr, nil, []byte{byte(ctr)})
	}
	r := NewReceiveContext(key)
	steps := []struct {
		ctr  uint64
		want error
	}{
		{1, nil}, {0, nil}, {1, ErrReplay}, {3, nil}, {2, nil}, {3, ErrReplay},
		{200, nil}, {199, nil}, {199, ErrReplay}, {100, nil}, {100, ErrReplay}, {50, ErrReplay /* below the window of 200 */},
	}
	for i, st := range steps {
		_, err := r.Unprotect(nil, frames[st.ctr])
		if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("step %d: counter %d: %v, want %v", i, st.ctr, err, st.want)
		}
	}
	// A forged frame does not burn its counter.
	r2 := NewReceiveContext(key)
	bad := bytes.Clone(frames[2])
	bad[len(bad)-1] ^= 1
	if _, err := r2.Unprotect(nil, bad); !errors.Is(err, ErrAuthentication) {
		t.Fatal(err)
	}
	if _, err := r2.Unprotect(nil, frames[2]); err != nil {
		t.Fatalf("genuine frame after a forgery: %v", err)
	}
}
