package devidp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"golang.org/x/oauth2"
)

// goodAuthorize is a valid authorization request for the "gateway" client.
func goodAuthorize() url.Values {
	return url.Values{
		"client_id":             {"gateway"},
		"redirect_uri":          {testCallback},
		"response_type":         {"code"},
		"scope":                 {"openid email"},
		"state":                 {"xyz"},
		"nonce":                 {"n"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"},
	}
}

func TestAuthorize_UntrustedClientOrRedirectNeverRedirects(t *testing.T) {
	tests := []struct {
		name string
		edit func(url.Values)
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "mallory") }},
		{"missing client", func(v url.Values) { v.Del("client_id") }},
		{"missing redirect_uri", func(v url.Values) { v.Del("redirect_uri") }},
		{"other host", func(v url.Values) { v.Set("redirect_uri", "http://evil.test/.meetguard/callback") }},
		{"other port", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:10/.meetguard/callback") }},
		{"https instead of http", func(v url.Values) { v.Set("redirect_uri", "https://127.0.0.1:9/.meetguard/callback") }},
		{"extra path", func(v url.Values) { v.Set("redirect_uri", testCallback+"/x") }},
		{"trailing slash", func(v url.Values) { v.Set("redirect_uri", testCallback+"/") }},
		{"added query", func(v url.Values) { v.Set("redirect_uri", testCallback+"?next=//evil.test") }},
		{"userinfo trick", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9@evil.test/.meetguard/callback") }},
		{"case changed", func(v url.Values) { v.Set("redirect_uri", strings.ToUpper(testCallback)) }},
		{"another client's redirect", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9/cli") }},
		{"repeated redirect_uri", func(v url.Values) { v["redirect_uri"] = []string{testCallback, "http://evil.test/"} }},
		{"repeated client_id", func(v url.Values) { v["client_id"] = []string{"gateway", "cli"} }},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := goodAuthorize()
			tt.edit(q)
			resp, err := browsertest.NoFollow(browsertest.Client(t)).Get(h.issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if strings.Contains(body, `name="request"`) {
				t.Fatal("login form shown for an untrusted request")
			}
		})
	}
}

