package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pairFiles is a PEM certificate for 127.0.0.1 and its key.
type pairFiles struct{ cert, key []byte }

func newPair(t *testing.T, notBefore, notAfter time.Time) pairFiles {
	c, k, _ := makeCert(t, notBefore, notAfter, "127.0.0.1")
	return pairFiles{c, k}
}

func validPair(t *testing.T) pairFiles {
	return newPair(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// install puts the pair in place the way cert-manager and editors do: a
// new file renamed over the old one.
func install(t *testing.T, certPath, keyPath string, p pairFiles) {
	t.Helper()
	for path, b := range map[string][]byte{certPath: p.cert, keyPath: p.key} {
		tmp := path + ".tmp"
		writeFile(t, tmp, b)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

func serialOf(t *testing.T, p pairFiles) string {
	t.Helper()
	c, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Text(16)
}

// servingSerial does a real handshake and returns the serial the server
// presented.
func servingSerial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		// The test reads what is served; which certificate is trusted is
		// not what it checks.
		InsecureSkipVerify: true, //nolint:gosec
	})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

func startFiles(t *testing.T) (f *Files, addr, certPath, keyPath string, first pairFiles) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first = validPair(t)
	install(t, certPath, keyPath, first)
	f, err := NewFiles(FileOptions{CertFile: certPath, KeyFile: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTLS(t, ln, f.GetCertificate, false)
	return f, ln.Addr().String(), certPath, keyPath, first
}

func TestFiles_ReloadSwapsServingCertificate(t *testing.T) {
	f, addr, certPath, keyPath, first := startFiles(t)
	if got := servingSerial(t, addr); got != serialOf(t, first) {
		t.Fatalf("serving %s, want %s", got, serialOf(t, first))
	}
	next := validPair(t)
	install(t, certPath, keyPath, next)
	r := f.Reload("signal")
	if r.Err != nil || !r.Changed() {
		t.Fatalf("reload: %+v", r)
	}
	if got := servingSerial(t, addr); got != serialOf(t, next) {
		t.Fatalf("after reload serving %s, want %s", got, serialOf(t, next))
	}
}

func TestFiles_WatchReloadsOnFileChange(t *testing.T) {
	f, addr, certPath, keyPath, _ := startFiles(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Watch(ctx) }()
	time.Sleep(100 * time.Millisecond) // let the watcher register
	next := validPair(t)
	install(t, certPath, keyPath, next)
	want := serialOf(t, next)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if servingSerial(t, addr) == want {
			return
		}
	}
	t.Fatal("the new certificate never served after the files changed")
}

func TestFiles_BadReloadKeepsOldCertificate(t *testing.T) {
	other := validPair(t)
	tests := []struct {
		name    string
		pair    func(t *testing.T) pairFiles
		file    string
		wantErr error
	}{
		{"expired", func(t *testing.T) pairFiles {
			return newPair(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
		}, "cert_file", ErrExpired},
		{"not yet valid", func(t *testing.T) pairFiles {
			return newPair(t, time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
		}, "cert_file", ErrNotYetValid},
		{"key of another certificate", func(t *testing.T) pairFiles { p := validPair(t); p.key = other.key; return p }, "key_file", ErrKeyMismatch},
		{"garbage certificate", func(t *testing.T) pairFiles { p := validPair(t); p.cert = []byte("not a certificate"); return p }, "cert_file", nil},
		{"half-written key", func(t *testing.T) pairFiles { p := validPair(t); p.key = p.key[:40]; return p }, "key_file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr, certPath, keyPath, first := startFiles(t)
			install(t, certPath, keyPath, tt.pair(t))
			r := f.Reload("signal")
			var pe *PairError
			if !errors.As(r.Err, &pe) || pe.File != tt.file {
				t.Fatalf("reload err = %v, want a %s error", r.Err, tt.file)
			}
			if tt.wantErr != nil && !errors.Is(r.Err, tt.wantErr) {
				t.Fatalf("reload err = %v, want %v", r.Err, tt.wantErr)
			}
			if got := servingSerial(t, addr); got != serialOf(t, first) {
				t.Fatalf("after a rejected reload serving %s, want the old %s", got, serialOf(t, first))
			}
		})
	}
}

func TestServerConfig_Defaults(t *testing.T) {
	_, addr, _, _, _ := startFiles(t)
	// TLS 1.1 and older are refused.
	if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec
		c.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
	// A client offering only the hybrid post-quantum group gets it, and
	// HTTP/2 is negotiated.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec
	if err != nil {
		t.Fatalf("X25519MLKEM768 handshake: %v", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.CurveID != tls.X25519MLKEM768 || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated curve %v version %x alpn %q", st.CurveID, st.Version, st.NegotiatedProtocol)
	}
}
