package devidp

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

type tokenClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AuthTime      int64    `json:"auth_time"`
	Nonce         string   `json:"nonce"`
}

func TestCodeFlow_GoOIDCVerifiesIDTokenWithNonce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	const state, nonce = "state-123", "nonce-456"

	loc := h.login(t, h.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), "alice")
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	if got := loc.Query().Get("iss"); got != h.issuer {
		t.Fatalf("iss = %q, want %q", got, h.issuer)
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != testCallback {
		t.Fatalf("redirected to %s, want %s", loc, testCallback)
	}
	tok, err := h.cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := h.oidc.Verifier(&oidc.Config{ClientID: "gateway", Now: h.clock.Now}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var c tokenClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || c.Email != "alice@example.com" || !c.EmailVerified ||
		!slices.Contains(c.Groups, "meeting-hosts") || !slices.Equal(c.AMR, []string{"pwd", "mfa"}) || c.ACR != "aal2" || c.AuthTime == 0 {
		t.Fatalf("ID token claims = %+v sub=%q", c, idt.Subject)
	}

	// The access token is a JWT the gateway can verify as a bearer token.
	at, err := h.oidc.Verifier(&oidc.Config{ClientID: "gateway", Now: h.clock.Now}).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	if at.Subject != "alice" {
		t.Fatalf("access token sub = %q", at.Subject)
	}
	// And userinfo accepts it.
	ui, err := h.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.Subject != "alice" || ui.Email != "alice@example.com" {
		t.Fatalf("userinfo = %+v", ui)
	}
}

func TestCodeFlow_RequestedAudienceInAccessToken(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	loc := h.login(t, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("audience", "meetguard-api")), "bob")
	tok, err := h.cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	at, err := h.oidc.Verifier(&oidc.Config{ClientID: "meetguard-api", Now: h.clock.Now}).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("access token not valid for the requested audience: %v", err)
	}
	if !slices.Equal(at.Audience, []string{"gateway", "meetguard-api"}) {
		t.Fatalf("aud = %v", at.Audience)
	}
	// The ID token stays for the client alone.
	rawID, _ := tok.Extra("id_token").(string)
	if _, err := h.oidc.Verifier(&oidc.Config{ClientID: "meetguard-api", Now: h.clock.Now}).Verify(ctx, rawID); err == nil {
		t.Fatal("ID token accepted for another audience")
	}
}

func TestToken_PKCEMismatchRefused(t *testing.T) {
	tests := []struct {
		name string
		opts func(verifier string) []oauth2.AuthCodeOption
	}{
		{"wrong verifier", func(string) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}},
		{"missing verifier", func(string) []oauth2.AuthCodeOption { return nil }},
		{"challenge sent as verifier", func(v string) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.S256ChallengeFromVerifier(v))}
		}},
		{"verifier too short", func(v string) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(v[:42])}
		}},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			code := h.authCode(t, verifier)
			_, err := h.cfg.Exchange(context.Background(), code, tt.opts(verifier)...)
			if oauthCode(err) != "invalid_grant" {
				t.Fatalf("Exchange err = %v, want invalid_grant", err)
			}
			// The failed attempt used the code up: the right verifier is too late.
			_, err = h.cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			if oauthCode(err) != "invalid_grant" {
				t.Fatalf("retry with the right verifier: err = %v, want invalid_grant", err)
			}
		})
	}
}

func TestToken_CodeReplayRefusedAndRevokesRefreshTokens(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	code := h.authCode(t, verifier)
	first, err := h.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("first Exchange: %v", err)
	}
	if _, err := h.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); oauthCode(err) != "invalid_grant" {
		t.Fatalf("replayed Exchange err = %v, want invalid_grant", err)
	}
	_, err = h.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("refresh after code replay: err = %v, want invalid_grant", err)
	}
}

func TestToken_WrongRedirectURIRefused(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.authCode(t, verifier)
	other := h.cfg
	other.RedirectURL = otherCallbak // registered, but not the one the code was issued for
	_, err := other.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("Exchange err = %v, want invalid_grant", err)
	}
}

func TestToken_ExpiredCodeRefused(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.authCode(t, verifier)
	h.clock.Advance(codeTTL + time.Second)
	_, err := h.cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("Exchange err = %v, want invalid_grant", err)
	}
}

func TestToken_CodeOfAnotherClientRefused(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.authCode(t, verifier)
	status, _, body := h.postForm(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"cli"},
		"redirect_uri": {testCallback}, "code_verifier": {verifier},
	}, "", "")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("status %d body %v, want 400 invalid_grant", status, body)
	}
}

