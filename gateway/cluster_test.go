package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/session"
)

// clusterHost is the public name of the cluster; the test's balancer sends
// each request for it to the node the test picks, as a load balancer
// without stickiness may.
const clusterHost = "meet.cluster.test"

const clusterSecret = "cluster-session-secret-cluster-session-secret"

// cluster is two gateway nodes sharing one public URL, one provider and
// (unless memory) one Redis.
type cluster struct {
	t      *testing.T
	URL    string
	idp    *testidp.IdP
	nodes  [2]*gwtest.Gateway
	audits [2]*gwtest.MemoryAudit
	addrs  [2]string
	redis  *redistest.Server
	// pick chooses the node for a request; default round robin.
	pick atomic.Pointer[func(*http.Request) int]
	rr   atomic.Int64
	// lastCallback is the last callback request the balancer passed on.
	lastCallback atomic.Pointer[callback]
	// beforeCallback, when set, runs as a callback reaches the balancer.
	beforeCallback func(state string)
}

type callback struct{ url, cookie string }

func newCluster(t *testing.T, shared bool, clock func() time.Time) *cluster {
	return newClusterOn(t, shared, nil, clock)
}

// newClusterOn runs the nodes on a Sentinel-managed Redis when sent is set.
func newClusterOn(t *testing.T, shared bool, sent *redistest.Sentinel, clock func() time.Time) *cluster {
	t.Helper()
	c := &cluster{t: t, URL: "http://" + clusterHost}
	up := gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
	c.idp = testidp.Start(t, c.URL+auth.CallbackPath)
	if shared && sent == nil {
		c.redis = redistest.Start(t)
	}
	for i := range c.nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs[i] = ln.Addr().String()
		var store session.Store
		if shared {
			o := redisstore.Options{KeyPrefix: "cluster:", Rooms: rooms.Config{}}
			if sent != nil {
				o.Server = &redisstore.ClientOptions{SentinelMaster: redistest.MasterName, SentinelAddrs: []string{sent.Addr}}
			} else {
				o.Client = c.redis.Client(t)
			}
			rs, err := redisstore.New(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rs.Close() })
			sealer, err := session.NewSealer([]byte(clusterSecret))
			if err != nil {
				t.Fatal(err)
			}
			store = rs.Sessions(sealer)
		}
		c.audits[i] = &gwtest.MemoryAudit{}
		c.nodes[i] = gwtest.Start(t, gwtest.Options{
			Listener: ln, PublicURL: c.URL, IdP: c.idp, Sessions: store, SharedSessions: shared, Clock: clock, Audit: c.audits[i],
			Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
			Configure: func(cfg *config.Config) { cfg.Session.Secret = clusterSecret },
			Admitter:  roleAdmitter{},
		})
	}
	return c
}

// on sends every request to node i from now on.
func (c *cluster) on(i int) {
	f := func(*http.Request) int { return i }
	c.pick.Store(&f)
}

// RoundTrip is the balancer: a request for the cluster's name goes to the
// picked node, on a fresh connection (no stickiness by keep-alive).
func (c *cluster) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != clusterHost {
		return http.DefaultTransport.RoundTrip(r)
	}
	n := int(c.rr.Add(1)) % 2
	if f := c.pick.Load(); f != nil {
		n = (*f)(r)
	}
	if r.URL.Path == auth.CallbackPath {
		c.lastCallback.Store(&callback{url: r.URL.String(), cookie: r.Header.Get("Cookie")})
		if c.beforeCallback != nil {
			c.beforeCallback(r.URL.Query().Get("state"))
		}
	}
	out := r.Clone(r.Context())
	out.URL.Host, out.Host = c.addrs[n], clusterHost
	return (&http.Transport{DisableKeepAlives: true}).RoundTrip(out)
}

func (c *cluster) browser() *http.Client {
	b := browsertest.Client(c.t)
	b.Transport = c
	return b
}

// login starts the login on node `start` and lets the provider's redirect
// back (the callback) land on node `callback`.
func (c *cluster) login(start, callback int) (*http.Client, *http.Response) {
	f := func(r *http.Request) int {
		if r.URL.Path == auth.CallbackPath {
			return callback
		}
		return start
	}
	c.pick.Store(&f)
	b := c.browser()
	return b, c.idp.BrowserLogin(c.t, b, c.URL+auth.LoginURL("/app"))
}

