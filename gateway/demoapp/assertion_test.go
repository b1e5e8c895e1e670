package demoapp

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer   = "http://127.0.0.1:8080"
	testAudience = "demo"
)

// fakeGateway signs assertions the way the gateway does and serves its JWKS.
type fakeGateway struct {
	priv    ed25519.PrivateKey
	kid     string
	jwks    *httptest.Server
	fetches atomic.Int32
}

func newFakeGateway(t testing.TB) *fakeGateway {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{priv: priv, kid: "gw-1"}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: g.kid, Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	g.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(g.jwks.Close)
	return g
}

type gatewayClaims struct {
	jwt.Claims
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Room   string   `json:"room,omitempty"`
	Role   string   `json:"role,omitempty"`
}

func (g *fakeGateway) claims(now time.Time) gatewayClaims {
	return gatewayClaims{
		Claims: jwt.Claims{
			Issuer: testIssuer, Audience: jwt.Audience{testAudience}, Subject: "alice",
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(60 * time.Second)), ID: "j1",
		},
		Email: "alice@example.com", Name: "Alice Host", Groups: []string{"meeting-hosts"}, Room: "standup", Role: "host",
	}
}

func (g *fakeGateway) sign(t testing.TB, key ed25519.PrivateKey, kid string, c gatewayClaims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// handMade builds a compact JWS with any header, for algorithms go-jose
// refuses to produce.
func handMade(t *testing.T, header map[string]any, c gatewayClaims, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func TestAssertion_HostileTokensRefused(t *testing.T) {
	g := newFakeGateway(t)
	clock := &fixedClock{t: time.Now()}
	srv := newTestApp(t, Options{
		AssertionJWKSURL: g.jwks.URL, AssertionIssuer: testIssuer, AssertionAudience: testAudience, Clock: clock.Now,
	})
	now := clock.Now()
	good := g.claims(now)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: g.priv.Public(), KeyID: g.kid})
	edit := func(f func(*gatewayClaims)) gatewayClaims { c := g.claims(now); f(&c); return c }
	valid := g.sign(t, g.priv, g.kid, good)

	tests := []struct {
		name       string
		assertion  string
		header     http.Header
		wantStatus int
	}{
		{"valid", valid, nil, 200},
		{"missing", "", nil, 401},
		{"expired", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Minute))
			c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute))
		})), nil, 401},
		{"not yet valid", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })), nil, 401},
		{"issued in the future", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour))
			c.Expiry = jwt.NewNumericDate(now.Add(time.Hour + time.Minute))
		})), nil, 401},
		{"long-lived", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), nil, 401},
		{"no exp", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Expiry = nil })), nil, 401},
		{"no sub", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Subject = "" })), nil, 401},
		{"wrong audience", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Audience = jwt.Audience{"other-upstream"} })), nil, 401},
		{"wrong issuer", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Issuer = "http://evil.test" })), nil, 401},
		{"other room", g.sign(t, g.priv, g.kid, edit(func(c *gatewayClaims) { c.Room = "board" })), nil, 403},
		{"email header disagrees", valid, http.Header{HeaderEmail: {"mallory@example.com"}}, 403},
		{"role header disagrees", valid, http.Header{HeaderRole: {"viewer"}}, 403},
		{"room header disagrees", valid, http.Header{HeaderRoom: {"board"}}, 403},
		{"other key, same kid", g.sign(t, otherKey, g.kid, good), nil, 401},
		{"unknown kid", g.sign(t, otherKey, "gw-2", good), nil, 401},
		{"no kid", g.sign(t, g.priv, "", good), nil, 401},
		{"tampered payload", tamper(valid), nil, 401},
		{"alg none", handMade(t, map[string]any{"alg": "none", "kid": g.kid}, good, func([]byte) []byte { return nil }), nil, 401},
		{"HS256 keyed with the public key", handMade(t, map[string]any{"alg": "HS256", "kid": g.kid}, good, func(in []byte) []byte {
			m := hmac.New(sha256.New, pubJWK)
			m.Write(in)
			return m.Sum(nil)
		}), nil, 401},
		{"garbage", "not.a.jwt", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := gatewayHeaders("alice", "", "", "")
			for k, v := range tt.header {
				h[k] = v
			}
			if tt.assertion != "" {
				h.Set(HeaderAssertion, tt.assertion)
			}
			resp, body := get(t, srv.URL+"/room/standup", h)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus == 200 && (!strings.Contains(body, "assertion verified") || !strings.Contains(body, "Alice Host")) {
				t.Fatalf("valid assertion not shown as verified: %s", body)
			}
		})
	}
}

// tamper changes the payload's room without re-signing.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), `"host"`, `"hose"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestAssertion_UnknownKidRefetchIsRateLimited(t *testing.T) {
	g := newFakeGateway(t)
	clock := &fixedClock{t: time.Now()}
	v := &jwksVerifier{url: g.jwks.URL, issuer: testIssuer, audience: testAudience, client: g.jwks.Client(), now: clock.Now}
	ctx := context.Background()
	if _, err := v.verify(ctx, g.sign(t, g.priv, g.kid, g.claims(clock.Now()))); err != nil {
		t.Fatalf("valid assertion: %v", err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for i := range 20 {
		_, err := v.verify(ctx, g.sign(t, otherKey, "bogus-"+string(rune('a'+i)), g.claims(clock.Now())))
		if !errors.Is(err, ErrAssertionInvalid) {
			t.Fatalf("bogus kid: err = %v, want ErrAssertionInvalid", err)
		}
	}
	if n := g.fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times within the cooldown, want 1", n)
	}
	clock.t = clock.t.Add(refetchCooldown + time.Second)
	_, _ = v.verify(ctx, g.sign(t, otherKey, "bogus-late", g.claims(clock.Now())))
	if n := g.fetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after the cooldown, want 2", n)
	}
}

func TestAssertion_KeysUnavailableIs503(t *testing.T) {
	g := newFakeGateway(t)
	url := g.jwks.URL
	g.jwks.Close()
	srv := newTestApp(t, Options{AssertionJWKSURL: url, AssertionIssuer: testIssuer, AssertionAudience: testAudience})
	h := gatewayHeaders("alice", "", "", "")
	h.Set(HeaderAssertion, g.sign(t, g.priv, g.kid, g.claims(time.Now())))
	resp, body := get(t, srv.URL+"/room/standup", h)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
	}
}

func TestAssertion_VerifiedMemberOnWebSocket(t *testing.T) {
	g := newFakeGateway(t)
	srv := newTestApp(t, Options{AssertionJWKSURL: g.jwks.URL, AssertionIssuer: testIssuer, AssertionAudience: testAudience})
	h := gatewayHeaders("alice", "alice@example.com", "host", "standup")
	h.Set(HeaderAssertion, g.sign(t, g.priv, g.kid, g.claims(time.Now())))
	c := dial(t, srv.URL, "standup", h)
	if ev := next(t, c); ev.You == nil || !ev.You.Verified || ev.You.Name != "Alice Host" || ev.You.Role != "host" {
		t.Fatalf("welcome = %+v, want verified Alice Host", ev)
	}
	bad := h.Clone()
	bad.Set(HeaderAssertion, tamper(bad.Get(HeaderAssertion)))
	if c, err := tryDial(srv.URL, "standup", bad); err == nil {
		_ = c.CloseNow()
		t.Fatal("WebSocket accepted a tampered assertion")
	}
}
