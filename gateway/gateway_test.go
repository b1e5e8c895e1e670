package gateway_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/session"
)

func TestBrowserLogin_ReachesUpstreamWithVerifiedIdentity(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, resp := e.login("/app/page?x=1")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || body != "upstream:/app/page" {
		t.Fatalf("after login got %d %q at %s", resp.StatusCode, body, resp.Request.URL)
	}
	if resp.Request.URL.RequestURI() != "/app/page?x=1" {
		t.Fatalf("login returned to %s, want the original path", resp.Request.URL.RequestURI())
	}
	reqs := e.up.Requests()
	last := reqs[len(reqs)-1]
	if got := last.Header.Get("X-Meetguard-User"); got != "id1" {
		t.Errorf("X-Meetguard-User = %q, want id1", got)
	}
	if got := last.Header.Get("X-Meetguard-Email"); got != e.idp.Email {
		t.Errorf("X-Meetguard-Email = %q", got)
	}
	for _, ck := range last.Cookies() {
		if strings.HasPrefix(ck.Name, "meetguard") {
			t.Errorf("gateway cookie %s was forwarded upstream", ck.Name)
		}
	}
	// The assertion verifies against the published JWKS.
	jwksResp := get(t, c, e.URL+assertion.JWKSPath, nil)
	var set jose.JSONWebKeySet
	decodeJSON(t, jwksResp, &set)
	tok, err := jwt.ParseSigned(last.Header.Get("X-Meetguard-Assertion"), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var claims assertion.Claims
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("assertion does not verify with the JWKS: %v", err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: e.URL, AnyAudience: jwt.Audience{"demo"}, Subject: "id1"}, 0); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	if ttl := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); ttl > time.Minute {
		t.Errorf("assertion lives %v, want <= 60s", ttl)
	}
	// The session cookie is small, HttpOnly and SameSite=Lax.
	u, _ := url.Parse(e.URL)
	var sess *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "meetguard" {
			sess = ck
		}
	}
	if sess == nil || len(sess.Value) > 200 {
		t.Fatalf("session cookie missing or too large: %+v", sess)
	}
	if !e.audit.Has("login.success") {
		t.Error("no login.success audit record")
	}
}

func TestSessionCookie_Flags(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := browsertest.Client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := get(t, c, e.URL+auth.LoginURL("/app"), nil)
	resp.Body.Close()
	raw := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(raw, want) {
			t.Errorf("login cookie %q lacks %s", raw, want)
		}
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Errorf("authorization request lacks PKCE S256, state or nonce: %s", loc)
	}
}

func TestUnauthenticated_BrowserRedirectedAPIGets401(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := get(t, c, e.URL+"/app/x?y=1", map[string]string{"Accept": "text/html"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != auth.LoginURL("/app/x?y=1") {
		t.Fatalf("browser: %d -> %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(t, c, e.URL+"/app/x", map[string]string{"Accept": "application/json"})
	var body map[string]string
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || body["error"] != "unauthenticated" {
		t.Fatalf("api: %d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("upstream saw %d unauthenticated requests", n)
	}
}

func TestBearer_HostileTokensRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	claims := func(mut func(map[string]any)) map[string]any {
		c := e.idp.Claims(e.idp.ClientID)
		if mut != nil {
			mut(c)
		}
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(e.idp.PublicKey())
	hsWithPub, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubDER}, (&jose.SignerOptions{}).WithHeader("kid", "test-key-1"))
	otherIdP := testidp.Start(t)
	cases := []struct {
		name  string
		token string
	}{
		{"alg none", noneToken(claims(nil))},
		{"HS256 keyed with the provider's public key", testidp.SignWith(t, hsWithPub, claims(nil))},
		{"wrong iss", e.idp.Sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), "")},
		{"wrong aud", e.idp.Sign(t, claims(func(c map[string]any) { c["aud"] = "another-app" }), "")},
		{"expired", e.idp.Sign(t, claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Minute).Unix() }), "")},
		{"nbf in the future", e.idp.Sign(t, claims(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() }), "")},
		{"unknown kid", otherIdP.Sign(t, claims(nil), "no-such-kid")},
		{"right kid, other key", otherIdP.Sign(t, claims(nil), "test-key-1")},
		{"no sub", e.idp.Sign(t, claims(func(c map[string]any) { delete(c, "sub") }), "")},
		{"garbage", "not.a.jwt"},
		{"tampered payload", tamper(e.idToken())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.up.Reset()
			resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + tc.token})
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if n := len(e.up.Requests()); n != 0 {
				t.Fatalf("forged token reached the upstream")
			}
		})
	}
	// And the same path with a valid token goes through, so the refusals
	// above are about the tokens.
	resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + e.idToken()})
	if b := readAll(t, resp); resp.StatusCode != http.StatusOK || b != "upstream:/app/x" {
		t.Fatalf("valid bearer: %d %q", resp.StatusCode, b)
	}
	if got := e.up.Requests()[0].Header.Get("Authorization"); got != "" {
		t.Errorf("bearer token forwarded upstream: %q", got)
	}
}

