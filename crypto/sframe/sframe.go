// Package sframe derives SFrame (RFC 9605) keys from base keys and protects media frames with the cipher suite
// AES_128_GCM_SHA256_128. It never chooses, stores or distributes base keys: which base key belongs to which KID
// is decided by the key exchange (crypto/e2ee), and which CTR values are used is decided by the media sender,
// which must never reuse a CTR under one KID.
package sframe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// CipherSuite is the RFC 9605 identifier of AES_128_GCM_SHA256_128, the only suite this package implements.
const CipherSuite uint16 = 0x0004

// Sizes of the suite's key, nonce (salt) and tag, from RFC 9605 section 4.5 (Nk, Nn, Nt).
const (
	KeySize  = 16
	SaltSize = 12
	TagSize  = 16
)

var (
	// ErrMalformed reports an SFrame header or ciphertext that does not parse.
	ErrMalformed = errors.New("sframe: malformed")
	// ErrWrongKey reports a ciphertext whose KID is not the key's.
	ErrWrongKey = errors.New("sframe: ciphertext is for another KID")
	// ErrAuthentication reports a ciphertext that fails AEAD authentication.
	ErrAuthentication = errors.New("sframe: authentication failed")
)

// Key is the SFrame key and salt of one KID, ready to protect or unprotect frames.
type Key struct {
	kid  uint64
	key  [KeySize]byte
	salt [SaltSize]byte
	aead cipher.AEAD
}

// DeriveKey derives the sframe_key and sframe_salt of kid from baseKey as RFC 9605 section 4.4.2 specifies.
func DeriveKey(kid uint64, baseKey []byte) (*Key, error) {
	if len(baseKey) == 0 {
		return nil, fmt.Errorf("sframe: derive key: empty base key")
	}
	secret, err := hkdf.Extract(sha256.New, baseKey, nil)
	if err != nil {
		return nil, fmt.Errorf("sframe: derive key: %w", err)
	}
	k := &Key{kid: kid}
	key, err := hkdf.Expand(sha256.New, secret, label("SFrame 1.0 Secret key ", kid), KeySize)
	if err != nil {
		return nil, fmt.Errorf("sframe: derive key: %w", err)
	}
	salt, err := hkdf.Expand(sha256.New, secret, label("SFrame 1.0 Secret salt ", kid), SaltSize)
	if err != nil {
		return nil, fmt.Errorf("sframe: derive key: %w", err)
	}
	copy(k.key[:], key)
	copy(k.salt[:], salt)
	clear(secret)
	clear(key)
	block, err := aes.NewCipher(k.key[:])
	if err != nil {
		return nil, fmt.Errorf("sframe: derive key: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("sframe: derive key: %w", err)
	}
	return k, nil
}

// label is "prefix" || KID as 8 bytes || cipher suite as 2 bytes, all big-endian (RFC 9605 section 4.4.2).
func label(prefix string, kid uint64) string {
	b := make([]byte, 0, len(prefix)+10)
	b = append(b, prefix...)
	b = binary.BigEndian.AppendUint64(b, kid)
	b = binary.BigEndian.AppendUint16(b, CipherSuite)
	return string(b)
}

// KID returns the key identifier the key was derived for.
func (k *Key) KID() uint64 { return k.kid }

// Material returns the derived sframe_key and sframe_salt. It exists for interoperability checks and test
// vectors; media code should use Encrypt and Decrypt.
func (k *Key) Material() (key [KeySize]byte, salt [SaltSize]byte) { return k.key, k.salt }

// Equal reports in constant time whether two keys have the same KID, key and salt.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	a := make([]byte, 0, 8+KeySize+SaltSize)
	b := make([]byte, 0, 8+KeySize+SaltSize)
	a = append(binary.BigEndian.AppendUint64(a, k.kid), append(k.key[:], k.salt[:]...)...)
	b = append(binary.BigEndian.AppendUint64(b, o.kid), append(o.key[:], o.salt[:]...)...)
	return subtleEqual(a, b)
}

func (k *Key) nonce(ctr uint64) []byte {
	n := make([]byte, SaltSize)
	copy(n, k.salt[:])
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], ctr)
	for i := range c {
		n[SaltSize-8+i] ^= c[i]
	}
	return n
}

// Encrypt returns the SFrame ciphertext (header || AEAD output) of plaintext under counter ctr, authenticating
// metadata too (RFC 9605 section 4.4.3). The caller must never use one ctr twice with this key.
func (k *Key) Encrypt(ctr uint64, metadata, plaintext []byte) []byte {
	header := AppendHeader(nil, k.kid, ctr)
	aad := append(append(make([]byte, 0, len(header)+len(metadata)), header...), metadata...)
	out := make([]byte, len(header), len(header)+len(plaintext)+TagSize)
	copy(out, header)
	return k.aead.Seal(out, k.nonce(ctr), plaintext, aad)
}

// Decrypt authenticates and decrypts an SFrame ciphertext produced under this key (RFC 9605 section 4.4.4).
func (k *Key) Decrypt(metadata, ciphertext []byte) ([]byte, error) {
	kid, ctr, n, err := ParseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	if kid != k.kid {
		return nil, fmt.Errorf("%w: got KID %d, key is for %d", ErrWrongKey, kid, k.kid)
	}
	if len(ciphertext)-n < TagSize {
		return nil, fmt.Errorf("%w: ciphertext shorter than the tag", ErrMalformed)
	}
	aad := append(append(make([]byte, 0, n+len(metadata)), ciphertext[:n]...), metadata...)
	pt, err := k.aead.Open(nil, k.nonce(ctr), ciphertext[n:], aad)
	if err != nil {
		return nil, ErrAuthentication
	}
	return pt, nil
}
