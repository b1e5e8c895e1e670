package metrics_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// node is one real gateway built by app.New, the builder `meetguard serve`
// uses: every writer records through Set.Audit, the rooms API asks the
// policy through Set.Policy, the Redis client carries Set.RedisHook, the
// lobby follows the store's events, and /metrics is the admin handler's.
type node struct {
	t         *testing.T
	gw        *gwtest.Gateway
	metrics   string // the admin listener's /metrics URL
	e2ee      *e2eeapi.Handler
	engine    *policy.Engine
	policyDir string
	redis     *redistest.Server
	alog      *audit.Log
}

func startNode(t *testing.T) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n := &node{t: t}

	dir := t.TempDir()
	key, err := audit.GenerateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	n.alog, err = audit.Open(ctx, audit.Options{Path: filepath.Join(dir, "audit.log"), SigningKey: key, StrictSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.alog.Close() })

	// The engine is the test's (it reloads it by hand, no watch); its
	// reloads are recorded through the built gateway's counting auditor.
	var aud atomic.Pointer[app.App]
	n.policyDir = t.TempDir()
	if err := policies.WriteTo(n.policyDir); err != nil {
		t.Fatal(err)
	}
	n.engine, err = policy.New(ctx, policy.Options{Dir: n.policyDir, Timeout: 5 * time.Second,
		OnReload: func(ev policy.ReloadEvent) {
			var fact audit.Fact
			switch {
			case !ev.OK:
				fact = audit.PolicyReloadRejected(ev.NewRevision, ev.OldRevision, ev.Error, ev.Trigger, ev.Shadow)
			case ev.Changed:
				fact = audit.PolicyReloaded(ev.NewRevision, ev.OldRevision, ev.Trigger, ev.Shadow)
			default:
				return
			}
			if a := aud.Load(); a != nil {
				_ = audit.Write(context.Background(), a.Audit, fact)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}

	n.redis = redistest.Start(t)
	up := gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
	lobby := true
	n.gw = gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
		Audit:     n.alog,
		Policy:    n.engine,
		// Sessions in memory, as before: the Redis outage below must
		// reach the room store only.
		Sessions: session.NewMemory(ctx, session.MemoryOptions{}),
		Configure: func(cfg *config.Config) {
			cfg.Store.Kind, cfg.Store.Redis.Addr = "redis", n.redis.Addr
			cfg.Rooms.TicketKey = strings.Repeat("\x07", 32)
			cfg.Rooms.RateLimits.JoinAttemptsPerIdentity = 4
			cfg.Rooms.LobbyByDefault = &lobby
		},
		RoomsAPI: func(a *app.App, o *roomsapi.Options) {
			passcodes, err := rooms.NewPasscodes(rooms.PasscodeOptions{Params: rooms.PasscodeParams{MemoryKiB: 256, Time: 1, Threads: 1}})
			if err != nil {
				t.Fatal(err)
			}
			o.Passcodes = passcodes
		},
		E2EE: func(*app.App, *e2eeapi.Options) {},
	})
	a := n.gw.App
	aud.Store(a)
	if err := a.Security.AuditQueue(n.alog.QueueDepth); err != nil {
		t.Fatal(err)
	}
	n.e2ee = a.E2EE
	admin := httptest.NewServer(n.gw.Gateway.AdminHandler(a.Metrics))
	t.Cleanup(admin.Close)
	n.metrics = admin.URL + "/metrics"
	return n
}

type who struct {
	sub, email string
	groups     []string
}

func staff(name string) who { return who{sub: name, email: name + "@example.com"} }
func guest(name string) who { return who{sub: name, email: name + "@guest.test"} }
func host(name string) who {
	return who{sub: name, email: name + "@example.com", groups: []string{"meeting-hosts"}}
}