func noneToken(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	c["sub"] = "admin"
	b, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestBearer_UnknownKidFloodDoesNotHammerProvider(t *testing.T) {
	e := newEnv(t, envOptions{})
	other := testidp.Start(t)
	before := e.jwksFetches(t)
	for i := 0; i < 50; i++ {
		tok := other.Sign(t, e.idp.Claims(e.idp.ClientID), fmt.Sprintf("bogus-%d", i))
		resp := get(t, http.DefaultClient, e.URL+"/app/x", map[string]string{"Authorization": "Bearer " + tok})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bogus kid %d: status %d", i, resp.StatusCode)
		}
	}
	if extra := e.jwksFetches(t) - before; extra > 1 {
		t.Fatalf("50 bogus kids caused %d key-set fetches, want at most 1 per refetch interval", extra)
	}
}

func (e *env) jwksFetches(t *testing.T) int {
	t.Helper()
	return e.authn.KeyFetches()
}

func TestCallback_HostileRequestsFail(t *testing.T) {
	e := newEnv(t, envOptions{})
	// startLogin begins a login and returns the client (with its login
	// cookie) and the state the gateway generated.
	startLogin := func() (*http.Client, string) {
		c := browsertest.NoFollow(browsertest.Client(t))
		resp := get(t, c, e.URL+auth.LoginURL("/app"), nil)
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return c, loc.Query().Get("state")
	}
	t.Run("missing state", func(t *testing.T) {
		c, _ := startLogin()
		resp := get(t, c, e.URL+auth.CallbackPath+"?code=abc", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("state from another browser", func(t *testing.T) {
		_, state := startLogin()
		c2, _ := startLogin()
		resp := get(t, c2, e.URL+auth.CallbackPath+"?code=abc&state="+url.QueryEscape(state), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("replayed state", func(t *testing.T) {
		c := browsertest.Client(t)
		resp := e.idp.BrowserLogin(t, c, e.URL+auth.LoginURL("/app"))
		resp.Body.Close()
		first := resp.Request
		for first.Response != nil && !strings.Contains(first.URL.Path, auth.CallbackPath) {
			first = first.Response.Request
		}
		if !strings.Contains(first.URL.Path, auth.CallbackPath) {
			t.Fatalf("could not find the callback request in the redirect chain")
		}
		fresh := browsertest.NoFollow(browsertest.Client(t))
		fresh.Jar = c.Jar
		resp = get(t, fresh, first.URL.String(), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed callback: status %d", resp.StatusCode)
		}
	})
	tamperLogin := func(t *testing.T, mut func(*session.Login)) *http.Response {
		c := browsertest.Client(t)
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), e.idp.URL) && req.URL.Path == "/auth" {
				// The login state lives only in the sealed cookie; a
				// test holding the session secret can change it.
				e.editLoginCookie(c, mut)
			}
			return nil
		}
		return e.idp.BrowserLogin(t, c, e.URL+auth.LoginURL("/app"))
	}
	e.up.Reset()
	t.Run("wrong nonce", func(t *testing.T) {
		resp := tamperLogin(t, func(l *session.Login) { l.Nonce = "another-nonce" })
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		resp := tamperLogin(t, func(l *session.Login) { l.Verifier = strings.Repeat("x", 43) })
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	if len(e.up.Requests()) != 0 {
		t.Fatal("a failed login reached the upstream")
	}
	if !e.audit.Has("login.failure") {
		t.Error("no login.failure audit record")
	}
}

func TestLogin_OpenRedirectPayloadsStayOnOrigin(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, rd := range []string{"//evil.example/x", "/\\evil.example", "/%09/evil.example", "https://evil.example/", "/\t/evil.example", "javascript:alert(1)", "/%2F%2Fevil.example"} {
		c := browsertest.Client(t)
		resp := e.idp.BrowserLogin(t, c, e.URL+auth.LoginPath+"?rd="+url.QueryEscape(rd))
		resp.Body.Close()
		if got := resp.Request.URL; got.Host != strings.TrimPrefix(e.URL, "http://") || got.Path != "/" {
			t.Errorf("rd=%q landed on %s", rd, got)
		}
	}
}

func TestProxy_SpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.idToken()
	spoof := map[string]string{
		"Authorization":         "Bearer " + tok,
		"X-Meetguard-User":      "admin",
		"x-meetguard-email":     "ceo@example.com",
		"X_Meetguard_Role":      "host",
		"X-MEETGUARD_ROOM":      "boardroom",
		"X-Meetguard-Assertion": "forged",
		"X-Forwarded-For":       "10.0.0.1",
		"X_Forwarded_For":       "10.0.0.2",
		"Forwarded":             "for=10.0.0.3",
		"X-Original-URL":        "/admin",
		"X-Rewrite-URL":         "/admin",
		"X-Real-IP":             "10.0.0.4",
		"Connection":            "X-Meetguard-User, X-Meetguard-Assertion",
		"Meetguard-Ticket":      "ticket-for-the-gateway-only",
		"Cookie":                "meetguard=handle; __Host-meetguard-login=x; meetguard-ticket-r1=t; app=kept",
	}
	resp := get(t, http.DefaultClient, e.URL+"/room/r1/page", spoof)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.up.Requests()[0].Header
	for k, v := range got {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		switch n {
		case "x-meetguard-user":
			if len(v) != 1 || v[0] != "id1" {
				t.Errorf("%s = %v", k, v)
			}
		case "x-meetguard-room":
			if len(v) != 1 || v[0] != "r1" {
				t.Errorf("%s = %v", k, v)
			}
		case "x-meetguard-role":
			if len(v) != 1 || v[0] != "participant" {
				t.Errorf("%s = %v", k, v)
			}
		case "x-meetguard-email":
			if len(v) != 1 || v[0] != e.idp.Email {
				t.Errorf("%s = %v", k, v)
			}
		case "x-meetguard-assertion":
			if len(v) != 1 || v[0] == "forged" {
				t.Errorf("%s = %v", k, v)
			}
		case "x-original-url", "x-rewrite-url", "x-real-ip", "forwarded":
			t.Errorf("%s reached upstream: %v", k, v)
		case "x-forwarded-for":
			if k != "X-Forwarded-For" || len(v) != 1 || v[0] != "127.0.0.1" {
				t.Errorf("%s = %v, want only the real peer", k, v)
			}
		}
	}
	if v := got.Values("Meetguard-Ticket"); len(v) != 0 {
		t.Errorf("room ticket forwarded upstream: %v", v)
	}
	if c := got.Get("Cookie"); c != "app=kept" {
		t.Errorf("upstream Cookie = %q, want only the app's own cookie", c)
	}
	if got.Get("X-Meetguard-Assertion") == "" || got.Get("X-Meetguard-User") == "" {
		t.Fatal("gateway identity headers missing upstream (Connection trick stripped them?)")
	}
}

func TestProxy_TrustedProxyForwardedFor(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} }})
	resp := get(t, http.DefaultClient, e.URL+"/app", map[string]string{"Authorization": "Bearer " + e.idToken(), "X-Forwarded-For": "203.0.113.7"})
	resp.Body.Close()
	if got := e.up.Requests()[0].Header.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For upstream = %q", got)
	}
}

func TestProxy_PathTricksRefusedBeforeUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.idToken()
	for _, p := range []string{
		"/room/a/..%2f..%2fadmin", "/room/a/..%2F..%2Fadmin", "/room/a/../../admin", "/room/a;x=1", "/room/a%3b", "/room/%2e%2e/admin", "/room/a%00", "/room/a%5c..%5cadmin", "/room/a%252f",
	} {
		raw := rawGet(t, e.URL, p, "Authorization: Bearer "+tok)
		if !strings.HasPrefix(raw, "HTTP/1.1 400") {
			t.Errorf("%s: %q", p, firstLine(raw))
		}
	}
	// Double slashes are collapsed, and what is decided on is what is sent.
	raw := rawGet(t, e.URL, "//app//x", "Authorization: Bearer "+tok)
	if !strings.HasPrefix(raw, "HTTP/1.1 200") || !strings.Contains(raw, "upstream:/app/x") {
		t.Errorf("//app//x: %q", raw)
	}
	for _, r := range e.up.Requests() {
		if r.URL.EscapedPath() != "/app/x" {
			t.Errorf("upstream received %q", r.URL.EscapedPath())
		}
	}
}

func TestServer_OversizedAndSlowHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	big := "X-Big: " + strings.Repeat("a", 64<<10)
	if raw := rawGet(t, e.URL, "/app", big); !strings.HasPrefix(raw, "HTTP/1.1 431") {
		t.Errorf("oversized headers: %q", firstLine(raw))
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /app HTTP/1.1\r\nHost: x\r\n"))
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	_, err = conn.Read(buf)
	if err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("slow-header connection not closed by the server (err=%v after %v)", err, time.Since(start))
	}
	if len(e.up.Requests()) != 0 {
		t.Fatal("upstream reached")
	}
}

