package roomsapi_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// upstream is the recording meeting-server stand-in; its answers name the
// path and the X-Meetguard-User header the gateway sent.
type upstream struct{ *gwtest.Upstream }

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	return &upstream{gwtest.StartUpstream(t, gwtest.UpstreamOptions{Body: func(r *http.Request) string {
		return "upstream:" + r.URL.Path + ":" + r.Header.Get("X-Meetguard-User")
	}})}
}

// requestsBy lists the requests that reached the upstream for a subject.
func (u *upstream) requestsBy(sub string) []*http.Request {
	var out []*http.Request
	for _, r := range u.Requests() {
		if r.Header.Get("X-Meetguard-User") == sub {
			out = append(out, r)
		}
	}
	return out
}

type clusterOptions struct {
	nodes int
	redis bool
	// rooms tweaks the room state config of every node.
	rooms func(*rooms.Config)
	// policyConfig edits data.json's meetguard.config before loading.
	policyConfig func(map[string]any)
	// trustLoopback makes 127.0.0.1 a trusted proxy, so tests can set a
	// client IP with X-Forwarded-For.
	trustLoopback bool
	leaveGrace    time.Duration
	sweep         time.Duration
	// auditAsync writes the audit log without waiting for fsync
	// (benchmarks of the CPU cost alone).
	auditAsync bool
	adapters   map[string]admission.Adapter
	devices    roomsapi.Devices
	logger     *zap.Logger
	// clock is the memory store's clock (rooms end, bans lapse); default
	// time.Now.
	clock func() time.Time
	// configure edits every node's gateway config (oidc settings).
	configure func(*config.Config)
	// upstreamURL replaces the recording upstream (e.g. the demo app).
	upstreamURL string
	// policyTimeout is the decision deadline (default 1s); tests whose
	// answers depend on every decision being made raise it, so that a
	// loaded machine's fail-closed refusals do not read as wrong answers.
	policyTimeout time.Duration
}

type node struct {
	URL       string
	api       *roomsapi.API
	gw        *gateway.Gateway
	live      *liveconn.Registry
	store     rooms.Store
	auditPath string
	alog      *audit.Log
}

type cluster struct {
	t      testing.TB
	idp    *testidp.IdP
	up     *upstream
	nodes  []*node
	redis  *redistest.Server
	engine *policy.Engine
	// trips counts the nodes' requests to Redis (the room store's client).
	trips roundTrips
}

