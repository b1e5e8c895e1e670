package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = acme.LetsEncryptURL

// ErrDirectory means the ACME directory URL does not answer as an ACME
// server (wrong URL, CA down, or its TLS certificate is not trusted).
var ErrDirectory = errors.New("not a reachable ACME directory")

// ACMEOptions configures automatic certificates.
type ACMEOptions struct {
	// DirectoryURL is the CA's ACME directory. Default Let's Encrypt.
	DirectoryURL string
	// Email is the account contact the CA writes to about expiry and
	// revocation. Optional.
	Email string
	// Hosts are the only names a certificate is requested for; any other
	// SNI name is refused before the CA is asked (no one can make the
	// gateway spend the CA's rate limit on names it does not serve).
	Hosts []string
	// Cache keeps the account key and certificates across restarts (and
	// between replicas when shared). Required.
	Cache autocert.Cache
	// RenewBefore renews this long before expiry. Default 30 days.
	RenewBefore time.Duration
	// HTTPClient talks to the CA; set its root pool for a private CA.
	HTTPClient *http.Client
	Logger     *zap.Logger
}

// ACME obtains certificates on first use, answers TLS-ALPN-01 challenges
// on the TLS listener and HTTP-01 challenges through HTTPHandler, and
// renews in the background. It uses golang.org/x/crypto/acme/autocert:
// maintained by the Go team, no dependencies outside x/crypto, and the
// same Cache interface serves a directory or Redis.
type ACME struct {
	m *autocert.Manager
}

// NewACME checks that the directory answers and builds the manager. When
// the CA cannot be reached but every host already has a certificate in the
// cache, the gateway starts anyway (a CA outage must not stop a restart)
// and renewal retries later.
func NewACME(ctx context.Context, opts ACMEOptions) (*ACME, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Cache == nil {
		return nil, errors.New("acme: no certificate cache")
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("acme: no host names")
	}
	if opts.DirectoryURL == "" {
		opts.DirectoryURL = LetsEncrypt
	}
	client := &acme.Client{DirectoryURL: opts.DirectoryURL, HTTPClient: opts.HTTPClient, UserAgent: "meetguard"}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := client.Discover(dctx); err != nil {
		derr := fmt.Errorf("%w: %s: %v", ErrDirectory, opts.DirectoryURL, err)
		if !allCached(ctx, opts.Cache, opts.Hosts) {
			return nil, derr
		}
		opts.Logger.Warn("acme directory unreachable; serving cached certificates until it is back", zap.Error(derr))
	}
	var contact string
	if opts.Email != "" {
		contact = opts.Email
	}
	m := &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       opts.Cache,
		HostPolicy:  autocert.HostWhitelist(opts.Hosts...),
		RenewBefore: opts.RenewBefore,
		Client:      client,
		Email:       contact,
	}
	return &ACME{m: m}, nil
}

func allCached(ctx context.Context, c autocert.Cache, hosts []string) bool {
	for _, h := range hosts {
		if _, err := c.Get(ctx, h); err != nil {
			return false
		}
	}
	return true
}

// GetCertificate is for tls.Config.GetCertificate; it also answers
// TLS-ALPN-01 challenge handshakes.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.m.GetCertificate(hello)
}

// HTTPHandler answers HTTP-01 challenges and redirects every other plain
// HTTP request to https. The port is dropped from Host before autocert's
// host check, which compares bare names (a CA reaching the listener
// through a port mapping sends "name:port").
func (a *ACME) HTTPHandler() http.Handler {
	h := a.m.HTTPHandler(nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			r = r.Clone(r.Context())
			r.Host = host
		}
		h.ServeHTTP(w, r)
	})
}

// DirCache is a certificate cache directory, created 0700 if missing. It
// fails now, naming the directory, when the directory cannot be written,
// rather than at the first certificate order.
func DirCache(dir string) (autocert.Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	probe, err := os.CreateTemp(dir, ".meetguard-write-probe-")
	if err != nil {
		return nil, fmt.Errorf("%s is not writable: %w", dir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return autocert.DirCache(filepath.Clean(dir)), nil
}