func TestAuthorize_BadRequestsRedirectWithError(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(url.Values)
		wantError string
	}{
		{"no PKCE", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
		{"PKCE method missing means plain", func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		{"PKCE plain", func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE lowercase method", func(v url.Values) { v.Set("code_challenge_method", "s256") }, "invalid_request"},
		{"challenge too short", func(v url.Values) { v.Set("code_challenge", "abc") }, "invalid_request"},
		{"challenge not base64url", func(v url.Values) { v.Set("code_challenge", strings.Repeat("+", 43)) }, "invalid_request"},
		{"implicit flow", func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		{"hybrid flow", func(v url.Values) { v.Set("response_type", "code id_token") }, "unsupported_response_type"},
		{"form_post", func(v url.Values) { v.Set("response_mode", "form_post") }, "invalid_request"},
		{"no openid scope", func(v url.Values) { v.Set("scope", "email profile") }, "invalid_scope"},
		{"prompt none", func(v url.Values) { v.Set("prompt", "none") }, "login_required"},
		{"request object", func(v url.Values) { v.Set("request", "eyJ...") }, "request_not_supported"},
		{"repeated scope", func(v url.Values) { v["scope"] = []string{"openid", "openid email"} }, "invalid_request"},
		{"huge nonce", func(v url.Values) { v.Set("nonce", strings.Repeat("n", 5000)) }, "invalid_request"},
		{"audience with control byte", func(v url.Values) { v.Set("audience", "api\x01") }, "invalid_target"},
		{"too many audiences", func(v url.Values) { v.Set("audience", "a b c d e f g h i") }, "invalid_target"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := goodAuthorize()
			tt.edit(q)
			resp, err := browsertest.NoFollow(browsertest.Client(t)).Get(h.issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d Location %q, want a redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			got := loc.Query()
			if loc.Scheme+"://"+loc.Host+loc.Path != testCallback || got.Get("error") != tt.wantError ||
				got.Get("state") != "xyz" || got.Get("code") != "" {
				t.Fatalf("redirect %s, want %s?error=%s&state=xyz", loc, testCallback, tt.wantError)
			}
		})
	}
}

func TestAuthorize_LoginPageListsUsersUnderStrictCSP(t *testing.T) {
	h := newHarness(t)
	resp, err := browsertest.NoFollow(browsertest.Client(t)).Get(h.issuer + "/authorize?" + goodAuthorize().Encode())
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	for _, want := range []string{"alice@example.com", "bob@example.com", "eve@guest.test", "meeting-hosts", "MFA", "meetguard"} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' http://127.0.0.1:9", pageCSSHash} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("login page has a script")
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == browserCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.Path != "/.dev-idp/" {
		t.Fatalf("browser cookie = %+v, want HttpOnly with Path /.dev-idp/", cookie)
	}
}

func TestLogin_ForgedSubmissionsRefused(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name       string
		run        func(t *testing.T) *http.Response
		wantStatus int
	}{
		{"cross-site form post", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			id := openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, c, url.Values{"request": {id}, "user": {"alice"}},
				http.Header{"Sec-Fetch-Site": {"cross-site"}})
		}, http.StatusForbidden},
		{"cross-origin Origin header", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			id := openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, c, url.Values{"request": {id}, "user": {"alice"}},
				http.Header{"Origin": {"http://evil.test"}})
		}, http.StatusForbidden},
		{"request id from another browser", func(t *testing.T) *http.Response {
			// The attacker starts a login; the victim's browser, which has
			// its own browser cookie, is made to submit it.
			id := openLogin(t, browsertest.NoFollow(browsertest.Client(t)), h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			victim := browsertest.NoFollow(browsertest.Client(t))
			openLogin(t, victim, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, victim, url.Values{"request": {id}, "user": {"alice"}}, nil)
		}, http.StatusForbidden},
		{"browser without cookie", func(t *testing.T) *http.Response {
			id := openLogin(t, browsertest.NoFollow(browsertest.Client(t)), h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, browsertest.NoFollow(browsertest.Client(t)), url.Values{"request": {id}, "user": {"alice"}}, nil)
		}, http.StatusForbidden},
		{"replayed request id", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			id := openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			readAll(t, h.submitLogin(t, c, url.Values{"request": {id}, "user": {"alice"}}, nil))
			return h.submitLogin(t, c, url.Values{"request": {id}, "user": {"alice"}}, nil)
		}, http.StatusBadRequest},
		{"made-up request id", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, c, url.Values{"request": {randomToken()}, "user": {"alice"}}, nil)
		}, http.StatusBadRequest},
		{"unknown user", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			id := openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			return h.submitLogin(t, c, url.Values{"request": {id}, "user": {"root"}}, nil)
		}, http.StatusBadRequest},
		{"expired login page", func(t *testing.T) *http.Response {
			c := browsertest.NoFollow(browsertest.Client(t))
			id := openLogin(t, c, h.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			h.clock.Advance(loginTTL + time.Second)
			return h.submitLogin(t, c, url.Values{"request": {id}, "user": {"alice"}}, nil)
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.run(t)
			readAll(t, resp)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want %d and no redirect", resp.StatusCode, resp.Header.Get("Location"), tt.wantStatus)
			}
		})
	}
}

func TestLogin_CancelRedirectsAccessDenied(t *testing.T) {
	h := newHarness(t)
	c := browsertest.NoFollow(browsertest.Client(t))
	id := openLogin(t, c, h.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	resp := h.submitLogin(t, c, url.Values{"request": {id}, "cancel": {"1"}}, nil)
	readAll(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" ||
		loc.Query().Get("state") != "st" || loc.Query().Get("code") != "" {
		t.Fatalf("status %d Location %s, want access_denied with state", resp.StatusCode, loc)
	}
}
