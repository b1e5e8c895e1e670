package e2eeapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
	"github.com/meetguard/meetguard/gateway/syncbuf"
)

// preRegistering is the membership the rooms API provides, reduced to what these tests need and backed by the
// real rooms store and tickets: members are ticket holders (TicketMembership), and a caller who is not a member
// yet may register a key in a room that requires e2ee when the room would take it in (exists, not banned, not
// locked, no lobby), which stands in for the policy's verdict. Like the rooms API, it reads the caller's device
// facts to decide (the policy input has them), so a registration asks DeviceFacts while it is under way. Hosts
// are forecast for the room's owner.
type preRegistering struct {
	e2eeapi.TicketMembership
	rooms rooms.Store
	env   *env
}

func (m preRegistering) CanRegisterKey(r *http.Request, room string) error {
	if _, err := m.Member(r, room); err == nil {
		return nil
	}
	id, _ := identity.From(r.Context())
	if _, err := m.env.api.DeviceFacts(r.Context(), room, id); err != nil {
		return err
	}
	f, err := m.rooms.Facts(r.Context(), room, rooms.SubjectKey(id.Key()))
	if err != nil {
		return err
	}
	if !f.Exists || f.Banned || f.Locked || f.LobbyEnabled || !f.E2EERequired {
		return errors.New("the policy would not admit this caller")
	}
	return nil
}

func (m preRegistering) ForecastRole(r *http.Request, room string) (string, error) {
	id, _ := identity.From(r.Context())
	if _, err := m.env.api.DeviceFacts(r.Context(), room, id); err != nil {
		return "", err
	}
	f, err := m.rooms.Facts(r.Context(), room, rooms.SubjectKey(id.Key()))
	if err != nil {
		return "", err
	}
	if f.Owner == rooms.SubjectKey(id.Key()) {
		return string(rooms.RoleHost), nil
	}
	return string(rooms.RoleParticipant), nil
}

// refusingAdmitter turns every proxied room request away: these tests only use the gateway's API.
type refusingAdmitter struct{}

func (refusingAdmitter) AdmitRequest(context.Context, admission.Request) (admission.Result, error) {
	return admission.Result{Outcome: admission.Denied}, nil
}

// env is a real gateway (OIDC bearer tokens from an independent provider, real audit log, rooms memory store,
// tickets) with the e2ee API mounted as the lead mounts it, on 127.0.0.1.
type env struct {
	t         testing.TB
	ctx       context.Context
	URL       string
	idp       *testidp.IdP
	authn     *auth.Authenticator
	rooms     rooms.Store
	tickets   *rooms.Tickets
	api       *e2eeapi.Handler
	store     e2eestore.Store
	e2eeKey   ed25519.PrivateKey
	auditLog  *audit.Log
	auditPath string
	logs      *syncbuf.Buffer
	metrics   *prometheus.Registry
}

type envOptions struct {
	// audit replaces the audit log as the e2ee API's auditor.
	audit e2eeapi.Auditor
	// membership replaces the pre-registering membership.
	membership func(e *env) e2eeapi.Membership
	classic    bool
	maxWait    time.Duration
	maxBundle  int64
	// meeting configures the meeting page (browser tests).
	meeting e2eeapi.MeetingPage
	// credentialTTL is the e2ee credentials' lifetime (default 24 h).
	credentialTTL time.Duration
	// sweep is how often the follower reconciles every meeting besides on
	// events (default one minute).
	sweep time.Duration
	// node makes this gateway a node of a cluster: it shares peer's identity provider and e2ee authority key (nil
	// for the first node) and uses the rooms and e2ee stores stores returns, which all nodes share.
	node *clusterNode
}

