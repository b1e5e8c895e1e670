package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyID names a public key in checkpoints: the first 8 bytes of SHA-256 of
// the raw key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey creates a new audit key at path (PKCS#8 PEM, mode 0600) and
// its public key at path+".pub". It refuses to overwrite either file.
func GenerateKey(path string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := writeNewFile(path+".pub", encodePublicKey(pub), 0o644); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return priv, nil
}

// LoadOrCreateKey loads the key at path, or generates it (GenerateKey) if
// the file does not exist.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	priv, err := LoadPrivateKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return GenerateKey(path)
	}
	return priv, err
}

// LoadPrivateKey reads a PKCS#8 PEM Ed25519 key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit key %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit key %s: not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadPublicKeys reads every PEM PUBLIC KEY block of a .pub file. A log
// whose key was changed keeps the old keys in its .pub file, so one file
// verifies the whole history.
func LoadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	return parsePublicKeys(path, b)
}

func parsePublicKeys(name string, b []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("audit public key %s: unexpected PEM block %q", name, blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit public key %s: %w", name, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit public key %s: not an Ed25519 key", name)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("audit public key %s: no PEM PUBLIC KEY block", name)
	}
	return keys, nil
}

func encodePublicKey(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an Ed25519 key
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// WritePublicKey makes sure the .pub file at path lists pub, appending it
// (atomically, keeping earlier keys) when it does not.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return fmt.Errorf("audit public key: %w", err)
	default:
		keys, err := parsePublicKeys(path, old)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Equal(pub) {
				return nil
			}
		}
	}
	data := append(bytes.Clone(old), encodePublicKey(pub)...)
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
