package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/session"
)

// upstream is a real HTTP/WebSocket server that records what reached it.
type upstream struct {
	URL string
	mu  sync.Mutex
	got []*http.Request
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, r.Clone(context.Background()))
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/ws") {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, msg); err != nil {
					return
				}
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream:"+r.URL.EscapedPath())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.got...)
}

func (u *upstream) reset() {
	u.mu.Lock()
	u.got = nil
	u.mu.Unlock()
}

// memAudit collects audit events in memory for the core tests; the audit
// package's own tests cover durability and tamper evidence.
type memAudit struct {
	mu     sync.Mutex
	events []string
	fail   error
}

func (a *memAudit) Record(_ context.Context, event string, _ ...zap.Field) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.events = append(a.events, event)
	return nil
}

func (a *memAudit) Ready() error { return a.fail }

func (a *memAudit) has(event string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e == event {
			return true
		}
	}
	return false
}

// roleAdmitter admits every authenticated caller to every room as a
// participant. The core tests are about identity and proxying; room
// admission by policy is tested with the real policy engine.
type roleAdmitter struct{}

func (roleAdmitter) AdmitRequest(_ context.Context, req gateway.RoomRequest) (gateway.Admission, error) {
	return gateway.Admission{Outcome: gateway.Admitted, Role: "participant", ParticipantID: "p-" + req.Identity.Subject}, nil
}

type env struct {
	t      testing.TB
	idp    *testidp.IdP
	up     *upstream
	gw     *gateway.Gateway
	URL    string
	store  *session.MemoryStore
	audit  *memAudit
	signer *assertion.Signer
	cfg    *config.Config
	authn  *auth.Authenticator
}

type envOptions struct {
	mutate func(*config.Config)
	// upstreamURL replaces the recording upstream (benchmarks).
	upstreamURL string
	// logger is the gateway's operational logger; default none.
	logger *zap.Logger
	// clock drives the authenticator's notion of now; default time.Now.
	clock func() time.Time
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	return newEnvTB(t, o)
}

func newEnvTB(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	idp := testidp.Start(t, public+auth.CallbackPath)
	up := &upstream{URL: o.upstreamURL}
	if o.upstreamURL == "" {
		up = startUpstream(t)
	}
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: public,
		OIDC: config.OIDC{
			Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			KeyRefetchInterval: time.Hour,
		},
		Session:   config.Session{Secret: strings.Repeat("s", 32)},
		Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
		Limits:    config.Limits{ReadHeaderTimeout: 500 * time.Millisecond},
	}
	if o.mutate != nil {
		o.mutate(cfg)
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	store := session.NewMemory(ctx, session.MemoryOptions{})
	codec, err := session.NewCodec([]byte(cfg.Session.Secret))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(cfg.PublicURL)
	audit := &memAudit{}
	e := &env{t: t, idp: idp, up: up, URL: public, store: store, audit: audit, cfg: cfg}
	var gw *gateway.Gateway
	authn, err := auth.New(ctx, auth.Options{
		Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
		Scopes: cfg.OIDC.Scopes, Audiences: cfg.OIDC.Audiences, GroupsClaim: cfg.OIDC.GroupsClaim,
		PublicURL: pub, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		KeyRefetchInterval: cfg.OIDC.KeyRefetchInterval, SessionTTL: cfg.Session.TTL,
		Store: store, Codec: codec, Audit: audit, Clock: o.clock,
		OnLogout: func(id string) {
			gw.Live().Close(func(m liveconn.Meta) bool { return m.SessionID == id })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := assertion.New(assertion.Options{Issuer: public, TTL: cfg.Assertion.TTL})
	if err != nil {
		t.Fatal(err)
	}
	gw, err = gateway.New(gateway.Options{Config: cfg, Auth: authn, Admitter: roleAdmitter{}, Assertion: signer, Audit: audit, Logger: o.logger})
	if err != nil {
		t.Fatal(err)
	}
	e.gw, e.signer, e.authn = gw, signer, authn
	go func() {
		_ = gateway.Serve(ctx, gateway.ServerOptions{Config: cfg, Gateway: gw, Listener: ln})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for authn.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("provider never became ready: %v", authn.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects off the test's servers.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// login runs the full browser flow and returns the logged-in client.
func (e *env) login(path string) (*http.Client, *http.Response) {
	e.t.Helper()
	c := browser(e.t)
	resp := e.idp.BrowserLogin(e.t, c, e.URL+path)
	return c, resp
}

// idToken is a token signed with the provider's own key and kid, with
// valid claims for the gateway's client.
func (e *env) idToken() string {
	return e.idp.Sign(e.t, e.idp.Claims(e.idp.ClientID), "")
}

func get(t testing.TB, c *http.Client, u string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode: %v", err)
	}
}
