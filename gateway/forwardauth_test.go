package gateway_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/config"
)

// fromAddr is a client whose connections come from the loopback address
// ip (127.0.0.2 is another machine as far as trusted_proxies goes).
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func trustLoopbackOne(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }

// ask sends one forward-auth question; hdr are name/value pairs, added
// (so a name given twice is sent twice).
func ask(t *testing.T, c *http.Client, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp
}

// TestForwardAuth_OnlyTrustedProxiesMayAsk: a caller that is not a trusted
// proxy cannot make the gateway vouch for a path it names, with any of the
// headers front proxies use; a trusted proxy gets the identity headers.
func TestForwardAuth_OnlyTrustedProxiesMayAsk(t *testing.T) {
	e := newEnv(t, envOptions{mutate: trustLoopbackOne})
	tok := e.idToken()
	for _, hdr := range [][]string{
		{"X-Original-URI", "/room/board"},
		{"X-Forwarded-Uri", "/room/board"},
		{"X-Original-URI", "/room/board", "X-Forwarded-Method", "GET"},
		{"X-Forwarded-Uri", "/room/board", "X-Forwarded-Method", "GET", "X-Forwarded-For", "127.0.0.1"},
	} {
		resp := ask(t, fromAddr("127.0.0.2"), e.URL+gateway.AuthPath, append(hdr, "Authorization", "Bearer "+tok)...)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Meetguard-Assertion") != "" || resp.Header.Get("X-Meetguard-Room") != "" {
			t.Errorf("untrusted peer asking with %v: %d, room %q", hdr, resp.StatusCode, resp.Header.Get("X-Meetguard-Room"))
		}
	}
	resp := ask(t, fromAddr("127.0.0.1"), e.URL+gateway.AuthPath, "X-Forwarded-Uri", "/room/board/x?y=1", "X-Forwarded-Method", "GET", "Authorization", "Bearer "+tok)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Meetguard-Room") != "board" || resp.Header.Get("X-Meetguard-User") == "" ||
		resp.Header.Get("X-Meetguard-Assertion") == "" {
		t.Fatalf("trusted proxy: %d %v", resp.StatusCode, resp.Header)
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("forward-auth sent %d requests upstream", n)
	}
}

// TestForwardAuth_AmbiguousQuestionsRefused: a client that adds the URI
// header the front proxy does not set, or a second method, makes the
// question ambiguous; it is refused rather than answered for either path.
func TestForwardAuth_AmbiguousQuestionsRefused(t *testing.T) {
	e := newEnv(t, envOptions{mutate: trustLoopbackOne})
	tok := e.idToken()
	c := fromAddr("127.0.0.1")
	for name, hdr := range map[string][]string{
		"both URI headers":  {"X-Original-URI", "/room/a", "X-Forwarded-Uri", "/public", "X-Forwarded-Method", "GET"},
		"URI header twice":  {"X-Forwarded-Uri", "/room/a", "X-Forwarded-Uri", "/public", "X-Forwarded-Method", "GET"},
		"no method":         {"X-Forwarded-Uri", "/room/a"},
		"two methods":       {"X-Forwarded-Uri", "/room/a", "X-Forwarded-Method", "GET", "X-Forwarded-Method", "POST"},
		"absolute URI":      {"X-Forwarded-Uri", "http://evil.test/room/a", "X-Forwarded-Method", "GET"},
		"dot segments":      {"X-Forwarded-Uri", "/public/../room/a", "X-Forwarded-Method", "GET"},
		"encoded slash":     {"X-Forwarded-Uri", "/room/a%2f..%2fb", "X-Forwarded-Method", "GET"},
		"lower-case method": {"X-Forwarded-Uri", "/room/a", "X-Forwarded-Method", "get"},
		"h2c upgrade":       {"X-Forwarded-Uri", "/room/a", "X-Forwarded-Method", "GET", "Upgrade", "h2c"},
		"incomplete ws key": {"X-Forwarded-Uri", "/room/a", "X-Forwarded-Method", "GET", "Sec-WebSocket-Key", "short"},
		"no URI":            {"X-Forwarded-Method", "GET"},
	} {
		resp := ask(t, c, e.URL+gateway.AuthPath, append(hdr, "Authorization", "Bearer "+tok)...)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, resp.StatusCode)
		}
	}
}

// TestForwardAuth_LoginAndNginxMode: a browser without a session is sent
// to sign in and back to the path the proxy asked about; in nginx mode the
// same answer is a 401 carrying the Location, and a refusal nginx would
// turn into an error is a 403 with the real status beside it.
func TestForwardAuth_LoginAndNginxMode(t *testing.T) {
	e := newEnv(t, envOptions{mutate: trustLoopbackOne})
	c := fromAddr("127.0.0.1")
	q := []string{"X-Original-URI", "/room/board?x=1", "X-Forwarded-Method", "GET", "Accept", "text/html"}
	resp := ask(t, c, e.URL+gateway.AuthPath, q...)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.meetguard/login?rd=%2Froom%2Fboard%3Fx%3D1" {
		t.Fatalf("browser without session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = ask(t, c, e.URL+gateway.AuthPath+"?mode=nginx", q...)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "/.meetguard/login?rd=%2Froom%2Fboard%3Fx%3D1" || resp.Header.Get("X-Meetguard-Status") != "302" {
		t.Fatalf("nginx mode: %d %v", resp.StatusCode, resp.Header)
	}
	resp = ask(t, c, e.URL+gateway.AuthPath, "X-Original-URI", "/room/board", "X-Forwarded-Method", "GET")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("app without token: %d %v", resp.StatusCode, resp.Header)
	}
	resp = ask(t, c, e.URL+gateway.AuthPath+"?mode=nginx", "X-Original-URI", "/.meetguard/nothing", "X-Forwarded-Method", "GET", "Authorization", "Bearer "+e.idToken())
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Meetguard-Status") != "404" {
		t.Fatalf("nginx mode, own path: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestForwardAuth_CrossSiteWebSocketRefused: nginx drops Upgrade and
// Connection from its auth request, but a cross-site WebSocket handshake
// still shows by its key and is judged as one: refused for a cookie
// session from a foreign origin.
func TestForwardAuth_CrossSiteWebSocketRefused(t *testing.T) {
	e := newEnv(t, envOptions{mutate: trustLoopbackOne})
	b, _ := e.login("/")
	c := fromAddr("127.0.0.1")
	c.Jar = b.Jar
	ws := []string{"X-Original-URI", "/room/board/ws", "X-Forwarded-Method", "GET", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}
	resp := ask(t, c, e.URL+gateway.AuthPath, append(ws, "Origin", "https://evil.test")...)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site WebSocket: %d", resp.StatusCode)
	}
	resp = ask(t, c, e.URL+gateway.AuthPath, append(ws, "Origin", e.URL)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin WebSocket: %d", resp.StatusCode)
	}
}
