package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for name and its key.
func writePair(t *testing.T, dir, name string, notAfter time.Time) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for p, b := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath
}

func parseTLS(t *testing.T, dir, tlsBlock string) error {
	t.Helper()
	secret := filepath.Join(dir, "session.key")
	if err := os.WriteFile(secret, []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(goodConfig, "SECRET_FILE", secret, 1) + tlsBlock
	_, err := Parse([]byte(src), env(map[string]string{"CLIENT_SECRET": "x"}))
	return err
}

func TestValidateTLS_NamesTheField(t *testing.T) {
	dir := t.TempDir()
	good, goodKey := writePair(t, dir, "meet.example.org", time.Now().Add(24*time.Hour))
	expired, expiredKey := writePair(t, dir, "old.meet.example.org", time.Now().Add(-time.Hour))
	wrongName, wrongNameKey := writePair(t, dir, "other.example.org", time.Now().Add(24*time.Hour))
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, block, want string
	}{
		{"valid files", "tls:\n  cert_file: " + good + "\n  key_file: " + goodKey + "\n", ""},
		{"expired certificate", "tls:\n  cert_file: " + expired + "\n  key_file: " + expiredKey + "\n", "tls.cert_file: " + expired + ": certificate has expired"},
		{"key of another certificate", "tls:\n  cert_file: " + good + "\n  key_file: " + expiredKey + "\n", "tls.key_file: " + expiredKey + ": private key does not match"},
		{"certificate for another host", "tls:\n  cert_file: " + wrongName + "\n  key_file: " + wrongNameKey + "\n", "tls.cert_file: certificate is for [other.example.org], not public_url's host meet.example.org"},
		{"missing certificate", "tls:\n  cert_file: " + dir + "/nope.crt\n  key_file: " + goodKey + "\n", "tls.cert_file: cannot read " + dir + "/nope.crt"},
		{"acme valid", "tls:\n  acme:\n    enabled: true\n    email: ops@example.org\n    cache_dir: " + dir + "/acme\n", ""},
		{"acme with files", "tls:\n  cert_file: " + good + "\n  key_file: " + goodKey + "\n  acme:\n    enabled: true\n    cache_dir: " + dir + "\n", "tls.acme.enabled: cannot be combined with tls.cert_file"},
		{"acme plain directory", "tls:\n  acme:\n    enabled: true\n    directory_url: http://ca.example.org/dir\n    cache_dir: " + dir + "\n", "tls.acme.directory_url: must be https"},
		{"acme relative directory", "tls:\n  acme:\n    enabled: true\n    directory_url: /dir\n    cache_dir: " + dir + "\n", "tls.acme.directory_url: must be an absolute URL"},
		{"acme no cache", "tls:\n  acme:\n    enabled: true\n", "tls.acme.cache_dir: is required"},
		{"acme cache in redis", "store:\n  kind: redis\n  redis:\n    addr: 127.0.0.1:6379\nrooms:\n  ticket_key: " + strings.Repeat("t", 40) + "\ntls:\n  acme:\n    enabled: true\n", ""},
		{"acme unwritable cache", "tls:\n  acme:\n    enabled: true\n    cache_dir: " + notDir + "/acme\n", "tls.acme.cache_dir: " + notDir + "/acme cannot be used"},
		{"acme bad email", "tls:\n  acme:\n    enabled: true\n    email: ops\n    cache_dir: " + dir + "\n", "tls.acme.email: must be one email address"},
		{"acme wildcard", "tls:\n  acme:\n    enabled: true\n    domains: ['*.example.org']\n    cache_dir: " + dir + "\n", "tls.acme.domains: \"*.example.org\" is not a fully qualified host name"},
		{"acme short renewal", "tls:\n  acme:\n    enabled: true\n    renew_before: 1m\n    cache_dir: " + dir + "\n", "tls.acme.renew_before: must be at least 1h"},
		{"acme ca file not PEM", "tls:\n  acme:\n    enabled: true\n    ca_file: " + notDir + "\n    cache_dir: " + dir + "\n", "tls.acme.ca_file: " + notDir + ": no PEM certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseTLS(t, dir, tt.block)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
