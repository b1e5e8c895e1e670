package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestCodec_RoundTripAndRefusals(t *testing.T) {
	c, err := NewCodec([]byte(strings.Repeat("a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCodec([]byte(strings.Repeat("b", 32)))
	h := NewHandle()
	v := c.Seal("meetguard", h)
	if len(v) > 100 {
		t.Errorf("sealed handle is %d bytes, want a small cookie", len(v))
	}
	got, err := c.Open("meetguard", v)
	if err != nil || !bytes.Equal(got, h) {
		t.Fatalf("round trip: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]func() (string, string){
		"other purpose": func() (string, string) { return "meetguard-login", v },
		"other key":     func() (string, string) { return "meetguard", other.Seal("meetguard", h) },
		"bit flipped":   func() (string, string) { return "meetguard", base64.RawURLEncoding.EncodeToString(flipped) },
		"truncated":     func() (string, string) { return "meetguard", v[:len(v)-4] },
		"not base64":    func() (string, string) { return "meetguard", "!!!" },
		"empty":         func() (string, string) { return "meetguard", "" },
		"huge":          func() (string, string) { return "meetguard", strings.Repeat("A", 5000) },
	}
	for name, mk := range cases {
		purpose, val := mk()
		if _, err := c.Open(purpose, val); !errors.Is(err, ErrBadCookie) {
			t.Errorf("%s: err = %v, want ErrBadCookie", name, err)
		}
	}
	if _, err := NewCodec([]byte("short")); err == nil {
		t.Error("short secret accepted")
	}
}

func FuzzCodecOpen(f *testing.F) {
	c, _ := NewCodec([]byte(strings.Repeat("a", 32)))
	f.Add(c.Seal("meetguard", NewHandle()))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		pt, err := c.Open("meetguard", v)
		if err == nil && len(pt) != HandleLen {
			// Only values we sealed open; we only seal handles.
			t.Fatalf("opened a forged value to %x", pt)
		}
	})
}
