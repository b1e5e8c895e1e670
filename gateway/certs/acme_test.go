package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const acmeHost = "meet.example.test"

// serveTLS runs an HTTPS server with the gateway's TLS settings on ln.
func serveTLS(t *testing.T, ln net.Listener, get func(*tls.ClientHelloInfo) (*tls.Certificate, error), withACME bool) {
	t.Helper()
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) }),
		TLSConfig:         ServerConfig(get, withACME),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
}

func newACMEFor(t *testing.T, p *pebble, renewBefore time.Duration) *ACME {
	t.Helper()
	cache, err := DirCache(filepath.Join(t.TempDir(), "acme"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewACME(context.Background(), ACMEOptions{
		DirectoryURL: p.DirectoryURL, Email: "ops@example.test", Hosts: []string{acmeHost},
		Cache: cache, RenewBefore: renewBefore, HTTPClient: p.Client,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func client(p *pebble, addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.Roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func TestACME_TLSALPN01_IssuesCertificateVerifiedAgainstCARoot(t *testing.T) {
	ln, port := listen(t)
	// Nothing listens on the HTTP-01 port: the certificate can only come
	// from the TLS-ALPN-01 answer on the gateway's own listener.
	p := startPebble(t, pebbleOptions{TLSPort: port, HTTPPort: freePort(t), ValiditySeconds: 7776000})
	a := newACMEFor(t, p, 0)
	serveTLS(t, ln, a.GetCertificate, true)

	start := time.Now()
	resp, err := client(p, ln.Addr().String()).Get("https://" + acmeHost + "/")
	if err != nil {
		t.Fatalf("HTTPS with a certificate verified against pebble's root: %v", err)
	}
	defer resp.Body.Close()
	t.Logf("ACME issuance (TLS-ALPN-01) and first request: %v", time.Since(start))
	leaf := resp.TLS.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, acmeHost) {
		t.Fatalf("certificate names %v, want %s", leaf.DNSNames, acmeHost)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
}

func TestACME_HTTP01_IssuesWhenOnlyThePlainListenerIsReachable(t *testing.T) {
	ln, _ := listen(t)
	httpLn, httpPort := listen(t)
	// The CA cannot reach a TLS-ALPN-01 port, so only HTTP-01 can work.
	p := startPebble(t, pebbleOptions{TLSPort: freePort(t), HTTPPort: httpPort, ValiditySeconds: 7776000})
	a := newACMEFor(t, p, 0)
	var challenges atomic.Int32
	h := a.HTTPHandler()
	plain := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			challenges.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = plain.Serve(httpLn) }()
	t.Cleanup(func() { _ = plain.Close() })
	serveTLS(t, ln, a.GetCertificate, true)

	start := time.Now()
	resp, err := client(p, ln.Addr().String()).Get("https://" + acmeHost + "/")
	if err != nil {
		t.Fatalf("HTTPS after HTTP-01: %v", err)
	}
	resp.Body.Close()
	t.Logf("ACME issuance (TLS-ALPN-01 refused, then HTTP-01) and first request: %v", time.Since(start))
	if challenges.Load() == 0 {
		t.Fatal("the CA never fetched an HTTP-01 challenge from the plain listener")
	}

	// Any other plain request is sent to https, never served in clear.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r2, err := noRedirect.Get("http://" + httpLn.Addr().String() + "/room/x")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusFound || !strings.HasPrefix(r2.Header.Get("Location"), "https://") {
		t.Fatalf("plain request: %d %q, want a redirect to https", r2.StatusCode, r2.Header.Get("Location"))
	}
}

func TestACME_RenewsBeforeExpiry(t *testing.T) {
	ln, port := listen(t)
	// Certificates live an hour and renewal starts two hours before
	// expiry: every certificate is due for renewal as soon as it is issued.
	p := startPebble(t, pebbleOptions{TLSPort: port, HTTPPort: freePort(t), ValiditySeconds: 3600})
	a := newACMEFor(t, p, 2*time.Hour)
	serveTLS(t, ln, a.GetCertificate, true)
	c := client(p, ln.Addr().String())
	serial := func() string {
		resp, err := c.Get("https://" + acmeHost + "/")
		if err != nil {
			t.Fatalf("HTTPS: %v", err)
		}
		resp.Body.Close()
		c.CloseIdleConnections() // next request: new handshake
		return resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
	}
	first := serial()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s := serial(); s != first {
			return // renewed, and the new certificate verifies against the root
		}
	}
	t.Fatal("the certificate was not renewed")
}

func TestACME_RefusesNamesItDoesNotServe(t *testing.T) {
	ln, port := listen(t)
	p := startPebble(t, pebbleOptions{TLSPort: port, HTTPPort: freePort(t), ValiditySeconds: 7776000})
	a := newACMEFor(t, p, 0)
	serveTLS(t, ln, a.GetCertificate, true)
	// An attacker pointing another name at the gateway must not make it
	// order certificates (and spend the CA's rate limit) for that name.
	_, err := client(p, ln.Addr().String()).Get("https://attacker.example.test/")
	if err == nil {
		t.Fatal("served a certificate for a name outside tls.acme.domains")
	}
}

func TestNewACME_WrongDirectory(t *testing.T) {
	notACME := httptest.NewServer(http.NotFoundHandler())
	defer notACME.Close()
	cache, err := DirCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewACME(context.Background(), ACMEOptions{DirectoryURL: notACME.URL + "/directory", Hosts: []string{acmeHost}, Cache: cache})
	if !errors.Is(err, ErrDirectory) || !strings.Contains(err.Error(), notACME.URL+"/directory") {
		t.Fatalf("err = %v, want ErrDirectory naming the URL", err)
	}
}

func TestDirCache_Unwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := DirCache(filepath.Join(file, "acme")); err == nil {
		t.Fatal("a cache under a regular file was accepted")
	}
}
