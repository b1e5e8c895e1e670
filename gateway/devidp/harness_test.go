package devidp

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"go.uber.org/zap/zaptest"
	"golang.org/x/oauth2"
)

const (
	testSecret   = "correct horse battery staple"
	testCallback = "http://127.0.0.1:9/.meetguard/callback"
	otherCallbak = "http://127.0.0.1:9/other/callback"
	testBye      = "http://127.0.0.1:9/signed-out"
)

// clock is a settable clock shared by the provider and the verifiers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	idp    *Provider
	srv    *httptest.Server
	issuer string
	clock  *clock
	oidc   *oidc.Provider
	cfg    oauth2.Config // the confidential "gateway" client
}

// newHarness serves a Provider under /.dev-idp on a real 127.0.0.1 listener
// and discovers it with go-oidc, as the gateway does.
func newHarness(t *testing.T) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h := &harness{
		issuer: "http://" + ln.Addr().String() + "/.dev-idp",
		clock:  &clock{t: time.Now()},
	}
	h.idp, err = New(Options{
		Issuer: h.issuer,
		Clients: []Client{
			{
				ID: "gateway", Secret: testSecret, Name: "meetguard",
				RedirectURIs:           []string{testCallback, otherCallbak},
				PostLogoutRedirectURIs: []string{testBye},
			},
			{ID: "cli", RedirectURIs: []string{"http://127.0.0.1:9/cli"}},
		},
		Logger: zaptest.NewLogger(t),
		Clock:  h.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h.idp}}
	h.srv.Start()
	t.Cleanup(h.srv.Close)

	h.oidc, err = oidc.NewProvider(context.Background(), h.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	h.cfg = oauth2.Config{
		ClientID:     "gateway",
		ClientSecret: testSecret,
		Endpoint:     h.oidc.Endpoint(),
		RedirectURL:  testCallback,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "offline_access"},
	}
	return h
}

var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// openLogin GETs an authorization URL and returns the login request id from
// the page.
func openLogin(t *testing.T, c *http.Client, authURL string) string {
	t.Helper()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize: status %d: %s", resp.StatusCode, body)
	}
	m := requestField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login page has no request field: %s", body)
	}
	return m[1]
}

// submitLogin posts the login form and returns the response.
func (h *harness) submitLogin(t *testing.T, c *http.Client, form url.Values, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.issuer+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	return resp
}

// login runs the browser half of the code flow and returns the redirect the
// relying party would receive.
func (h *harness) login(t *testing.T, authURL, user string) *url.URL {
	t.Helper()
	c := browsertest.NoFollow(browsertest.Client(t))
	id := openLogin(t, c, authURL)
	resp := h.submitLogin(t, c, url.Values{"request": {id}, "user": {user}}, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST login: status %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("login redirect: %v", err)
	}
	return loc
}

// authCode logs alice in with a fresh PKCE verifier and returns the code.
func (h *harness) authCode(t *testing.T, verifier string) string {
	t.Helper()
	loc := h.login(t, h.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n")), "alice")
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code
}

func (h *harness) postForm(t *testing.T, path string, form url.Values, basicUser, basicPass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(readAll(t, resp)), &out); err != nil {
		t.Fatalf("POST %s: body is not JSON: %v", path, err)
	}
	return resp.StatusCode, resp.Header, out
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func oauthCode(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	return ""
}
