package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/session"
)

// loginIDToken is the ID token the provider issued to a real browser
// login through the gateway, as the session holds it (and as the logout
// redirect carries it in id_token_hint).
func (e *env) loginIDToken(c *http.Client) string {
	e.t.Helper()
	codec, err := session.NewCodec([]byte(strings.Repeat("s", 32)))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(mustURL(e.t.(*testing.T), e.URL)) {
		if ck.Name != "meetguard" {
			continue
		}
		handle, err := codec.Open(ck.Name, ck.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		s, err := e.store.GetSession(context.Background(), session.IDFromHandle(handle))
		if err != nil {
			e.t.Fatal(err)
		}
		return s.IDToken
	}
	e.t.Fatal("no session cookie")
	return ""
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBearer_IDTokenOfARealLoginRefused: the ID token of a real login
// (audience: the gateway's client, which oidc.audiences accepts by
// default) is refused as a bearer credential, during the session and
// after logout.
func TestBearer_IDTokenOfARealLoginRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, resp := e.login("/app")
	resp.Body.Close()
	idt := e.loginIDToken(c)
	if claimsOf(t, idt)["nonce"] == nil {
		t.Fatalf("setup: the login's ID token has no nonce: %v", claimsOf(t, idt))
	}
	try := func(when string) {
		e.up.Reset()
		resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + idt, "Accept": "application/json"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || len(e.up.Requests()) != 0 {
			t.Fatalf("%s: ID token as bearer answered %d (upstream reached %d times), want 401", when, resp.StatusCode, len(e.up.Requests()))
		}
	}
	try("during the session")
	lo, _ := http.NewRequest(http.MethodPost, e.URL+"/.meetguard/logout", nil)
	lo.Header.Set("Origin", e.URL)
	if r, err := c.Do(lo); err == nil {
		r.Body.Close()
	}
	try("after logout")
}

// TestBearer_IDTokenMarkersRefused: each claim only an ID token carries is
// enough to refuse it; the same token without it is accepted.
func TestBearer_IDTokenMarkersRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		name  string
		claim string
		value any
	}{
		{"nonce", "nonce", "n-0S6_WzA2Mj"},
		{"at_hash", "at_hash", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"c_hash", "c_hash", "LDktKdoQak3Pk0cnXxCltA"},
		{"Keycloak typ ID", "typ", "ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.idp.Claims(e.idp.ClientID)
			c[tc.claim] = tc.value
			resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + e.idp.Sign(t, c, "")})
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token with %s: %d, want 401", tc.claim, resp.StatusCode)
			}
		})
	}
	c := e.idp.Claims(e.idp.ClientID)
	c["typ"] = "Bearer" // Keycloak's access tokens
	resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + e.idp.Sign(t, c, "")})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("access token: %d, want 200", resp.StatusCode)
	}
}

// TestBearer_AccessTokenTypeRequired: with oidc.access_token_type set,
// only tokens typed so in their JWS header are bearer credentials.
func TestBearer_AccessTokenTypeRequired(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(c *config.Config) { c.OIDC.AccessTokenType = "at+jwt" }})
	for _, tc := range []struct {
		typ  string
		want int
	}{
		{"JWT", http.StatusUnauthorized},
		{"at+jwt", http.StatusOK},
		{"application/at+jwt", http.StatusOK},
		{"AT+JWT", http.StatusOK},
	} {
		tok := e.idp.SignTyped(t, e.idp.Claims(e.idp.ClientID), tc.typ)
		resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + tok})
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("typ %q: %d, want %d", tc.typ, resp.StatusCode, tc.want)
		}
	}
}
