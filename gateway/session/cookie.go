package session

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrBadCookie is returned for any cookie that does not open: tampered,
// truncated, from another key or another purpose. Callers treat it as "no
// session", never as a reason to say more.
var ErrBadCookie = errors.New("cookie does not open")

// HandleLen is the size of a session handle.
const HandleLen = 32

// maxCookieLen bounds what Open reads: a sealed handle is 76 bytes of
// base64, a sealed login state at most about 2 KiB; a larger value is not
// ours.
const maxCookieLen = 3 << 10

// Codec seals opaque handles into cookie values with XChaCha20-Poly1305. The
// purpose (cookie name) is authenticated data, so a login-state cookie can
// never be replayed as a session cookie.
type Codec struct {
	aead interface {
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}
}

// NewCodec derives the cookie key from the configured session secret.
func NewCodec(secret []byte) (*Codec, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("session secret must be at least 32 bytes, got %d", len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "meetguard session cookie v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive cookie key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("cookie cipher: %w", err)
	}
	return &Codec{aead: aead}, nil
}

// Seal encrypts a handle for one purpose.
func (c *Codec) Seal(purpose string, handle []byte) string {
	buf := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(handle)+chacha20poly1305.Overhead)
	if _, err := rand.Read(buf); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	buf = c.aead.Seal(buf, buf[:chacha20poly1305.NonceSizeX], handle, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Open decrypts a cookie value sealed for purpose.
func (c *Codec) Open(purpose, value string) ([]byte, error) {
	if len(value) > maxCookieLen {
		return nil, ErrBadCookie
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrBadCookie
	}
	pt, err := c.aead.Open(nil, raw[:chacha20poly1305.NonceSizeX], raw[chacha20poly1305.NonceSizeX:], []byte(purpose))
	if err != nil {
		return nil, ErrBadCookie
	}
	return pt, nil
}

// NewHandle draws a fresh random session handle.
func NewHandle() []byte {
	h := make([]byte, HandleLen)
	if _, err := rand.Read(h); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return h
}
