package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/meetguard/meetguard/gateway/syncbuf"
)

// pebbleEnv names the pebble binary the ACME tests run (.ci/run installs
// it; see docs/operations.md).
const pebbleEnv = "MEETGUARD_PEBBLE"

// pebble is a real ACME CA (Let's Encrypt's test server) on 127.0.0.1. Its
// validation authority resolves every name through a tiny DNS server in
// the test to 127.0.0.1 and really connects to the challenge ports, so
// HTTP-01 and TLS-ALPN-01 are exercised end to end.
type pebble struct {
	DirectoryURL string
	Client       *http.Client // trusts pebble's own API certificate
	Roots        *x509.CertPool
	mgmt         string
}

type pebbleOptions struct {
	HTTPPort, TLSPort int // where the CA validates challenges
	ValiditySeconds   int
}

func startPebble(t *testing.T, opts pebbleOptions) *pebble {
	t.Helper()
	bin := os.Getenv(pebbleEnv)
	if bin == "" {
		t.Skipf("%s is not set: install pebble with .ci/run (go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3) and export its path to run the ACME tests", pebbleEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s=%s: %v", pebbleEnv, bin, err)
	}
	dir := t.TempDir()
	apiCert, apiKey, apiPool := selfSigned(t, "127.0.0.1")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, apiCert)
	writeFile(t, keyPath, apiKey)
	dns := startDNS(t)
	listen, mgmt := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    certPath,
		"privateKey":                     keyPath,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": opts.ValiditySeconds,
		}},
	}}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble.json")
	writeFile(t, cfgPath, b)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", cfgPath, "-dnsserver", dns, "-strict")
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pebble: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiPool}}}
	p := &pebble{DirectoryURL: fmt.Sprintf("https://127.0.0.1:%d/dir", listen), Client: client, mgmt: fmt.Sprintf("https://127.0.0.1:%d", mgmt)}
	// Ready when both the ACME API and the management API (which pebble
	// starts separately) answer.
	up := func(u string) error {
		resp, err := client.Get(u)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", u, resp.Status)
		}
		return nil
	}
	for i := 0; ; i++ {
		err := up(p.DirectoryURL)
		if err == nil {
			if err = up(p.mgmt + "/roots/0"); err == nil {
				break
			}
		}
		if i == 100 {
			t.Fatalf("pebble did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(p.get(t, "/roots/0")) {
		t.Fatal("pebble root is not PEM")
	}
	return p
}

func (p *pebble) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := p.Client.Get(p.mgmt + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble %s: %d %v", path, resp.StatusCode, err)
	}
	return b
}

// startDNS answers every A query with 127.0.0.1 and everything else with
// no records, over TCP (pebble's validation authority queries a custom
// resolver over TCP): the names in these tests live on this machine.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go answerDNS(c)
		}
	}()
	return ln.Addr().String()
}

func answerDNS(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		var q dnsmessage.Message
		if q.Unpack(buf) != nil || len(q.Questions) == 0 {
			return
		}
		r := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true}, Questions: q.Questions}
		if qq := q.Questions[0]; qq.Type == dnsmessage.TypeA {
			r.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: qq.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
				Body:   &dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}},
			}}
		}
		b, err := r.Pack()
		if err != nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
		if _, err := c.Write(append(out, b...)); err != nil {
			return
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned returns a PEM certificate and key for the names, valid now
// for a day, and a pool that trusts it.
func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	return makeCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
}

func makeCert(t *testing.T, notBefore, notAfter time.Time, names ...string) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), pool
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