func rawGet(t *testing.T, base, path string, headers ...string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			break
		}
	}
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func TestWebSocket_EchoAndLogoutClosesIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, resp := e.login("/app")
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := strings.Replace(e.URL, "http://", "ws://", 1) + "/room/r1/ws"
	// As a browser does: the page's origin (the gateway's own) on the handshake.
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {e.URL}}})
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil || string(msg) != "hello" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if n := e.gw.Live().Count(); n != 1 {
		t.Fatalf("live connections = %d, want 1", n)
	}
	// Logging out cuts the live connection at once.
	lr := postLogout(t, c, e.URL, map[string]string{"Origin": e.URL})
	lr.Body.Close()
	readCtx, readCancel := context.WithTimeout(ctx, 2*time.Second)
	defer readCancel()
	if _, _, err := ws.Read(readCtx); err == nil || readCtx.Err() != nil {
		t.Fatalf("websocket still open after logout (err=%v)", err)
	}
	// And the session is gone: the next request must log in again.
	nc := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp = get(t, nc, e.URL+"/app", map[string]string{"Accept": "application/json"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
	if !e.audit.Has("logout") {
		t.Error("no logout audit record")
	}
}

func TestReadyz_ReportsChecks(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp := get(t, http.DefaultClient, e.URL+"/.meetguard/readyz", nil)
	var body struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusOK || !body.Ready {
		t.Fatalf("readyz: %d %+v", resp.StatusCode, body)
	}
	e.audit.Fail(fmt.Errorf("disk full"))
	resp = get(t, http.DefaultClient, e.URL+"/.meetguard/readyz", nil)
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Checks["audit"] != "not ok" {
		t.Fatalf("readyz with failing audit: %d %+v", resp.StatusCode, body)
	}
}

func TestSessionCookie_HostPrefixAndSecureOnHTTPS(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(c *config.Config) { c.PublicURL = strings.Replace(c.PublicURL, "http://", "https://", 1) }})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := get(t, c, e.URL+auth.LoginURL("/app"), nil)
	resp.Body.Close()
	raw := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-meetguard-login=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(raw, want) {
			t.Errorf("login cookie %q lacks %s", raw, want)
		}
	}
	if strings.Contains(raw, "Domain=") {
		t.Errorf("__Host- cookie must not carry Domain: %q", raw)
	}
}
