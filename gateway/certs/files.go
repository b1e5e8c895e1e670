package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meetguard/meetguard/policy/watch"
	"go.uber.org/zap"
)

// Errors LoadPair wraps, for callers that branch on them.
var (
	ErrExpired     = errors.New("certificate has expired")
	ErrNotYetValid = errors.New("certificate is not valid yet")
	ErrKeyMismatch = errors.New("private key does not match the certificate")
)

// PairError says which of the two files a certificate pair failed on, so
// that config validation can name the field ("cert_file" or "key_file").
type PairError struct {
	File string // "cert_file" or "key_file"
	Path string
	Err  error
}

func (e *PairError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PairError) Unwrap() error { return e.Err }

// LoadPair reads and checks a PEM certificate chain and its private key:
// both parse, the key matches the leaf, and the leaf is valid at now.
func LoadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &PairError{"cert_file", certFile, err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &PairError{"key_file", keyFile, err}
	}
	// Parse the leaf alone first so a broken certificate is not reported
	// as a key problem.
	if err := parseLeaf(certPEM); err != nil {
		return nil, &PairError{"cert_file", certFile, err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if err.Error() == "tls: private key does not match public key" {
			err = ErrKeyMismatch
		}
		return nil, &PairError{"key_file", keyFile, err}
	}
	leaf := pair.Leaf
	switch {
	case now.After(leaf.NotAfter):
		return nil, &PairError{"cert_file", certFile, fmt.Errorf("%w (not after %s)", ErrExpired, leaf.NotAfter.UTC().Format(time.RFC3339))}
	case now.Before(leaf.NotBefore):
		return nil, &PairError{"cert_file", certFile, fmt.Errorf("%w (not before %s)", ErrNotYetValid, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	return &pair, nil
}

// parseLeaf checks that the first PEM block is a parseable certificate.
func parseLeaf(certPEM []byte) error {
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return errors.New("no PEM CERTIFICATE block")
	}
	_, err := x509.ParseCertificate(blk.Bytes)
	return err
}

// Reload reports one reload attempt of a certificate source.
type Reload struct {
	Trigger     string // "signal", "file" or "start"
	OldSerial   string
	NewSerial   string
	OldNotAfter time.Time
	NotAfter    time.Time // the serving certificate's after the attempt (the old one's when rejected)
	Err         error     // set when the reload was rejected; the old certificate serves on
}

// Changed reports whether a new certificate now serves.
func (r Reload) Changed() bool { return r.Err == nil && r.OldSerial != r.NewSerial }

// FileOptions configures a Files source.
type FileOptions struct {
	CertFile, KeyFile string
	Logger            *zap.Logger
	// OnReload is told of every reload attempt after start (the caller
	// writes the audit record).
	OnReload func(Reload)
	// Now is the clock for validity checks. Default time.Now.
	Now func() time.Time
}

// Files serves a certificate pair from disk and swaps it in place when the
// files change or Reload is called; handshakes in flight keep the
// certificate they started with.
type Files struct {
	opts FileOptions
	cur  atomic.Pointer[tls.Certificate]
	mu   sync.Mutex // one reload at a time
}

// NewFiles loads the pair once; an error here stops the start.
func NewFiles(opts FileOptions) (*Files, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pair, err := LoadPair(opts.CertFile, opts.KeyFile, opts.Now())
	if err != nil {
		return nil, err
	}
	f := &Files{opts: opts}
	f.cur.Store(pair)
	return f, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Serial is the serving certificate's serial number in hex.
func (f *Files) Serial() string { return f.cur.Load().Leaf.SerialNumber.Text(16) }

// Reload reads the files again. A pair that does not load, does not match
// or is not currently valid is rejected and the old one keeps serving.
func (f *Files) Reload(trigger string) Reload {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.cur.Load().Leaf
	r := Reload{Trigger: trigger, OldSerial: old.SerialNumber.Text(16), OldNotAfter: old.NotAfter}
	pair, err := LoadPair(f.opts.CertFile, f.opts.KeyFile, f.opts.Now())
	if err != nil {
		r.Err = err
		r.NewSerial, r.NotAfter = r.OldSerial, r.OldNotAfter
		f.opts.Logger.Warn("tls certificate reload rejected; the old certificate keeps serving", zap.String("trigger", trigger), zap.Error(err))
	} else {
		f.cur.Store(pair)
		r.NewSerial = pair.Leaf.SerialNumber.Text(16)
		r.NotAfter = pair.Leaf.NotAfter
		if r.Changed() {
			f.opts.Logger.Info("tls certificate reloaded", zap.String("trigger", trigger), zap.String("old_serial", r.OldSerial), zap.String("new_serial", r.NewSerial), zap.Time("not_after", r.NotAfter))
		}
	}
	if f.opts.OnReload != nil {
		f.opts.OnReload(r)
	}
	return r
}

// Watch reloads when either file changes, until ctx ends. It watches the
// directories, not the files, so that an editor's or cert-manager's
// rename-into-place (and a Kubernetes secret's symlink swap) is seen.
// Bursts of events are folded into one reload.
func (f *Files) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	dirs := map[string]bool{filepath.Dir(f.opts.CertFile): true, filepath.Dir(f.opts.KeyFile): true}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	watch.Debounce(ctx, w, watch.Options{
		Quiet:   200 * time.Millisecond,
		OnError: func(err error) { f.opts.Logger.Warn("tls certificate watch", zap.Error(err)) },
		Fire:    func() { f.Reload("file") },
	})
	return nil
}
