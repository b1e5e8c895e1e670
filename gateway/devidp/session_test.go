package devidp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"golang.org/x/oauth2"
)

// signIn runs the whole code flow for alice and returns the token.
func (h *harness) signIn(t *testing.T) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	tok, err := h.cfg.Exchange(context.Background(), h.authCode(t, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func TestDiscovery_AdvertisesWhatTheGatewayNeeds(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		EndSession string   `json:"end_session_endpoint"`
		PKCE       []string `json:"code_challenge_methods_supported"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
		DevToken   string   `json:"dev_token_endpoint"`
	}
	if err := h.oidc.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.EndSession != h.issuer+"/logout" || doc.DevToken != h.issuer+"/dev/token" ||
		strings.Join(doc.PKCE, ",") != "S256" || strings.Join(doc.Algs, ",") != "ES256" {
		t.Fatalf("discovery = %+v", doc)
	}
}

func TestServeHTTP_OnlyUnderIssuerPath(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/authorize", "/.dev-idpx/jwks", "/jwks"} {
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestUserinfo_RefusesIDTokensAndForgeries(t *testing.T) {
	h := newHarness(t)
	tok := h.signIn(t)
	rawID, _ := tok.Extra("id_token").(string)
	foreign := foreignToken(t, h.issuer)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"access token", "Bearer " + tok.AccessToken, 200},
		{"ID token", "Bearer " + rawID, 401},
		{"foreign key", "Bearer " + foreign, 401},
		{"tampered", "Bearer " + tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA", 401},
		{"none", "", 401},
		{"basic", "Basic Z2F0ZXdheTp4", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.issuer+"/userinfo", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
	h.clock.Advance(DefaultTokenTTL + time.Second)
	req, _ := http.NewRequest(http.MethodGet, h.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired access token: status %d, want 401", resp.StatusCode)
	}
}

// foreignToken is an ID-token-shaped JWT for alice signed by a key the
// provider never had.
func foreignToken(t *testing.T, issuer string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(jwt.Claims{
		Issuer: issuer, Subject: "alice", Audience: jwt.Audience{"gateway"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(time.Now()),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestLogout_PostLogoutRedirectValidated(t *testing.T) {
	h := newHarness(t)
	rawID, _ := h.signIn(t).Extra("id_token").(string)
	tests := []struct {
		name     string
		q        url.Values
		wantCode int
		wantLoc  string
	}{
		{"registered, by client_id", url.Values{"client_id": {"gateway"}, "post_logout_redirect_uri": {testBye}, "state": {"s1"}}, 303, testBye + "?state=s1"},
		{"registered, by hint", url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {testBye}}, 303, testBye},
		{"no redirect", url.Values{}, 200, ""},
		{"unregistered", url.Values{"client_id": {"gateway"}, "post_logout_redirect_uri": {"http://evil.test/"}}, 400, ""},
		{"a login redirect_uri is not a logout one", url.Values{"client_id": {"gateway"}, "post_logout_redirect_uri": {testCallback}}, 400, ""},
		{"registered for another client", url.Values{"client_id": {"cli"}, "post_logout_redirect_uri": {testBye}}, 400, ""},
		{"no client named", url.Values{"post_logout_redirect_uri": {testBye}}, 400, ""},
		{"hint for another client", url.Values{"id_token_hint": {rawID}, "client_id": {"cli"}}, 400, ""},
		{"forged hint", url.Values{"id_token_hint": {foreignToken(t, h.issuer)}, "post_logout_redirect_uri": {testBye}}, 400, ""},
		{"repeated redirect", url.Values{"client_id": {"gateway"}, "post_logout_redirect_uri": {testBye, "http://evil.test/"}}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := browsertest.NoFollow(browsertest.Client(t)).Get(h.issuer + "/logout?" + tt.q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != tt.wantCode || resp.Header.Get("Location") != tt.wantLoc {
				t.Fatalf("status %d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tt.wantCode, tt.wantLoc)
			}
		})
	}
}

func TestLogout_WithHintRevokesRefreshTokens(t *testing.T) {
	h := newHarness(t)
	tok := h.signIn(t)
	rawID, _ := tok.Extra("id_token").(string)
	resp, err := browsertest.NoFollow(browsertest.Client(t)).Get(h.issuer + "/logout?" + url.Values{"id_token_hint": {rawID}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	_, err = h.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("refresh after logout: err = %v, want invalid_grant", err)
	}
}

func TestDevToken_VerifiesAsBearerJWT(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	status, _, body := h.postForm(t, "/dev/token", url.Values{
		"user": {"alice@example.com"}, "audience": {"meetguard-api"},
	}, "", "")
	if status != http.StatusOK {
		t.Fatalf("status %d body %v", status, body)
	}
	access, _ := body["access_token"].(string)
	if body["token_type"] != "Bearer" || body["refresh_token"] != nil {
		t.Fatalf("response = %v", body)
	}
	at, err := h.oidc.Verifier(&oidc.Config{ClientID: "meetguard-api", Now: h.clock.Now}).Verify(ctx, access)
	if err != nil {
		t.Fatalf("dev access token does not verify as a bearer JWT: %v", err)
	}
	var c tokenClaims
	if err := at.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if at.Subject != "alice" || c.Email != "alice@example.com" || len(c.Groups) == 0 || len(c.AMR) != 2 {
		t.Fatalf("claims sub=%q %+v", at.Subject, c)
	}
	rawID, _ := body["id_token"].(string)
	if _, err := h.oidc.Verifier(&oidc.Config{ClientID: "gateway", Now: h.clock.Now}).Verify(ctx, rawID); err != nil {
		t.Fatalf("dev ID token: %v", err)
	}
}

func TestDevToken_Refusals(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"unknown user", url.Values{"user": {"mallory@example.com"}}, nil, 400},
		{"no user", url.Values{}, nil, 400},
		{"repeated user", url.Values{"user": {"eve", "alice"}}, nil, 400},
		{"unknown client", url.Values{"user": {"eve"}, "client_id": {"nope"}}, nil, 400},
		{"bad audience", url.Values{"user": {"eve"}, "audience": {"a\x7f"}}, nil, 400},
		{"cross-site browser", url.Values{"user": {"alice"}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"by subject", url.Values{"user": {"eve"}}, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+"/dev/token", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want != 200 && strings.Contains(body, "access_token") {
				t.Fatal("refused request got a token")
			}
		})
	}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	client := Client{ID: "gw", RedirectURIs: []string{"http://127.0.0.1/cb"}}
	tests := []struct {
		name      string
		opts      Options
		wantField string
	}{
		{"no issuer", Options{Clients: []Client{client}}, "Options.Issuer"},
		{"relative issuer", Options{Issuer: "/.dev-idp", Clients: []Client{client}}, "Options.Issuer"},
		{"issuer with query", Options{Issuer: "http://127.0.0.1/?x=1", Clients: []Client{client}}, "Options.Issuer"},
		{"issuer path with pattern chars", Options{Issuer: "http://127.0.0.1/{x}", Clients: []Client{client}}, "Options.Issuer"},
		{"issuer dot segment", Options{Issuer: "http://127.0.0.1/a/../b", Clients: []Client{client}}, "Options.Issuer"},
		{"no clients", Options{Issuer: "http://127.0.0.1"}, "Options.Clients"},
		{"client without redirect", Options{Issuer: "http://127.0.0.1", Clients: []Client{{ID: "gw"}}}, "Options.Clients[0]"},
		{"relative redirect", Options{Issuer: "http://127.0.0.1", Clients: []Client{{ID: "gw", RedirectURIs: []string{"/cb"}}}}, "RedirectURIs[0]"},
		{"redirect with fragment", Options{Issuer: "http://127.0.0.1", Clients: []Client{{ID: "gw", RedirectURIs: []string{"http://x/cb#f"}}}}, "RedirectURIs[0]"},
		{"duplicate client", Options{Issuer: "http://127.0.0.1", Clients: []Client{client, client}}, "Options.Clients[1].ID"},
		{"user without email", Options{Issuer: "http://127.0.0.1", Clients: []Client{client}, Users: []User{{Subject: "x"}}}, "Options.Users[0].Email"},
		{"duplicate email", Options{Issuer: "http://127.0.0.1", Clients: []Client{client},
			Users: []User{{Subject: "a", Email: "a@x"}, {Subject: "b", Email: "A@x"}}}, "Options.Users[1].Email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("New err = %v, want one naming %s", err, tt.wantField)
			}
		})
	}
}

func TestNew_ServesAtRootWithoutPrefix(t *testing.T) {
	p, err := New(Options{Issuer: "http://127.0.0.1:1", Clients: []Client{{ID: "gw", RedirectURIs: []string{"http://127.0.0.1:1/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/.well-known/openid-configuration", nil)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"issuer":"http://127.0.0.1:1"`) {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}
