package config

import (
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/certs"
)

// ACME configures automatic certificates (tls.acme).
type ACME struct {
	// Enabled turns ACME on. Default false.
	Enabled bool `yaml:"enabled"`
	// DirectoryURL is the CA's ACME directory; set it for a private ACME
	// CA (step-ca, Pebble). Default Let's Encrypt production.
	DirectoryURL string `yaml:"directory_url"`
	// Email is the account contact for expiry and revocation notices.
	// Optional but recommended.
	Email string `yaml:"email"`
	// Domains are the names certificates are requested for; no other SNI
	// name is ever ordered. Default: public_url's host.
	Domains []string `yaml:"domains"`
	// CacheDir keeps the account key and certificates (0700). Default:
	// with store.kind redis, Redis (shared by replicas); else required.
	CacheDir string `yaml:"cache_dir"`
	// HTTPListen serves HTTP-01 challenges and redirects other plain
	// requests to https, e.g. ":80". Default "": only TLS-ALPN-01, answered
	// on the main listener (which must then be reachable on port 443).
	HTTPListen string `yaml:"http_listen"`
	// RenewBefore renews a certificate this long before it expires.
	// Default 720h (30 days).
	RenewBefore time.Duration `yaml:"renew_before"`
	// CAFile is a PEM bundle of roots trusted for directory_url (a private
	// CA's API certificate). Default: the system roots.
	CAFile string `yaml:"ca_file"`
}

func (c *Config) applyTLSDefaults() {
	a := &c.TLS.ACME
	if !a.Enabled {
		return
	}
	if c.Listen == "" {
		c.Listen = ":443"
	}
	if a.DirectoryURL == "" {
		a.DirectoryURL = certs.LetsEncrypt
	}
	setDur(&a.RenewBefore, 720*time.Hour)
	if len(a.Domains) == 0 {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
			a.Domains = []string{u.Hostname()}
		}
	}
}

// validateTLS checks certificate files now (so `config validate` catches
// an expired or mismatched pair before a restart does) and the acme block.
func (l *loader) validateTLS(c *Config) {
	pub, _ := url.Parse(c.PublicURL)
	if c.TLS.CertFile != "" && c.TLS.KeyFile != "" && readable(c.TLS.CertFile) && readable(c.TLS.KeyFile) {
		// (An unreadable file is reported by checkFiles.)
		pair, err := certs.LoadPair(c.TLS.CertFile, c.TLS.KeyFile, time.Now())
		var pe *certs.PairError
		switch {
		case errors.As(err, &pe):
			l.add("tls."+pe.File, "%v", pe)
		case err != nil:
			l.add("tls.cert_file", "%v", err)
		case pub != nil && pub.Scheme == "https" && pair.Leaf.VerifyHostname(pub.Hostname()) != nil:
			l.add("tls.cert_file", "certificate is for %v, not public_url's host %s", append(pair.Leaf.DNSNames, ipStrings(pair.Leaf)...), pub.Hostname())
		}
	}
	a := c.TLS.ACME
	if !a.Enabled {
		return
	}
	if c.TLS.CertFile != "" {
		l.add("tls.acme.enabled", "cannot be combined with tls.cert_file")
	}
	if pub != nil && pub.Scheme != "https" {
		l.add("public_url", "must be https when tls.acme is enabled")
	}
	if u := l.absURL("tls.acme.directory_url", a.DirectoryURL, true); u != nil && u.Scheme != "https" {
		l.add("tls.acme.directory_url", "must be https")
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n,")) {
		l.add("tls.acme.email", "must be one email address")
	}
	if len(a.Domains) == 0 {
		l.add("tls.acme.domains", "is required when public_url has no host")
	}
	for _, d := range a.Domains {
		if !strings.Contains(strings.Trim(d, "."), ".") || strings.ContainsAny(d, "*/: ") {
			l.add("tls.acme.domains", "%q is not a fully qualified host name (no wildcards, ports or IPs)", d)
		}
	}
	if a.CacheDir == "" {
		if c.Store.Kind != "redis" {
			l.add("tls.acme.cache_dir", "is required when tls.acme is enabled (or store.kind: redis)")
		}
	} else if err := writableDir(a.CacheDir); err != nil {
		l.add("tls.acme.cache_dir", "%v", err)
	}
	if a.RenewBefore < time.Hour {
		l.add("tls.acme.renew_before", "must be at least 1h")
	}
	if a.CAFile != "" {
		if _, err := CertPool(a.CAFile); err != nil {
			l.add("tls.acme.ca_file", "%v", err)
		}
	}
}

// CertPool reads a PEM bundle of trusted roots.
func CertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(path + ": no PEM certificates")
	}
	return pool, nil
}

// writableDir checks, without creating anything, that dir is (or can be
// created as) a directory this process can write.
func writableDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		parent := filepath.Dir(filepath.Clean(dir))
		if parent == dir {
			return err
		}
		if err := writableDir(parent); err != nil {
			return errors.New(dir + " does not exist and cannot be created: " + err.Error())
		}
		return nil
	}
	if err != nil {
		return errors.New(dir + " cannot be used: " + err.Error())
	}
	if !st.IsDir() {
		return errors.New(dir + " is not a directory")
	}
	f, err := os.CreateTemp(dir, ".meetguard-write-probe-")
	if err != nil {
		return errors.New(dir + " is not writable: " + err.Error())
	}
	_ = f.Close()
	return os.Remove(f.Name())
}

func readable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

func ipStrings(c *x509.Certificate) []string {
	var s []string
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	return s
}
