package session

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrBadRecord means a stored record does not open: it was changed, moved
// to another key, or sealed under another secret.
var ErrBadRecord = errors.New("session record does not open")

// Sealer encrypts what a shared store keeps (sessions hold the provider's
// refresh and ID tokens), so that a dump of Redis, a replica or a backup
// yields no usable token. Each record is bound to its kind and key: a
// record copied under another session's key does not open.
type Sealer struct {
	aead interface {
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}
}

// NewSealer derives the store key from the session secret (a key apart
// from the cookie key: the same secret, another HKDF purpose).
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("session secret must be at least 32 bytes, got %d", len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "meetguard session store v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive store key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("store cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func ad(kind, name string) []byte { return []byte("meetguard/" + kind + "\x00" + name) }

func (s *Sealer) seal(kind, name string, v any) ([]byte, error) {
	pt, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", kind, err)
	}
	buf := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(pt)+chacha20poly1305.Overhead)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("seal %s: %w", kind, err)
	}
	return s.aead.Seal(buf, buf[:chacha20poly1305.NonceSizeX], pt, ad(kind, name)), nil
}

func (s *Sealer) open(kind, name string, raw []byte, v any) error {
	if len(raw) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return ErrBadRecord
	}
	pt, err := s.aead.Open(nil, raw[:chacha20poly1305.NonceSizeX], raw[chacha20poly1305.NonceSizeX:], ad(kind, name))
	if err != nil {
		return ErrBadRecord
	}
	if err := json.Unmarshal(pt, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return nil
}

// SealSession encrypts a session for the store, bound to its ID.
func (s *Sealer) SealSession(sess Session) ([]byte, error) {
	return s.seal("session", sess.ID, sess)
}

// OpenSession decrypts what SealSession stored under id.
func (s *Sealer) OpenSession(id string, raw []byte) (Session, error) {
	var sess Session
	if err := s.open("session", id, raw, &sess); err != nil {
		return Session{}, err
	}
	if sess.ID != id {
		return Session{}, ErrBadRecord
	}
	sess.Identity.SessionID = id // not serialised (json:"-")
	return sess, nil
}

// SealLogin encrypts a login in progress, bound to its state.
func (s *Sealer) SealLogin(l Login) ([]byte, error) {
	return s.seal("login", l.State, l)
}

// OpenLogin decrypts what SealLogin stored under state.
func (s *Sealer) OpenLogin(state string, raw []byte) (Login, error) {
	var l Login
	if err := s.open("login", state, raw, &l); err != nil {
		return Login{}, err
	}
	if l.State != state {
		return Login{}, ErrBadRecord
	}
	return l, nil
}
