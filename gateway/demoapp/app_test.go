package demoapp

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func newTestApp(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	app, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = app.Close() })
	return srv
}

// gatewayHeaders are the headers the gateway sets for a user in a room.
func gatewayHeaders(user, email, role, room string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{HeaderUser: user, HeaderEmail: email, HeaderRole: role, HeaderRoom: room} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func get(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRoomPage_RendersIdentityFromGatewayHeaders(t *testing.T) {
	srv := newTestApp(t, Options{})
	tests := []struct {
		name       string
		header     http.Header
		wantStatus int
		want       []string
		notWant    []string
	}{
		{"host", gatewayHeaders("Alice Host", "alice@example.com", "host", "standup"), 200,
			[]string{"Room standup", "Alice Host", "alice@example.com", `<span class="badge">host</span>`, "not checked"}, nil},
		{"viewer cannot type", gatewayHeaders("Vic", "vic@example.com", "viewer", "standup"), 200,
			[]string{"Viewers cannot chat", "disabled"}, nil},
		{"unknown role falls to viewer", gatewayHeaders("Bob", "bob@example.com", "admin", "standup"), 200,
			[]string{`<span class="badge">viewer</span>`}, []string{"admin"}},
		{"missing role falls to viewer", gatewayHeaders("Bob", "bob@example.com", "", "standup"), 200,
			[]string{`<span class="badge">viewer</span>`}, nil},
		{"markup in name is escaped", gatewayHeaders(`<script>alert(1)</script>`, "x@example.com", "participant", "standup"), 200,
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>alert"}},
		{"bidi override stripped", gatewayHeaders("Eve\u202egnp.exe", "eve@guest.test", "participant", "standup"), 200,
			[]string{"Evegnp.exe"}, []string{"\u202e"}},
		{"no identity", http.Header{}, 401, []string{"gateway"}, []string{`id="roster"`}},
		{"room header for another room", gatewayHeaders("Alice", "alice@example.com", "host", "board"), 403, nil, []string{`id="roster"`}},
		{"repeated user header is no identity", http.Header{HeaderUser: {"alice", "mallory"}}, 401, nil, []string{`id="roster"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/room/standup", tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

func TestRoomPage_BadRoomNamesNotFound(t *testing.T) {
	srv := newTestApp(t, Options{})
	for _, room := range []string{"-x", ".hidden", "a%20b", strings.Repeat("a", 65), "a$b", "%C3%A9", "a%2Fb"} {
		resp, _ := get(t, srv.URL+"/room/"+room, gatewayHeaders("a", "a@x", "host", ""))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("room %q: status %d, want 404", room, resp.StatusCode)
		}
	}
}

var (
	inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	inlineStyle  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

func TestRoomPage_CSPAdmitsExactlyTheInlineCode(t *testing.T) {
	srv := newTestApp(t, Options{})
	resp, body := get(t, srv.URL+"/room/standup", gatewayHeaders("a", "a@x", "host", "standup"))
	csp := resp.Header.Get("Content-Security-Policy")
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	scripts := inlineScript.FindAllStringSubmatch(body, -1)
	styles := inlineStyle.FindAllStringSubmatch(body, -1)
	if len(scripts) != 1 || len(styles) != 1 {
		t.Fatalf("want one inline script and style, got %d and %d", len(scripts), len(styles))
	}
	for _, want := range []string{"script-src " + hash(scripts[0][1]), "style-src " + hash(styles[0][1]),
		"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page refers to an external asset")
	}
}

func TestIndex_ExplainsAndShowsNothingSensitive(t *testing.T) {
	srv := newTestApp(t, Options{})
	resp, body := get(t, srv.URL+"/", gatewayHeaders("Alice Host", "alice@example.com", "host", ""))
	if resp.StatusCode != 200 || !strings.Contains(body, "demo upstream") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "alice") {
		t.Fatal("index shows identity")
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatal("no CSP")
	}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		wantField string
	}{
		{"relative JWKS URL", Options{AssertionJWKSURL: "/jwks", AssertionIssuer: "i", AssertionAudience: "a"}, "AssertionJWKSURL"},
		{"JWKS without issuer", Options{AssertionJWKSURL: "http://127.0.0.1/jwks", AssertionAudience: "a"}, "AssertionIssuer"},
		{"JWKS without audience", Options{AssertionJWKSURL: "http://127.0.0.1/jwks", AssertionIssuer: "i"}, "AssertionAudience"},
		{"wildcard origin", Options{OriginPatterns: []string{"*"}}, "OriginPatterns[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantField)
			}
		})
	}
}

// fixedClock is a settable clock.
type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }
