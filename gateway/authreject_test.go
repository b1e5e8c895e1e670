package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
)

// authRejectEnv is a gateway writing to a real audit log file.
type authRejectEnv struct {
	g    *gwtest.Gateway
	path string
	log  *audit.Log
}

func newAuthRejectEnv(t *testing.T) *authRejectEnv {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	key, err := audit.GenerateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), audit.Options{Path: path, SigningKey: key, Sync: audit.SyncAsync, StrictSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	up := gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
	g := gwtest.Start(t, gwtest.Options{Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}}, Admitter: roleAdmitter{}, Audit: l})
	return &authRejectEnv{g: g, path: path, log: l}
}

// records returns the auth.rejected records written so far, after the
// gateway wrote what it aggregates.
func (e *authRejectEnv) records(t *testing.T) []*audit.Entry {
	t.Helper()
	e.g.Gateway.Close(context.Background())
	if err := e.log.Sync(); err != nil {
		t.Fatal(err)
	}
	var out []*audit.Entry
	if _, err := audit.ReadEntries(context.Background(), []string{e.path}, func(en *audit.Entry) error {
		if en.Event == audit.EventAuthRejected {
			out = append(out, en)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *authRejectEnv) lines(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// forgeries are bearer tokens an attacker can make, each with the reason
// the gateway must give.
func forgeries(t *testing.T, idp *testidp.IdP) map[string]string {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer := func(kid string) jose.Signer {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: other}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := idp.Claims(idp.ClientID)
	kid := jwtKID(t, idp.Sign(t, valid, ""))
	expired := idp.Claims(idp.ClientID)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	wrongAud := idp.Claims("someone-else")
	return map[string]string{
		"bad_signature":  testidp.SignWith(t, signer(kid), valid),
		"unknown_key":    testidp.SignWith(t, signer("made-up-kid"), valid),
		"expired":        idp.Sign(t, expired, ""),
		"wrong_audience": idp.Sign(t, wrongAud, ""),
		"malformed":      "eyJhbGciOiJSUzI1NiJ9.not-base64!.x",
	}
}

func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func presentBearer(t testing.TB, c *http.Client, url, tok string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthRejected_ForgedAndExpiredTokensAreAudited: twenty refused bearer
// tokens (four of each kind) used to leave no audit record at all. Now each
// kind is one auth.rejected record with its reason, the source and the
// issuer/kid the token claims, and the count.
func TestAuthRejected_ForgedAndExpiredTokensAreAudited(t *testing.T) {
	e := newAuthRejectEnv(t)
	toks := forgeries(t, e.g.IdP)
	for range 4 {
		for reason, tok := range toks {
			if got := presentBearer(t, http.DefaultClient, e.g.URL+"/app", tok); got != http.StatusUnauthorized {
				t.Fatalf("%s token: status %d, want 401", reason, got)
			}
		}
	}
	recs := e.records(t)
	byReason := map[string]*audit.Entry{}
	for _, r := range recs {
		byReason[r.Str(audit.FieldReason)] = r
	}
	for reason := range toks {
		r := byReason[reason]
		if r == nil {
			t.Errorf("no auth.rejected record with reason %s (have %d records)", reason, len(recs))
			continue
		}
		if r.Str(audit.FieldCount) != "4" || r.Str(audit.FieldClientIP) != "127.0.0.1" {
			t.Errorf("%s: %s", reason, r.Raw)
		}
		if reason != "malformed" && r.Str(audit.FieldIssuer) != e.g.IdP.URL {
			t.Errorf("%s: issuer %q, want the claimed %q", reason, r.Str(audit.FieldIssuer), e.g.IdP.URL)
		}
	}
	if r := byReason["unknown_key"]; r != nil && r.Str(audit.FieldKID) != "made-up-kid" {
		t.Errorf("unknown_key record kid %q", r.Str(audit.FieldKID))
	}
	if len(recs) != len(toks) {
		t.Errorf("%d auth.rejected records, want one per kind (%d)", len(recs), len(toks))
	}
}

// TestAuthRejected_FloodWritesBoundedRecords: 100,000 forged tokens in one
// minute (the five kinds, and then thousands of made-up kids) grow the log
// by a bounded number of records: one per kind, at most 1,000 distinct
// keys plus one overflow record, and the checkpoints among them.
func TestAuthRejected_FloodWritesBoundedRecords(t *testing.T) {
	n := 100_000
	switch {
	case testing.Short():
		n = 5_000
	case raceEnabled:
		// Under the race detector 100,000 requests take most of ten minutes on
		// two cores; 20,000 still far outnumber the distinct keys and the
		// per-minute cap, which is what the bound is about.
		n = 20_000
	}
	e := newAuthRejectEnv(t)
	toks := forgeries(t, e.g.IdP)
	list := make([]string, 0, len(toks))
	for _, tok := range toks {
		list = append(list, tok)
	}
	// Tokens with made-up kids: a distinct key each.
	const distinct = 3000
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, 256))
	body := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://evil.example","sub":"x","aud":"y","exp":9999999999}`))
	for i := range distinct {
		hdr := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"RS256","kid":"kid-%d"}`, i))
		list = append(list, hdr+"."+body+"."+sig)
	}
	before, start := e.lines(t), time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			for i := range work {
				tok := list[i%len(toks)]
				if i < distinct {
					tok = list[len(toks)+i]
				}
				if got := presentBearer(t, c, e.g.URL+"/app", tok); got != http.StatusUnauthorized {
					t.Errorf("token %d: status %d", i, got)
					return
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	recs := e.records(t)
	var counted int64
	for _, r := range recs {
		var c int64
		fmt.Sscan(r.Str(audit.FieldCount), &c)
		counted += c
	}
	if counted != int64(n) {
		t.Errorf("the records count %d rejections, want %d", counted, n)
	}
	// At most one record per kind and per distinct key (1,000 kept, one
	// overflow) in each minute the flood lasted.
	windows := int(time.Since(start)/time.Minute) + 1
	bound := windows * (len(toks) + 1000 + 1)
	if len(recs) > bound {
		t.Errorf("%d auth.rejected records for %d tokens over %d minute(s), want at most %d", len(recs), n, windows, bound)
	}
	grown := e.lines(t) - before
	// Besides them, only checkpoints: one per 1000 records, one per
	// 10 s interval with records pending.
	if checkpoints, max := grown-len(recs), len(recs)/audit.DefaultCheckpointEvery+int(time.Since(start)/audit.DefaultCheckpointInterval)+3; checkpoints > max {
		t.Errorf("the log grew by %d lines for %d forged tokens (%d records), want at most %d more", grown, n, len(recs), max)
	}
	t.Logf("%d forged tokens: %d auth.rejected records, log grew by %d lines", n, len(recs), grown)
}
