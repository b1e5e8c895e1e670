package upstream_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/identity"
)

// fencedBlock returns the one ```lang block of docs/upstreams.md that
// contains marker.
func fencedBlock(t *testing.T, lang, marker string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "upstreams.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(doc), "```"+lang+"\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("no %s block containing %q in docs/upstreams.md", lang, marker)
	return ""
}

// TestDocs_NodeVerifierAcceptsRealAssertionsOnly runs the Node example of
// docs/upstreams.md against assertions from the gateway's real signer.
func TestDocs_NodeVerifierAcceptsRealAssertionsOnly(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the test of the documented Node verifier")
	}
	var signer *assertion.Signer
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != assertion.JWKSPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(signer.JWKS())
	}))
	defer gw.Close()
	signer, err = assertion.New(assertion.Options{Issuer: gw.URL, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	other, err := assertion.New(assertion.Options{Issuer: gw.URL, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "verify.mjs")
	if err := os.WriteFile(script, []byte(fencedBlock(t, "js", "x-meetguard-assertion")), 0o600); err != nil {
		t.Fatal(err)
	}
	id := identity.Identity{Issuer: "https://idp", Subject: "ada", Name: "Ada", SessionID: "s"}
	good, _ := signer.For(id, "app", "standup", "host")
	otherAud, _ := signer.For(id, "billing", "standup", "host")
	forged, _ := other.For(id, "app", "standup", "host")
	parts := strings.Split(good, ".")
	cases := []struct {
		name, token string
		ok          bool
	}{
		{"real assertion", good, true},
		{"other audience", otherAud, false},
		{"key not in the gateway's set", forged, false},
		{"payload swapped", parts[0] + "." + strings.Split(otherAud, ".")[1] + "." + parts[2], false},
		{"alg none", "eyJhbGciOiJub25lIn0." + parts[1] + ".", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, script, tc.token)
			cmd.Env = append(os.Environ(), "GATEWAY="+gw.URL, "UPSTREAM=app")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if (err == nil) != tc.ok {
				t.Fatalf("node: %v: %s", err, out.String())
			}
			if tc.ok && !strings.Contains(out.String(), `"room":"standup"`) {
				t.Fatalf("claims: %s", out.String())
			}
		})
	}
}