func (n *node) token(w who) string {
	c := n.gw.IdP.Claims(n.gw.IdP.ClientID)
	c["sub"], c["email"], c["name"], c["groups"] = w.sub, w.email, w.sub, w.groups
	if w.groups == nil {
		c["groups"] = []string{}
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	c["jti"] = hex.EncodeToString(b)
	return n.gw.IdP.Sign(n.t, c, "")
}

// call makes one API request with a bearer token and returns status and
// decoded JSON body.
func (n *node) call(method, path, token string, body any) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.gw.URL+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (n *node) api(method, room, rest, token string, body any) (int, map[string]any) {
	n.t.Helper()
	p := roomsapi.Prefix + room
	if rest != "" {
		p += "/" + rest
	}
	return n.call(method, p, token, body)
}

// scrape reads the admin listener's /metrics.
func (n *node) scrape() map[string]*dto.MetricFamily {
	n.t.Helper()
	resp, err := http.Get(n.metrics)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return fams
}

// value is a series' value (a counter or gauge's, a histogram's count)
// whose labels include want ("k=v" pairs); it sums every matching series.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
series:
	for _, m := range f.GetMetric() {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// moved fails unless the series grew by at least by since before.
func (n *node) moved(before map[string]*dto.MetricFamily, name string, by float64, labels ...string) {
	n.t.Helper()
	after := n.scrape()
	if got := value(after, name, labels...) - value(before, name, labels...); got < by {
		n.t.Errorf("%s%v: grew by %v, want at least %v", name, labels, got, by)
	}
}

// eventually scrapes until the series satisfies ok (room events and the
// lobby gauge arrive asynchronously).
func (n *node) eventually(name string, ok func(float64) bool, labels ...string) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v := value(n.scrape(), name, labels...)
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s%v stayed at %v", name, labels, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecurityMetrics_MoveWithRealTraffic drives a real gateway (real
// OpenID provider, shipped policy, durable audit log, Redis, upstream
// with WebSockets, e2ee API) through each thing a security on-call
// watches and checks that its metric moves on the admin /metrics.
func TestSecurityMetrics_MoveWithRealTraffic(t *testing.T) {
	n := startNode(t)
	hanna, sam, gus, rita := host("hanna"), staff("sam"), guest("gus"), staff("rita")

	if st, body := n.api(http.MethodPut, "standup", "", n.token(hanna), map[string]any{"lobby_enabled": true}); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("create room: %d %v", st, body)
	}
	if st, body := n.api(http.MethodPut, "vault", "", n.token(hanna), map[string]any{"lobby_enabled": false, "passcode": "correct horse battery"}); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("create room: %d %v", st, body)
	}

	t.Run("admission allow, policy latency, revision, live WebSocket, redis", func(t *testing.T) {
		before := n.scrape()
		st, body := n.api(http.MethodPost, "standup", "join", n.token(sam), nil)
		if st != http.StatusOK {
			t.Fatalf("sam join: %d %v", st, body)
		}
		n.moved(before, "meetguard_admissions_total", 1, "decision=allow")
		n.moved(before, "meetguard_policy_decision_duration_seconds", 1, "query=admission")
		n.moved(before, "meetguard_audit_write_duration_seconds", 1)
		n.moved(before, "meetguard_redis_command_duration_seconds", 1)
		if v := value(n.scrape(), "meetguard_policy_revision_info", "revision="+n.engine.Revision()); v != 1 {
			t.Errorf("policy_revision_info{revision=%q} = %v, want 1", n.engine.Revision(), v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{"Authorization": {"Bearer " + n.token(sam)}, roomsapi.TicketHeader: {body["ticket"].(string)}}
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.gw.URL, "http")+"/room/standup/ws", &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		n.eventually("meetguard_live_connections", func(v float64) bool { return v == 1 })
		ws.Close(websocket.StatusNormalClosure, "")
		n.eventually("meetguard_live_connections", func(v float64) bool { return v == 0 })
	})

	t.Run("lobby knock, waiting, wait time, kick and ban", func(t *testing.T) {
		before := n.scrape()
		st, body := n.api(http.MethodPost, "standup", "join", n.token(gus), nil)
		if st != http.StatusAccepted {
			t.Fatalf("gus join: %d %v", st, body)
		}
		n.moved(before, "meetguard_admissions_total", 1, "decision=lobby")
		n.moved(before, "meetguard_lobby_knocks_total", 1)
		n.eventually("meetguard_lobby_waiting", func(v float64) bool { return v == 1 })
		wait := body["wait_id"].(string)
		st, body = n.api(http.MethodPost, "standup", "lobby/"+wait+"/admit", n.token(hanna), nil)
		if st != http.StatusOK {
			t.Fatalf("admit: %d %v", st, body)
		}
		n.eventually("meetguard_lobby_waiting", func(v float64) bool { return v == 0 })
		n.eventually("meetguard_lobby_wait_seconds", func(v float64) bool { return v >= 1 }, "outcome=admitted")
		pid, _ := body["participant"].(map[string]any)["id"].(string)
		if pid == "" {
			t.Fatalf("admit answered no participant id: %v", body)
		}
		before = n.scrape()
		if st, body := n.api(http.MethodPost, "standup", "participants/"+pid+"/remove", n.token(hanna), map[string]any{"ban": true}); st != http.StatusOK {
			t.Fatalf("remove: %d %v", st, body)
		}
		n.moved(before, "meetguard_kicks_total", 1)
		n.moved(before, "meetguard_bans_total", 1)
		before = n.scrape()
		if st, _ := n.api(http.MethodPost, "standup", "join", n.token(gus), nil); st != http.StatusForbidden {
			t.Fatalf("banned gus join: %d, want 403", st)
		}
		n.moved(before, "meetguard_admissions_total", 1, "decision=deny", "reason=banned")
	})

	t.Run("passcode failures and rate limits", func(t *testing.T) {
		before := n.scrape()
		for range 2 {
			if st, body := n.api(http.MethodPost, "vault", "join", n.token(rita), map[string]any{"passcode": "wrong guess"}); st == http.StatusOK {
				t.Fatalf("wrong passcode admitted: %v", body)
			}
		}
		n.moved(before, "meetguard_passcode_failures_total", 2)
		// rita's attempts are limited to 4 a window: the next ones are
		// refused before the policy is asked.
		before = n.scrape()
		limited := false
		for range 4 {
			if st, _ := n.api(http.MethodPost, "standup", "join", n.token(rita), nil); st == http.StatusTooManyRequests {
				limited = true
				break
			}
		}
		if !limited {
			t.Fatal("rita was never rate limited")
		}
		n.moved(before, "meetguard_rate_limited_total", 1, "unit=identity")
	})

	t.Run("token rejections by reason", func(t *testing.T) {
		before := n.scrape()
		if st, _ := n.api(http.MethodPost, "standup", "join", "not.a.jwt", nil); st != http.StatusUnauthorized {
			t.Fatalf("garbage token: %d, want 401", st)
		}
		c := n.gw.IdP.Claims(n.gw.IdP.ClientID)
		c["exp"] = time.Now().Add(-time.Hour).Unix()
		c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		if st, _ := n.api(http.MethodPost, "standup", "join", n.gw.IdP.Sign(t, c, ""), nil); st != http.StatusUnauthorized {
			t.Fatalf("expired token: %d, want 401", st)
		}
		n.moved(before, "meetguard_token_rejections_total", 1, "reason=malformed")
		n.moved(before, "meetguard_token_rejections_total", 1, "reason=expired")
	})

	t.Run("e2ee epoch and refusal", func(t *testing.T) {
		before := n.scrape()
		st, body := n.api(http.MethodPost, "standup", "join", n.token(hanna), nil)
		if st != http.StatusOK {
			t.Fatalf("hanna join: %d %v", st, body)
		}
		tok, ticket := n.token(hanna), body["ticket"].(string)
		tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: n.gw.URL, Room: "standup", MaxWait: 5 * time.Second,
			Authorize: func(r *http.Request) error {
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set(e2eeapi.TicketHeader, ticket)
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: n.e2ee.PublicKey(), Room: "standup"})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = c.Run(ctx, nil) }()
		n.eventually("meetguard_e2ee_epochs_total", func(v float64) bool { return v >= value(before, "meetguard_e2ee_epochs_total")+1 })
		// gus is banned: his key exchange is refused and recorded.
		req, _ := http.NewRequest(http.MethodPost, n.gw.URL+roomsapi.Prefix+"standup/e2ee/nonce", nil)
		req.Header.Set("Authorization", "Bearer "+n.token(gus))
		req.Header.Set("Content-Type", e2eehttp.ContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("banned gus asking for a nonce: %d, want 403", resp.StatusCode)
		}
		n.moved(before, "meetguard_e2ee_rejections_total", 1)
	})

	t.Run("policy reload ok and rejected", func(t *testing.T) {
		before := n.scrape()
		old := n.engine.Revision()
		data := filepath.Join(n.policyDir, "data.json")
		b, err := os.ReadFile(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(data, bytes.Replace(b, []byte("{"), []byte("{\"metrics_test\": true,"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := n.engine.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.moved(before, "meetguard_policy_reloads_total", 1, "result=ok")
		after := n.scrape()
		if value(after, "meetguard_policy_revision_info", "revision="+old) != -1 && value(after, "meetguard_policy_revision_info", "revision="+old) != 0 {
			t.Errorf("old revision %s still marked serving", old)
		}
		if value(after, "meetguard_policy_revision_info", "revision="+n.engine.Revision()) != 1 {
			t.Errorf("new revision %s not marked serving", n.engine.Revision())
		}
		if err := os.WriteFile(filepath.Join(n.policyDir, "broken.rego"), []byte("package meetguard.broken\nallow if {"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := n.engine.Reload(context.Background()); err == nil {
			t.Fatal("broken policy loaded")
		}
		n.moved(before, "meetguard_policy_reloads_total", 1, "result=rejected")
	})

	t.Run("oidc discovery failure", func(t *testing.T) {
		// A provider that is down: the authenticator's discovery fails
		// and is retried; each failure is counted.
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		reg := prometheus.NewRegistry()
		sec, err := metrics.New(metrics.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pub, _ := url.Parse("http://127.0.0.1:1")
		_, err = auth.New(ctx, auth.Options{Issuer: dead.URL, ClientID: "c", ClientSecret: "s", PublicURL: pub,
			HTTPClient: &http.Client{Timeout: time.Second}, Store: n.gw.Store, Codec: mustCodec(t), OnProviderFailure: sec.OIDCFailure})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for gatherValue(t, reg, "meetguard_oidc_failures_total", "op=discovery") < 1 {
			if time.Now().After(deadline) {
				t.Fatal("discovery failure not counted")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("policy errors fail closed and are counted", func(t *testing.T) {
		// A real engine whose every decision misses its deadline.
		reg := prometheus.NewRegistry()
		sec, err := metrics.New(metrics.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := policies.WriteTo(dir); err != nil {
			t.Fatal(err)
		}
		e, err := policy.New(context.Background(), policy.Options{Dir: dir, Timeout: time.Nanosecond})
		if err != nil {
			t.Fatalf("engine: %v", err)
		}
		d := sec.Policy(e).Decide(context.Background(), policy.Input{})
		if d.Allow {
			t.Fatal("timed-out decision allowed")
		}
		if gatherValue(t, reg, "meetguard_policy_errors_total", "query=admission") != 1 {
			t.Error("policy error not counted")
		}
	})

	t.Run("audit failures and redis errors", func(t *testing.T) {
		before := n.scrape()
		n.redis.Kill()
		if st, _ := n.api(http.MethodPost, "standup", "join", n.token(sam), nil); st != http.StatusServiceUnavailable {
			t.Fatalf("join with Redis down: %d, want 503", st)
		}
		n.moved(before, "meetguard_redis_errors_total", 1)
		if err := n.redis.Restart(); err != nil {
			t.Fatal(err)
		}
		// A closed log refuses every record: the actions are refused and
		// the failures counted.
		_ = n.alog.Close()
		before = n.scrape()
		for i := 0; i < 50 && value(n.scrape(), "meetguard_audit_write_failures_total")-value(before, "meetguard_audit_write_failures_total") < 1; i++ {
			if st, _ := n.api(http.MethodPost, "standup", "join", n.token(sam), nil); st == http.StatusOK {
				t.Fatal("admitted with the audit log closed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		n.moved(before, "meetguard_audit_write_failures_total", 1)
	})
}

func mustCodec(t *testing.T) *session.Codec {
	t.Helper()
	c, err := session.NewCodec(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func gatherValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return value(m, name, labels...)
}