// clusterNode configures one gateway node of several sharing their state.
type clusterNode struct {
	peer   *env
	stores func(t testing.TB) (rooms.Store, e2eestore.Store)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	e := &env{t: t, ctx: ctx, URL: public, logs: &syncbuf.Buffer{}}
	if o.node != nil && o.node.peer != nil {
		e.idp = o.node.peer.idp
	} else {
		e.idp = testidp.Start(t, public+auth.CallbackPath)
	}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), e.logs, zap.DebugLevel))

	e.auditPath = filepath.Join(t.TempDir(), "audit.log")
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: public,
		OIDC: config.OIDC{
			Issuer: e.idp.URL, ClientID: e.idp.ClientID, ClientSecret: e.idp.ClientSecret, KeyRefetchInterval: time.Hour,
		},
		Session:   config.Session{Secret: strings.Repeat("s", 32)},
		Upstreams: []config.Upstream{{Name: "demo", URL: "http://127.0.0.1:9"}},
		Limits:    config.Limits{ReadHeaderTimeout: 2 * time.Second},
		Audit:     config.Audit{Path: e.auditPath},
		Rooms:     config.Rooms{TicketKey: strings.Repeat("\x07", 32), TicketTTL: time.Hour},
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	if o.node != nil {
		e.rooms, e.store = o.node.stores(t)
	} else {
		if e.rooms, err = memstore.New(ctx, memstore.Options{Logger: logger}); err != nil {
			t.Fatal(err)
		}
		e.store = e2eestore.NewMemory(nil)
	}
	t.Cleanup(func() { _ = e.rooms.Close() })
	_, e.e2eeKey, _ = ed25519.GenerateKey(nil)
	if o.node != nil && o.node.peer != nil {
		e.e2eeKey = o.node.peer.e2eeKey
	}
	a, err := app.New(ctx, cfg, app.Deps{
		Listener: ln, Logger: logger, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		StrictAudit: true, AuditSync: audit.SyncAsync, Rooms: e.rooms,
		Admitter: refusingAdmitter{},
		E2EE: func(a *app.App, eo *e2eeapi.Options) {
			// The parts a membership may hold on to.
			e.auditLog, e.tickets = a.AuditLog, a.Tickets
			eo.Membership = preRegistering{TicketMembership: e2eeapi.TicketMembership{Store: e.rooms, Tickets: e.tickets}, rooms: e.rooms, env: e}
			if o.membership != nil {
				eo.Membership = o.membership(e)
			}
			if o.audit != nil {
				eo.Audit = o.audit
			}
			eo.SigningKey, eo.Store, eo.MaxWait, eo.MaxBundleBytes = e.e2eeKey, e.store, o.maxWait, o.maxBundle
			eo.CredentialTTL, eo.SweepInterval = o.credentialTTL, o.sweep
			eo.AllowClassicKEM = func(context.Context, string) (bool, error) { return o.classic, nil }
			eo.Meeting = o.meeting
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.authn, e.api, e.metrics = a.Auth, a.E2EE, a.Metrics
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-served; _ = a.Close(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for e.authn.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("provider never became ready: %v", e.authn.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

// createRoom makes a room owned by owner (nil: a placeholder owner).
func (e *env) createRoom(id string, owner *user, change rooms.SettingsChange) {
	e.t.Helper()
	o := rooms.SubjectKey("nobody|owner")
	if owner != nil {
		o = rooms.SubjectKey(owner.id.Key())
	}
	if _, err := e.rooms.Put(e.ctx, id, o, change); err != nil {
		e.t.Fatal(err)
	}
}

// user is a person with a bearer token signed by the provider's real key, as the gateway verifies it.
type user struct {
	name    string
	token   string
	id      identity.Identity
	mu      sync.Mutex
	tickets map[string]string
	pids    map[string]rooms.ParticipantID
}

func (e *env) user(name string) *user {
	e.t.Helper()
	claims := e.idp.Claims(e.idp.ClientID)
	claims["sub"] = name + "-sub"
	claims["name"] = strings.ToUpper(name[:1]) + name[1:]
	claims["email"] = name + "@example.com"
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	tok := e.idp.Sign(e.t, claims, "")
	id, err := e.authn.VerifyBearer(e.ctx, tok)
	if err != nil {
		e.t.Fatalf("token for %s: %v", name, err)
	}
	return &user{name: name, token: tok, id: id, tickets: map[string]string{}, pids: map[string]rooms.ParticipantID{}}
}

// admit lets u into room in the rooms store and gives it a ticket, as the rooms API's join does.
func (e *env) admit(u *user, room string, role rooms.Role) rooms.Participant {
	e.t.Helper()
	p, err := e.rooms.Admit(e.ctx, rooms.Admission{Room: room, Subject: rooms.SubjectKey(u.id.Key()), Name: u.name, Role: role})
	if err != nil {
		e.t.Fatalf("admit %s: %v", u.name, err)
	}
	tok, _, err := e.tickets.Issue(room, p, u.id.SessionID)
	if err != nil {
		e.t.Fatal(err)
	}
	u.mu.Lock()
	u.tickets[room], u.pids[room] = tok, p.ID
	u.mu.Unlock()
	return p
}

func (u *user) authorize(room string) func(*http.Request) error {
	return func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+u.token)
		u.mu.Lock()
		defer u.mu.Unlock()
		if t := u.tickets[room]; t != "" {
			r.Header.Set(e2eeapi.TicketHeader, t)
		}
		return nil
	}
}

func (e *env) transport(u *user, room string) *e2eehttp.Transport {
	e.t.Helper()
	tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: e.URL, Room: room, Authorize: u.authorize(room), MaxWait: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return tr
}

// client is u's SDK client over HTTP, trusting the authority key configured out of band.
func (e *env) client(u *user, room string, kem e2ee.KEM) *e2ee.Client {
	e.t.Helper()
	c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: e.transport(u, room), AuthorityKey: e.api.PublicKey(), Room: room, KEM: kem,
		AllowClassicKEM: kem == e2ee.KEMX25519})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run follows the meeting with c until the test ends or stop is called; Run's result is sent on the channel.
func (e *env) run(c *e2ee.Client) (stop func(), done <-chan error) {
	ctx, cancel := context.WithCancel(e.ctx)
	ch := make(chan error, 1)
	go func() { ch <- c.Run(ctx, nil) }()
	e.t.Cleanup(cancel)
	return cancel, ch
}

// settled reports whether every client holds the same head with want members and the same epoch secret
// (security code) for it.
func settled(clients []*e2ee.Client, want int) (e2ee.Status, error) {
	var first e2ee.Status
	for i, c := range clients {
		st := c.Status()
		if st.State != e2ee.StateMember || len(st.Members) != want {
			return st, fmt.Errorf("client %d: %v with %d members", i, st.State, len(st.Members))
		}
		if st.SecurityCode == "" {
			return st, fmt.Errorf("client %d has no epoch secret for epoch %d (%v)", i, st.Epoch, st.Err)
		}
		if i == 0 {
			first = st
		} else if st.Roster != first.Roster || st.SecurityCode != first.SecurityCode {
			return st, fmt.Errorf("client %d at epoch %d.%d, client 0 at %d.%d", i, st.Epoch, st.Generation, first.Epoch, first.Generation)
		}
	}
	return first, nil
}

func (e *env) settle(clients []*e2ee.Client, want int) e2ee.Status {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := settled(clients, want)
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("clients never settled: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchangeFrames checks that a frame of each of two streams each sender protects opens at every other client,
// named as that sender.
func exchangeFrames(t testing.TB, clients []*e2ee.Client) {
	t.Helper()
	for i, s := range clients {
		for stream := range uint8(2) {
			plain := []byte(fmt.Sprintf("frame %d from client %d", stream, i))
			ct, err := s.Encrypt(stream, []byte("metadata"), plain)
			if err != nil {
				t.Fatal(err)
			}
			for j, r := range clients {
				if i == j {
					continue
				}
				got, sender, err := r.Decrypt([]byte("metadata"), ct)
				if err != nil || !bytes.Equal(got, plain) || sender != s.Credential().Hash() {
					t.Fatalf("client %d cannot decrypt client %d's stream %d: %v", j, i, stream, err)
				}
			}
		}
	}
}

// call sends one raw request to an e2ee endpoint as u (nil: anonymous) with u's ticket for room.
func (e *env) call(u *user, method, room, endpoint, query string, body []byte) (*http.Response, []byte) {
	e.t.Helper()
	target := e.URL + e2eehttp.APIPath(room) + endpoint
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", e2eehttp.ContentType)
	}
	if u != nil {
		_ = u.authorize(room)(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// storeDump is everything the e2ee store holds, keys and values.
func (e *env) storeDump() []byte {
	e.t.Helper()
	entries, err := e.store.List(e.ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var b bytes.Buffer
	for _, en := range entries {
		b.WriteString(en.Key)
		b.Write(en.Value)
	}
	return b.Bytes()
}

// auditEvents reads the audit log and returns its records of event.
func (e *env) auditEvents(event string) []*audit.Entry {
	e.t.Helper()
	if err := e.auditLog.Sync(); err != nil {
		e.t.Fatal(err)
	}
	var out []*audit.Entry
	if _, err := audit.ReadEntries(e.ctx, []string{e.auditPath}, func(en *audit.Entry) error {
		if en.Event == event {
			out = append(out, en)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