func (c *cluster) status(b *http.Client, node int) int {
	c.t.Helper()
	c.on(node)
	req, _ := http.NewRequest(http.MethodGet, c.URL+"/app", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := browsertest.NoFollow(b).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// logout posts the logout form as the gateway's own page would.
func (c *cluster) logout(b *http.Client, node int) {
	c.t.Helper()
	c.on(node)
	req, _ := http.NewRequest(http.MethodPost, c.URL+auth.LogoutPath, nil)
	req.Header.Set("Origin", c.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := browsertest.NoFollow(b).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		c.t.Fatalf("logout on node %d: %d", node, resp.StatusCode)
	}
}

func (c *cluster) sessionID(b *http.Client) string {
	c.t.Helper()
	codec, _ := session.NewCodec([]byte(clusterSecret))
	u, _ := http.NewRequest(http.MethodGet, c.URL+"/", nil)
	for _, ck := range b.Jar.Cookies(u.URL) {
		if ck.Name == c.nodes[0].Auth.CookieName() {
			h, err := codec.Open(ck.Name, ck.Value)
			if err != nil {
				c.t.Fatal(err)
			}
			return session.IDFromHandle(h)
		}
	}
	c.t.Fatal("no session cookie")
	return ""
}

// The property a cluster without shared sessions lacks: with per-node
// memory stores, a login whose callback lands on another node fails. This
// keeps the shared-store test below honest.
func TestCluster_MemoryStoresCannotFinishALoginOnAnotherNode(t *testing.T) {
	c := newCluster(t, false, nil)
	b, resp := c.login(0, 1)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && c.status(b, 1) == http.StatusOK && c.status(b, 0) == http.StatusOK {
		t.Fatal("per-node memory stores served one session on both nodes: the cluster test below proves nothing")
	}
}

func TestCluster_LoginStartedOnOneNodeCompletesOnTheOther(t *testing.T) {
	c := newCluster(t, true, nil)
	b, resp := c.login(0, 1)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login started on A, callback on B: %d %s", resp.StatusCode, body)
	}
	for node := range 2 {
		if st := c.status(b, node); st != http.StatusOK {
			t.Errorf("session on node %d: %d, want 200 on every node", node, st)
		}
	}
	// The callback (its code, state and login cookie) replayed on the
	// node where the login started must not make a second session: the
	// login state was taken once, on B, for the whole cluster.
	cb := c.lastCallback.Load()
	if cb == nil {
		t.Fatal("no callback seen")
	}
	c.on(0)
	req, _ := http.NewRequest(http.MethodGet, cb.url, nil)
	req.Header.Set("Cookie", cb.cookie)
	replay, err := (&http.Client{Transport: c, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replay.Body.Close()
	for _, ck := range replay.Cookies() {
		if ck.Name == c.nodes[0].Auth.CookieName() && ck.Value != "" {
			t.Fatalf("replayed callback on node A made a session (%d)", replay.StatusCode)
		}
	}
	if replay.StatusCode < 400 {
		t.Fatalf("replayed callback on node A: %d, want a refusal", replay.StatusCode)
	}
}

// A provider that lets a code be redeemed twice (not every one refuses)
// would let a callback captured on one node make a session on another; the
// state claim in the shared store refuses it. Here another node's claim is
// made directly in the store just before the callback arrives.
func TestCluster_CallbackWhoseStateAnotherNodeTookIsRefused(t *testing.T) {
	c := newCluster(t, true, nil)
	c.beforeCallback = func(state string) {
		first, err := c.nodes[0].Store.ClaimState(context.Background(), state, time.Now().Add(time.Minute))
		if err != nil || !first {
			t.Errorf("claiming the state first: %v %v", first, err)
		}
	}
	b, resp := c.login(0, 1)
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("callback whose state another node took: %d, want a refusal", resp.StatusCode)
	}
	for node := range 2 {
		if st := c.status(b, node); st != http.StatusUnauthorized && st/100 != 3 {
			t.Errorf("node %d answers %d after the refused callback, want no session", node, st)
		}
	}
}

func TestCluster_LogoutOnOneNodeEndsTheSessionAndItsWebSocketOnTheOther(t *testing.T) {
	c := newCluster(t, true, nil)
	b, resp := c.login(0, 0)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.on(0) // the WebSocket is held by node A
	ws, _, err := websocket.Dial(ctx, "ws://"+clusterHost+"/room/r1/ws", &websocket.DialOptions{HTTPClient: b, HTTPHeader: http.Header{"Origin": {c.URL}}})
	if err != nil {
		t.Fatalf("dial through node A: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "hello" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if n := c.nodes[0].Gateway.Live().Count(); n != 1 {
		t.Fatalf("node A holds %d live connections, want 1", n)
	}
	c.logout(b, 1) // on node B
	// Node A closes the WebSocket when the logout is announced; the read
	// waits for that, bounded only by the test's context.
	if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("node A kept the WebSocket of a session logged out on node B (err=%v)", err)
	}
	for node := range 2 {
		if st := c.status(b, node); st != http.StatusUnauthorized {
			t.Errorf("after logout on B, node %d answers %d, want 401", node, st)
		}
	}
}

func TestCluster_RefreshOnOneNodeIsUsedByTheOther(t *testing.T) {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	c := newCluster(t, true, clock)
	b, resp := c.login(0, 1)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	st := c.nodes[0].Store
	id := c.sessionID(b)
	s0, err := st.GetSession(context.Background(), id)
	if err != nil || s0.RefreshToken == "" {
		t.Fatalf("session %v, refresh token present %v", err, s0.RefreshToken != "")
	}
	// Node B refreshes (and the provider rotates the refresh token).
	skew.Store(int64(time.Until(s0.TokenExpiry) - 30*time.Second))
	if code := c.status(b, 1); code != http.StatusOK {
		t.Fatalf("refresh on B: %d", code)
	}
	s1, err := st.GetSession(context.Background(), id)
	if err != nil || s1.RefreshToken == s0.RefreshToken || !s1.TokenExpiry.After(s0.TokenExpiry) {
		t.Fatalf("B's refresh not stored: %v", err)
	}
	// Node A now refreshes with the rotated token it read from Redis; with
	// the old one the provider would refuse and the session would end.
	skew.Store(int64(time.Until(s1.TokenExpiry) - 30*time.Second))
	if code := c.status(b, 0); code != http.StatusOK {
		t.Fatalf("refresh on A after B's refresh: %d, want 200", code)
	}
	s2, err := st.GetSession(context.Background(), id)
	if err != nil || s2.RefreshToken == s1.RefreshToken {
		t.Fatalf("A's refresh not stored: %v", err)
	}
}

// With Redis gone no node can read a session: every request is refused
// with 503 and a clear message, never served from anything a node holds.
func TestCluster_RedisDownFailsClosed(t *testing.T) {
	c := newCluster(t, true, nil)
	b, resp := c.login(0, 1)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	c.redis.Kill()
	for node := range 2 {
		c.on(node)
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/app", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := browsertest.NoFollow(b).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
			t.Errorf("node %d with Redis down: %d %s, want 503 unavailable", node, resp.StatusCode, body)
		}
	}
	// Logout cannot end the session in Redis, so it must not pretend to:
	// it answers 503 and leaves the cookie (clearing only the cookie would
	// leave the session alive for any copy of it).
	c.on(0)
	req, _ := http.NewRequest(http.MethodPost, c.URL+auth.LogoutPath, nil)
	req.Header.Set("Origin", c.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	lo, err := browsertest.NoFollow(b).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lo.Body.Close()
	if lo.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("logout with Redis down: %d, want 503", lo.StatusCode)
	}
	if f := c.audits[0].Records("store.failure"); len(f) != 1 || f[0]["op"] != "session.delete" || f[0]["store"] != "redis" {
		t.Errorf("logout with Redis down: store.failure records %v, want one for session.delete", f)
	}
	if c.audits[0].Has("logout") {
		t.Error("a logout that did not happen was audited as one")
	}
	for _, ck := range lo.Cookies() {
		if ck.Name == c.nodes[0].Auth.CookieName() {
			t.Errorf("logout with Redis down changed the session cookie (%q, max-age %d)", ck.Value, ck.MaxAge)
		}
	}
	// A new login cannot start either: there is nowhere to keep it.
	c.on(0)
	resp, err = browsertest.NoFollow(c.browser()).Get(c.URL + auth.LoginURL("/app"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), c.idp.URL) {
		// Login state travels in the sealed cookie (no store needed to
		// start); the callback is where the store is needed.
		return
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login start with Redis down: %d", resp.StatusCode)
	}
}

// The Redis primary dies under a two-node cluster that found it through
// Sentinel: while the Sentinel fails over, both nodes refuse (503), never
// serve the session from anything they hold and never send anyone to log
// in again; then, without a restart, both serve the session again.
func TestCluster_SentinelFailoverFailsClosedThenRecovers(t *testing.T) {
	sent := redistest.StartSentinel(t)
	c := newClusterOn(t, true, sent, nil)
	b, resp := c.login(0, 1)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	ctx := context.Background()
	if n, err := sent.Primary.Client(t).Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}
	sent.Primary.Kill()
	killed := time.Now()
	refused := 0
	deadline := time.Now().Add(60 * time.Second)
	for node := 0; ; node = 1 - node {
		code := c.status(b, node)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("node %d during failover: %d, want 503 (fail closed) or 200 once recovered", node, code)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatal("the cluster never recovered after the failover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("first request served %v after the primary was killed; %d refused (503) before", time.Since(killed).Round(time.Millisecond), refused)
	// Each node's client learns the new primary on its own (its pool may
	// still hold a connection to the dead one), so the other node may
	// refuse a little longer; it must still only refuse, then serve.
	for node := range 2 {
		for {
			code := c.status(b, node)
			if code == http.StatusOK {
				break
			}
			if code != http.StatusServiceUnavailable {
				t.Fatalf("node %d after the failover: %d, want 503 (fail closed) or 200 once recovered", node, code)
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never recovered after the failover", node)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A logout whose announcement a node never heard (its subscription was
// down) must still cut that node's WebSocket once the subscription is
// back: the node re-checks every session it holds connections for. Here
// the session is deleted behind the gateway's back (no announcement at
// all) and the node's subscription is cut; only the re-check can close it.
func TestCluster_LostLogoutAnnouncementIsCaughtByTheRecheck(t *testing.T) {
	c := newCluster(t, true, nil)
	b, resp := c.login(0, 0)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c.on(0)
	ws, _, err := websocket.Dial(ctx, "ws://"+clusterHost+"/room/r1/ws", &websocket.DialOptions{HTTPClient: b, HTTPHeader: http.Header{"Origin": {c.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	rc := c.redis.Client(t)
	if err := rc.Del(ctx, "cluster:sess:"+c.sessionID(b)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("node A kept the WebSocket of a session that ended while its subscription was down (err=%v)", err)
	}
}
