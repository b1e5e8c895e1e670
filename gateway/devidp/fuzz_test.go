package devidp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func fuzzProvider(f *testing.F) *Provider {
	f.Helper()
	p, err := New(Options{
		Issuer: "http://127.0.0.1:8080/.dev-idp",
		Clients: []Client{
			{ID: "gateway", Secret: testSecret, RedirectURIs: []string{testCallback}},
			{ID: "cli", RedirectURIs: []string{"http://127.0.0.1:9/cli"}},
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzAuthorizeQuery checks that no query makes /authorize trust a
// redirect_uri that is not registered, or accept a request without S256 PKCE
// and the openid scope.
func FuzzAuthorizeQuery(f *testing.F) {
	p := fuzzProvider(f)
	f.Add(goodAuthorize().Encode())
	f.Add("client_id=gateway&redirect_uri=" + url.QueryEscape(testCallback) + "%2F&response_type=code")
	f.Add("client_id=gateway&client_id=cli&redirect_uri=http://127.0.0.1:9/cli")
	f.Add("redirect_uri=%zz&client_id=gateway")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, fail, fatal := p.parseAuthorize(q)
		if fatal != nil {
			return
		}
		c, ok := p.clients[req.clientID]
		if !ok || !slices.Contains(c.RedirectURIs, req.redirectURI) {
			t.Fatalf("trusted client %q redirect_uri %q", req.clientID, req.redirectURI)
		}
		if fail != nil {
			return
		}
		if !validPKCE(req.challenge, 43, 43) || q.Get("code_challenge_method") != "S256" || !slices.Contains(req.scopes, "openid") {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// FuzzTokenRequest throws arbitrary bodies and Authorization headers at the
// token endpoint. Without a code or refresh token that the provider issued,
// nothing may succeed, and nothing may be a server error.
func FuzzTokenRequest(f *testing.F) {
	p := fuzzProvider(f)
	f.Add("grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=z&client_id=gateway&client_secret=x", "")
	f.Add("grant_type=refresh_token&refresh_token=x", "Basic Z2F0ZXdheTp4")
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=cli", "")
	f.Add("client_id=%zz", "Basic !!!")
	f.Add(strings.Repeat("a=b&", 100), "Bearer x")
	f.Fuzz(func(t *testing.T, body, auth string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/.dev-idp/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for body %q auth %q: %s", rec.Code, body, auth, rec.Body)
		}
	})
}
