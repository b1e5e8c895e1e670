// Package pseudonym derives stable, unlinkable names for people from a
// key that only the gateway and its meeting server share, so a meeting
// server learns a stable handle for a person but not their subject.
//
// It never returns anything from which the input can be read back, and
// its key is derived from the upstream secret with a purpose label, so a
// pseudonym is never a usable credential.
package pseudonym

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Deriver computes pseudonyms for one purpose.
type Deriver struct {
	key []byte
}

// New derives a pseudonym key for purpose from secret.
func New(secret []byte, purpose string) (*Deriver, error) {
	if len(secret) == 0 || purpose == "" {
		return nil, errors.New("pseudonym: secret and purpose are required")
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "meetguard pseudonym v1: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: %w", err)
	}
	return &Deriver{key: k}, nil
}

// Of returns n bytes of HMAC over the parts, base64url without padding.
// Parts are length-prefixed so that ("a|b","c") and ("a","b|c") differ.
func (d *Deriver) Of(n int, parts ...string) string {
	m := hmac.New(sha256.New, d.key)
	var l [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(l[:], uint32(len(p)))
		m.Write(l[:])
		m.Write([]byte(p))
	}
	sum := m.Sum(nil)
	if n > len(sum) {
		n = len(sum)
	}
	return base64.RawURLEncoding.EncodeToString(sum[:n])
}
