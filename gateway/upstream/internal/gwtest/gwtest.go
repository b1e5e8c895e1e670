// Package gwtest runs the real gateway (gateway.New with the real OIDC
// authenticator against the test identity provider) on 127.0.0.1 for the
// upstream adapters' end-to-end tests. Admission is the test's own
// Admitter: the adapters are tested on what happens after a decision, the
// policy engine has its own tests.
//
// It is for tests only and never listens beyond loopback.
package gwtest

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/session"
)

// Options configures a gateway.
type Options struct {
	Upstreams []config.Upstream
	// Adapters builds the adapters once the public URL is known.
	Adapters func(publicURL string) map[string]gateway.Adapter
	// Admitter decides; default RoomRoles{} (everyone a participant).
	Admitter gateway.Admitter
}

// Env is a running gateway.
type Env struct {
	URL string
	IdP *testidp.IdP
	GW  *gateway.Gateway
}

// Start runs a gateway until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	idp := testidp.Start(t, public+auth.CallbackPath)
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: public,
		OIDC: config.OIDC{
			Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			KeyRefetchInterval: time.Hour,
		},
		Session:   config.Session{Secret: strings.Repeat("s", 32)},
		Upstreams: o.Upstreams,
		Admin:     config.Admin{Listen: ""},
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	store := session.NewMemory(ctx, session.MemoryOptions{})
	codec, err := session.NewCodec([]byte(cfg.Session.Secret))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(public)
	authn, err := auth.New(ctx, auth.Options{
		Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
		Scopes: cfg.OIDC.Scopes, Audiences: cfg.OIDC.Audiences, GroupsClaim: cfg.OIDC.GroupsClaim,
		PublicURL: pub, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		KeyRefetchInterval: cfg.OIDC.KeyRefetchInterval, SessionTTL: cfg.Session.TTL,
		Store: store, Codec: codec, Audit: nopAudit{},
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := assertion.New(assertion.Options{Issuer: public, TTL: cfg.Assertion.TTL})
	if err != nil {
		t.Fatal(err)
	}
	adm := o.Admitter
	if adm == nil {
		adm = RoomRoles{}
	}
	var adapters map[string]gateway.Adapter
	if o.Adapters != nil {
		adapters = o.Adapters(public)
	}
	gw, err := gateway.New(gateway.Options{Config: cfg, Auth: authn, Admitter: adm, Assertion: signer, Audit: nopAudit{}, Adapters: adapters})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gateway.Serve(ctx, gateway.ServerOptions{Config: cfg, Gateway: gw, Listener: ln})
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for authn.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("provider never became ready: %v", authn.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Env{URL: public, IdP: idp, GW: gw}
}

// Subject is the subject of the tokens Bearer signs, by default.
const Subject = "id1"

// Bearer is an ID token for the gateway's client from the test provider,
// for subject (default Subject).
func (e *Env) Bearer(t testing.TB, subject string) string {
	t.Helper()
	c := e.IdP.Claims(e.IdP.ClientID)
	if subject != "" {
		c["sub"] = subject
	}
	return e.IdP.Sign(t, c, "")
}

// RoomRoles admits every caller to every room, with the role set for the
// room ("participant" when unset), and refuses rooms in Deny. The
// participant id is subject/room, so each person has one admission per
// room.
type RoomRoles struct {
	Roles map[string]string
	Deny  map[string]bool
}

// AdmitRequest implements gateway.Admitter.
func (r RoomRoles) AdmitRequest(_ context.Context, req gateway.RoomRequest) (gateway.Admission, error) {
	if r.Deny[req.Room] {
		return gateway.Admission{Outcome: gateway.Denied, UserMessage: "no"}, nil
	}
	role := r.Roles[req.Room]
	if role == "" {
		role = "participant"
	}
	return gateway.Admission{Outcome: gateway.Admitted, Role: role, ParticipantID: ParticipantID(req.Identity.Subject, req.Room)}, nil
}

// ParticipantID is the id RoomRoles gives an admission.
func ParticipantID(subject, room string) string { return subject + "/" + room }

type nopAudit struct{}

func (nopAudit) Record(context.Context, string, ...zap.Field) error { return nil }
func (nopAudit) Ready() error                                       { return nil }

// Recorder is an upstream that records what reached it.
type Recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

// Record stores a copy of r.
func (rec *Recorder) Record(r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
	rec.mu.Unlock()
}

// Requests are the recorded requests so far.
func (rec *Recorder) Requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}
