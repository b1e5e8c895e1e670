package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
)

// installPair writes a fresh self-signed pair over certPath/keyPath (by
// rename, as cert-manager does) and returns its serial.
func installPair(t *testing.T, certPath, keyPath string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	for p, b := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	return serial.Text(16)
}

// serveTLS serves 404s with cfg on a loopback port until the test ends and
// returns its address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, ReadHeaderTimeout: time.Second, Handler: http.NotFoundHandler()}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func presentedSerial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads what is served
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

func TestServeTLS_SIGHUPReloadsCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := installPair(t, certPath, keyPath)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &config.Config{TLS: config.TLS{CertFile: certPath, KeyFile: keyPath}}
	// Files are not watched here, so only the signal can reload them.
	lt, err := app.NewListenerTLS(ctx, cfg, zap.NewNop(), app.TLSOptions{NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	// What runGateway does on SIGHUP, for the certificate files alone.
	defer onHangup(ctx, func(context.Context) { lt.Reload("signal") })()
	addr := serveTLS(t, lt.Config)

	if got := presentedSerial(t, addr); got != first {
		t.Fatalf("serving %s, want %s", got, first)
	}
	next := installPair(t, certPath, keyPath)
	if got := presentedSerial(t, addr); got != first {
		t.Fatalf("reloaded before the signal: serving %s", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if presentedSerial(t, addr) == next {
			return
		}
	}
	t.Fatal("SIGHUP did not reload the certificate")
}

// tlsRecords reads the tls.* audit records of the log at path.
func tlsRecords(t *testing.T, path string) []map[string]string {
	t.Helper()
	var out []map[string]string
	_, err := audit.ReadEntries(context.Background(), []string{path}, func(en *audit.Entry) error {
		if en.Event == audit.EventTLSReload || en.Event == audit.EventTLSReloadRejected {
			m := map[string]string{"event": en.Event}
			for _, mb := range en.Members {
				var s string
				_ = json.Unmarshal(mb.Value, &s)
				m[mb.Key] = s
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastTLSRecord returns the last tls.* record of event in the log at path
// for which ok holds, or nil.
func lastTLSRecord(t *testing.T, path, event string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	rs := tlsRecords(t, path)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i]["event"] == event && ok(rs[i]) {
			return rs[i]
		}
	}
	return nil
}

// mismatchPair overwrites the key file with another key, so the pair on disk
// no longer matches: a bad renewal.
func mismatchPair(t *testing.T, certPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	installPair(t, filepath.Join(dir, "c"), filepath.Join(dir, "k"))
	b, err := os.ReadFile(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keyPath+".tmp", keyPath); err != nil {
		t.Fatal(err)
	}
}

// TestServeTLS_CertificateReloadsAreAudited: a new certificate pair, read on
// SIGHUP or when the files change, writes tls.reload with the old and new
// serials and expiry; a bad pair writes tls.reload_rejected naming the
// certificate that keeps serving, and that certificate does keep serving.
func TestServeTLS_CertificateReloadsAreAudited(t *testing.T) {
	for _, trigger := range []string{"signal", "file"} {
		t.Run(trigger, func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			auditPath := filepath.Join(dir, "audit.log")
			first := installPair(t, certPath, keyPath)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			key, err := audit.LoadOrCreateKey(auditPath + ".key")
			if err != nil {
				t.Fatal(err)
			}
			log, err := audit.Open(ctx, audit.Options{Path: auditPath, SigningKey: key, StrictSchema: true})
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			cfg := &config.Config{TLS: config.TLS{CertFile: certPath, KeyFile: keyPath}}
			lt, err := app.NewListenerTLS(ctx, cfg, zap.NewNop(), app.TLSOptions{NoWatch: trigger == "signal", Audit: log})
			if err != nil {
				t.Fatal(err)
			}
			if trigger == "signal" {
				defer onHangup(ctx, func(context.Context) { lt.Reload("signal") })()
			}
			reload := func() {
				if trigger == "signal" {
					if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
			}
			addr := serveTLS(t, lt.Config)

			// A file watch may start after the first write, so the pair is
			// installed again until a reload is recorded.
			var next string
			var rec map[string]string
			for deadline := time.Now().Add(30 * time.Second); rec == nil; {
				if time.Now().After(deadline) {
					t.Fatalf("no tls.reload record: %v", tlsRecords(t, auditPath))
				}
				next = installPair(t, certPath, keyPath)
				reload()
				for wait := time.Now().Add(3 * time.Second); rec == nil && time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
					rec = lastTLSRecord(t, auditPath, audit.EventTLSReload, func(m map[string]string) bool { return m["serial"] == next })
				}
			}
			if rec["trigger"] != trigger || rec["previous_serial"] == "" || rec["not_after"] == "" || rec["previous_not_after"] == "" {
				t.Fatalf("reload record %v, want the old serial and both expiries, by %s", rec, trigger)
			}
			if trigger == "signal" && rec["previous_serial"] != first {
				t.Fatalf("reload record %v, want %s → %s", rec, first, next)
			}
			if got := presentedSerial(t, addr); got != next {
				t.Fatalf("serving %s after the reload, want %s", got, next)
			}

			// A renewal gone wrong: the key no longer matches the certificate.
			mismatchPair(t, certPath, keyPath)
			reload()
			var rej map[string]string
			for deadline := time.Now().Add(20 * time.Second); rej == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				rej = lastTLSRecord(t, auditPath, audit.EventTLSReloadRejected, func(m map[string]string) bool { return strings.Contains(m["error"], "match") && m["serial"] == next })
			}
			if rej == nil || rej["trigger"] != trigger || rej["serial"] != next || rej["not_after"] != rec["not_after"] {
				t.Fatalf("rejection record %v, want %s named as kept serving, by %s", rej, next, trigger)
			}
			if got := presentedSerial(t, addr); got != next {
				t.Fatalf("serving %s after a bad pair, want the old %s", got, next)
			}
		})
	}
}