func TestRefresh_RotatesAndOldTokenRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	first, err := h.cfg.Exchange(ctx, h.authCode(t, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	expired := func(rt string) *oauth2.Token { return &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)} }

	second, err := h.cfg.TokenSource(ctx, expired(first.RefreshToken)).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh token was not rotated")
	}
	rawID, _ := second.Extra("id_token").(string)
	idt, err := h.oidc.Verifier(&oidc.Config{ClientID: "gateway", Now: h.clock.Now}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	if idt.Subject != "alice" || idt.Nonce != "" {
		t.Fatalf("refreshed ID token sub=%q nonce=%q", idt.Subject, idt.Nonce)
	}

	if _, err := h.cfg.TokenSource(ctx, expired(first.RefreshToken)).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("old refresh token after rotation: err = %v, want invalid_grant", err)
	}
	// Reuse of a rotated token revokes the whole family, so whoever holds
	// the newest token (possibly a thief) loses it as well.
	if _, err := h.cfg.TokenSource(ctx, expired(second.RefreshToken)).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("newest refresh token after reuse: err = %v, want invalid_grant", err)
	}
}

func TestRefresh_ExpiredAndForeignTokensRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	tok, err := h.cfg.Exchange(ctx, h.authCode(t, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	// Another client presenting this client's refresh token.
	status, _, body := h.postForm(t, "/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"cli"},
	}, "", "")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("foreign client: status %d body %v", status, body)
	}
	h.clock.Advance(DefaultRefreshTTL + time.Minute)
	_, err = h.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if oauthCode(err) != "invalid_grant" {
		t.Fatalf("expired refresh token: err = %v, want invalid_grant", err)
	}
}

func TestToken_ClientAuthentication(t *testing.T) {
	h := newHarness(t)
	// A bogus refresh token separates the outcomes: an authenticated client
	// gets invalid_grant (400), an unauthenticated one invalid_client (401).
	bogus := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}
	with := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, vs := range bogus {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		wantStatus int
		wantError  string
	}{
		{"basic", bogus, "gateway", url.QueryEscape(testSecret), 400, "invalid_grant"},
		{"post", with(url.Values{"client_id": {"gateway"}, "client_secret": {testSecret}}), "", "", 400, "invalid_grant"},
		{"public client, no secret", with(url.Values{"client_id": {"cli"}}), "", "", 400, "invalid_grant"},
		{"basic wrong secret", bogus, "gateway", "wrong", 401, "invalid_client"},
		{"basic secret not form-encoded", bogus, "gateway", "correct%", 401, "invalid_client"},
		{"post wrong secret", with(url.Values{"client_id": {"gateway"}, "client_secret": {"wrong"}}), "", "", 401, "invalid_client"},
		{"post secret prefix", with(url.Values{"client_id": {"gateway"}, "client_secret": {testSecret[:5]}}), "", "", 401, "invalid_client"},
		{"missing secret", with(url.Values{"client_id": {"gateway"}}), "", "", 401, "invalid_client"},
		{"unknown client", with(url.Values{"client_id": {"mallory"}}), "", "", 401, "invalid_client"},
		{"public client with secret", with(url.Values{"client_id": {"cli"}, "client_secret": {"x"}}), "", "", 401, "invalid_client"},
		{"two methods", with(url.Values{"client_secret": {testSecret}}), "gateway", url.QueryEscape(testSecret), 401, "invalid_request"},
		{"basic and other client_id", with(url.Values{"client_id": {"cli"}}), "gateway", url.QueryEscape(testSecret), 401, "invalid_request"},
		{"repeated client_id", with(url.Values{"client_id": {"gateway", "cli"}, "client_secret": {testSecret}}), "", "", 401, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.postForm(t, "/token", tt.form, tt.user, tt.pass)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Fatalf("status %d error %v, want %d %s", status, body["error"], tt.wantStatus, tt.wantError)
			}
			if status == 401 && tt.user != "" && hdr.Get("WWW-Authenticate") == "" {
				t.Fatal("401 after Basic auth without WWW-Authenticate")
			}
		})
	}
}

func TestToken_HostileRequests(t *testing.T) {
	h := newHarness(t)
	client := url.Values{"client_id": {"gateway"}, "client_secret": {testSecret}}
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantError   string
	}{
		{"not a form", "application/json", `{"grant_type":"authorization_code"}`, 400, "invalid_request"},
		{"implicit grant", "", client.Encode() + "&grant_type=implicit", 400, "unsupported_grant_type"},
		{"password grant", "", client.Encode() + "&grant_type=password&username=alice&password=x", 400, "unsupported_grant_type"},
		{"client credentials", "", client.Encode() + "&grant_type=client_credentials", 400, "unsupported_grant_type"},
		{"repeated grant_type", "", client.Encode() + "&grant_type=refresh_token&grant_type=authorization_code", 400, "invalid_request"},
		{"guessed code", "", client.Encode() + "&grant_type=authorization_code&code=AAAA&redirect_uri=" +
			url.QueryEscape(testCallback) + "&code_verifier=" + oauth2.GenerateVerifier(), 400, "invalid_grant"},
		{"bad escape", "", "client_id=%zz", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+"/token", strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, `"error":"`+tt.wantError+`"`) {
				t.Fatalf("status %d body %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantError)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("token response without Cache-Control: no-store")
			}
		})
	}
}

func TestToken_GETRefused(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.issuer + "/token?grant_type=authorization_code")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405", resp.StatusCode)
	}
}
