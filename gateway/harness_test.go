package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/session"
)

// roleAdmitter admits every authenticated caller to every room as a
// participant. The core tests are about identity and proxying; room
// admission by policy is tested with the real policy engine.
type roleAdmitter struct{}

func (roleAdmitter) AdmitRequest(_ context.Context, req admission.Request) (admission.Result, error) {
	return admission.Result{Outcome: admission.Admitted, Role: "participant", ParticipantID: "p-" + req.Identity.Subject}, nil
}

// env is a running gateway in front of a recording upstream, with an
// in-memory audit log.
type env struct {
	t     testing.TB
	idp   *testidp.IdP
	up    *gwtest.Upstream // nil when envOptions.upstreamURL is set
	gw    *gateway.Gateway
	URL   string
	store *session.MemoryStore
	audit *gwtest.MemoryAudit
	authn *auth.Authenticator
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
	e := &env{t: t, audit: &gwtest.MemoryAudit{}}
	upstreamURL := o.upstreamURL
	if upstreamURL == "" {
		e.up = gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
		upstreamURL = e.up.URL
	}
	g := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: upstreamURL}},
		Configure: func(c *config.Config) {
			c.Limits.ReadHeaderTimeout = 500 * time.Millisecond
			if o.mutate != nil {
				o.mutate(c)
			}
		},
		Admitter: roleAdmitter{},
		Audit:    e.audit,
		Logger:   o.logger,
		Clock:    o.clock,
	})
	e.idp, e.gw, e.URL, e.store, e.authn = g.IdP, g.Gateway, g.URL, g.Sessions, g.Auth
	return e
}

// login runs the full browser flow and returns the logged-in client.
func (e *env) login(path string) (*http.Client, *http.Response) {
	e.t.Helper()
	c := browsertest.Client(e.t)
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