// roundTrips is a go-redis hook counting requests sent to Redis: one per
// command, one per pipeline, and a script's EVALSHA and (on NOSCRIPT) its
// EVAL each count. Commands a script runs inside Redis are not requests.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// newCluster runs real gateways (auth against a real OpenID provider, the
// shipped policy, a durable audit log, the rooms API, a real upstream)
// sharing one room state: one memory store, or one real Redis for several
// nodes.
func newCluster(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 1
	}
	if o.nodes > 1 && !o.redis {
		t.Fatal("several nodes need the Redis store")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{t: t}
	lns := make([]net.Listener, o.nodes)
	var callbacks []string
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		callbacks = append(callbacks, "http://"+ln.Addr().String()+auth.CallbackPath)
	}
	c.idp = testidp.Start(t, callbacks...)
	c.up = startUpstream(t)
	c.engine = loadPolicy(t, ctx, o.policyConfig, o.policyTimeout)
	if o.redis {
		c.redis = redistest.Start(t)
	}
	ticketKey := hex.EncodeToString(randomBytes(32))
	roomCfg := rooms.Config{}
	if o.rooms != nil {
		o.rooms(&roomCfg)
	}
	roomCfg = roomCfg.WithDefaults()
	logger := o.logger
	if logger == nil {
		logger = zap.NewNop()
	}
	// The Redis clients come before the cleanup below, so they close only
	// after the stores that use them.
	redisClients := make([]*redis.Client, o.nodes)
	if o.redis {
		for i := range redisClients {
			redisClients[i] = c.redis.Client(t)
			redisClients[i].AddHook(&c.trips)
		}
	}
	var closers []func()
	// Registered before any gateway starts, so it runs after they have all
	// stopped: the stores and audit logs outlive the gateways' requests.
	t.Cleanup(func() {
		cancel()
		for _, f := range closers {
			f()
		}
	})
	for i, ln := range lns {
		n := &node{URL: "http://" + ln.Addr().String()}
		var err error
		if o.redis {
			n.store, err = redisstore.New(ctx, redisstore.Options{Client: redisClients[i], Rooms: roomCfg, KeyPrefix: "mg:"})
		} else {
			n.store, err = memstore.New(ctx, memstore.Options{Rooms: roomCfg, Now: o.clock})
		}
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		n.auditPath = filepath.Join(dir, "audit.log")
		key, err := audit.GenerateKey(filepath.Join(dir, "audit.key"))
		if err != nil {
			t.Fatal(err)
		}
		sync := audit.SyncDurable
		if o.auditAsync {
			sync = audit.SyncAsync
		}
		alog, err := audit.Open(ctx, audit.Options{Path: n.auditPath, SigningKey: key, Sync: sync, StrictSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		n.alog = alog
		st := n.store
		closers = append(closers, func() { _ = st.Close(); _ = alog.Close() })
		// Small Argon2id costs keep the suite fast; the defaults are
		// measured in the rooms package.
		passcodes, err := rooms.NewPasscodes(rooms.PasscodeOptions{Params: rooms.PasscodeParams{MemoryKiB: 256, Time: 1, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		kind := "memory"
		if o.redis {
			kind = "redis"
		}
		g := gwtest.Start(t, gwtest.Options{
			Listener:  ln,
			IdP:       c.idp,
			Upstreams: []config.Upstream{{Name: "demo", URL: cmp.Or(o.upstreamURL, c.up.URL)}},
			Configure: func(cfg *config.Config) {
				cfg.Limits.ReadHeaderTimeout = 5 * time.Second
				cfg.Rooms.TicketKey = ticketKey
				if o.trustLoopback {
					cfg.TrustedProxies = []string{"127.0.0.1/32"}
				}
				if o.configure != nil {
					o.configure(cfg)
				}
			},
			Audit:  alog,
			Policy: c.engine,
			Rooms:  n.store,
			Adapters: func(string) map[string]admission.Adapter {
				return o.adapters
			},
			// The rooms API is the gateway's admitter, readiness check and API.
			RoomsAPI: func(_ *app.App, ro *roomsapi.Options) {
				ro.Passcodes, ro.Rooms, ro.LobbyByDefault, ro.StoreKind = passcodes, roomCfg, true, kind
				ro.Logger, ro.LeaveGrace, ro.SweepInterval = logger.Named("node"+string(rune('A'+i))), o.leaveGrace, o.sweep
				if o.devices != nil {
					ro.Devices = o.devices
				}
			},
		})
		n.api, n.live = g.App.RoomsAPI, g.App.Live
		n.gw = g.Gateway
		c.nodes = append(c.nodes, n)
	}
	return c
}

// loadPolicy loads the shipped policy, with data.json's settings edited.
func loadPolicy(t testing.TB, ctx context.Context, edit func(map[string]any), timeout time.Duration) *policy.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := policies.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		path := filepath.Join(dir, "data.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		if err := json.Unmarshal(b, &data); err != nil {
			t.Fatal(err)
		}
		edit(data["meetguard"].(map[string]any)["config"].(map[string]any))
		if b, err = json.Marshal(data); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := policy.New(ctx, policy.Options{Dir: dir, Timeout: cmp.Or(timeout, time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// who is a test identity: staff have a verified address in the shipped
// policy's staff domain, guests do not; hosts are in meeting-hosts.
type who struct {
	sub    string
	email  string
	groups []string
}

func staff(name string) who { return who{sub: name, email: name + "@example.com"} }
func guest(name string) who { return who{sub: name, email: name + "@guest.test"} }
func host(name string) who {
	return who{sub: name, email: name + "@example.com", groups: []string{"meeting-hosts"}}
}

// token is a bearer token the real provider's key signed; each call gives
// a new token for the same subject.
func (c *cluster) token(w who) string {
	cl := c.idp.Claims(c.idp.ClientID)
	cl["sub"], cl["email"], cl["name"] = w.sub, w.email, w.sub
	cl["groups"] = w.groups
	if w.groups == nil {
		cl["groups"] = []string{}
	}
	cl["jti"] = hex.EncodeToString(randomBytes(8))
	return c.idp.Sign(c.t, cl, "")
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("status %d, body %q: %v", r.Status, r.Body, err)
	}
	return m
}

func (r reply) str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.json(t)[key].(string)
	return s
}

var apiClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}

// call makes one request; hdr are header name/value pairs.
func call(t testing.TB, client *http.Client, method, u, token string, body any, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if client == nil {
		client = apiClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (n *node) apiURL(path string) string { return n.URL + roomsapi.Prefix + path }

// createRoom makes a room as host h and applies settings.
func (c *cluster) createRoom(n *node, h who, room string, settings map[string]any) {
	c.t.Helper()
	if settings == nil {
		settings = map[string]any{}
	}
	r := call(c.t, nil, http.MethodPut, n.apiURL(room), c.token(h), settings)
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		c.t.Fatalf("create room %s: %d %s", room, r.Status, r.Body)
	}
}

// join calls the join API and returns the reply.
func (c *cluster) join(n *node, token, room string, body any) reply {
	c.t.Helper()
	return call(c.t, nil, http.MethodPost, n.apiURL(room+"/join"), token, body)
}

// mustJoin joins and returns ticket and participant id.
func (c *cluster) mustJoin(n *node, w who, room string) (ticket, pid string) {
	c.t.Helper()
	r := c.join(n, c.token(w), room, nil)
	if r.Status != http.StatusOK {
		c.t.Fatalf("%s joining %s: %d %s", w.sub, room, r.Status, r.Body)
	}
	return r.str(c.t, "ticket"), r.str(c.t, "participant_id")
}

// dialRoom opens a WebSocket through node n to the room's upstream socket.
func dialRoom(t testing.TB, n *node, room, token, ticket string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if ticket != "" {
		h.Set(roomsapi.TicketHeader, ticket)
	}
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/room/"+room+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial room %s: %v (status %d)", room, err, status)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func echo(ctx context.Context, ws *websocket.Conn, msg string) error {
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return err
	}
	_, got, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// auditEntries reads every record of the nodes' audit logs.
func (c *cluster) auditEntries() []*audit.Entry {
	c.t.Helper()
	var out []*audit.Entry
	for _, n := range c.nodes {
		_, err := audit.ReadEntries(context.Background(), []string{n.auditPath}, func(e *audit.Entry) error {
			out = append(out, e)
			return nil
		})
		if err != nil {
			c.t.Fatal(err)
		}
	}
	return out
}

// login signs a browser in through the provider's real login form. The
// provider's test user has an address outside the staff domain: a guest.
func (c *cluster) login(n *node) *http.Client {
	c.t.Helper()
	cl := browsertest.Client(c.t)
	resp := c.idp.BrowserLogin(c.t, cl, n.URL+auth.LoginPath+"?rd=/")
	resp.Body.Close()
	return browsertest.NoFollow(cl)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
