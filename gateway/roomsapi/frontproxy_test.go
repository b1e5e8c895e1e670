package roomsapi_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/demoapp"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// frontProxy starts a real front proxy on 127.0.0.1 that asks meetguard
// (forward-auth) before sending requests to app, and routes /.meetguard/
// to meetguard itself. It returns the proxy's base URL.
type frontProxy func(t *testing.T, meetguard, app string) string

// TestForwardAuth_Nginx and TestForwardAuth_Caddy put a real nginx and a
// real Caddy, configured as docs/integrations.md says, in front of the demo
// app, with meetguard answering their forward-auth questions.
func TestForwardAuth_Nginx(t *testing.T) { testFrontProxy(t, startNginx) }
func TestForwardAuth_Caddy(t *testing.T) { testFrontProxy(t, startCaddy) }

func testFrontProxy(t *testing.T, start frontProxy) {
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + appLn.Addr().String()
	c := newCluster(t, clusterOptions{trustLoopback: true, upstreamURL: appURL, policyConfig: staffTestUser, policyTimeout: time.Minute})
	n := c.nodes[0]
	// The demo app checks the assertion on every request against the
	// gateway's published keys: a request without a genuine one fails there.
	app, err := demoapp.New(demoapp.Options{AssertionJWKSURL: n.URL + assertion.JWKSPath, AssertionIssuer: n.URL, AssertionAudience: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var seen gwtest.Recorder
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Record(r)
		app.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(appLn) }()
	t.Cleanup(func() { _ = srv.Close(); _ = app.Close() })
	front := start(t, n.URL, appURL)

	h := host("hanna")
	c.createRoom(n, h, "standup", map[string]any{"lobby_enabled": false})
	c.createRoom(n, h, "townhall", map[string]any{"lobby_enabled": true})
	bob, gus := staff("bob"), guest("gus")
	bobTok := c.token(bob)
	seenBy := func(sub string) int {
		k := 0
		for _, r := range seen.Requests() {
			if r.Header.Get("X-Meetguard-User") == sub {
				k++
			}
		}
		return k
	}

	t.Run("login", func(t *testing.T) {
		b := browsertest.NoFollow(browsertest.Client(t))
		r := call(t, b, http.MethodGet, front+"/room/standup", "", nil, "Accept", "text/html")
		// nginx makes the Location absolute, on its own address.
		loc := strings.TrimPrefix(r.Header.Get("Location"), front)
		if r.Status != http.StatusFound || loc != "/.meetguard/login?rd=%2Froom%2Fstandup" {
			t.Fatalf("browser without a session: %d %q", r.Status, r.Header.Get("Location"))
		}
		// The login itself runs through the front proxy's /.meetguard/ route.
		r = call(t, b, http.MethodGet, front+loc, "", nil, "Accept", "text/html")
		if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), c.idp.URL) {
			t.Fatalf("login through the front proxy: %d %q", r.Status, r.Header.Get("Location"))
		}
		if r := call(t, nil, http.MethodGet, front+"/room/standup", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("app without a token: %d %s", r.Status, r.Body)
		}
		// A signed-in browser (session cookie for this host) gets the room.
		sb := c.login(n)
		before := len(seen.Requests())
		r = call(t, sb, http.MethodGet, front+"/room/standup", "", nil, "Accept", "text/html")
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "standup") {
			t.Fatalf("signed-in browser: %d %.200s", r.Status, r.Body)
		}
		if len(seen.Requests()) != before+1 {
			t.Fatalf("the app saw %d requests, want only the signed-in one", len(seen.Requests())-before)
		}
	})

	t.Run("admission", func(t *testing.T) {
		r := call(t, nil, http.MethodGet, front+"/room/standup", bobTok, nil)
		if r.Status != http.StatusOK || seenBy(bob.sub) != 1 {
			t.Fatalf("staff into an open room: %d %.200s (app saw %d)", r.Status, r.Body, seenBy(bob.sub))
		}
		last := seen.Requests()[len(seen.Requests())-1]
		if last.Header.Get("X-Meetguard-Room") != "standup" || last.Header.Get("X-Meetguard-Assertion") == "" {
			t.Fatalf("app got room %q", last.Header.Get("X-Meetguard-Room"))
		}
		if c.countEvents(audit.EventAdmissionDecision, "standup", bob.sub) == 0 {
			t.Fatal("no audit record of the admission")
		}
	})

	t.Run("lobby", func(t *testing.T) {
		// An app knocks through the front proxy's /.meetguard/ route and
		// waits; until a host admits it, the room's paths refuse it.
		gusTok := c.token(gus)
		r := call(t, nil, http.MethodPost, front+roomsapi.Prefix+"townhall/join", gusTok, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("guest knocking: %d %s", r.Status, r.Body)
		}
		wait := r.str(t, "wait_id")
		if r := call(t, nil, http.MethodGet, front+"/room/townhall", gusTok, nil); r.Status != http.StatusForbidden || seenBy(gus.sub) != 0 {
			t.Fatalf("waiting guest on the room path: %d %s (app saw %d)", r.Status, r.Body, seenBy(gus.sub))
		}
		lobby := c.waiting(n, h, "townhall")
		if len(lobby) != 1 {
			t.Fatalf("lobby %v, want the guest's knock", lobby)
		}
		if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+lobby[0]["id"].(string)+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
			t.Fatalf("admit: %d %s", r.Status, r.Body)
		}
		r = call(t, nil, http.MethodGet, front+roomsapi.Prefix+"townhall/wait/"+wait+"?timeout=5", gusTok, nil)
		ticket := r.str(t, "ticket")
		if r.Status != http.StatusOK || ticket == "" {
			t.Fatalf("wait after admission: %d %s", r.Status, r.Body)
		}
		if r := call(t, nil, http.MethodGet, front+"/room/townhall", gusTok, nil, roomsapi.TicketHeader, ticket); r.Status != http.StatusOK || seenBy(gus.sub) != 1 {
			t.Fatalf("admitted guest with its ticket: %d %.200s", r.Status, r.Body)
		}
	})

	t.Run("ban", func(t *testing.T) {
		pid := c.participantOf(n, h, "standup", bob.sub)
		if r := call(t, nil, http.MethodPost, n.apiURL("standup/participants/"+pid+"/remove"), c.token(h), map[string]any{"ban": true}); r.Status != http.StatusOK {
			t.Fatalf("ban: %d %s", r.Status, r.Body)
		}
		before := seenBy(bob.sub)
		if r := call(t, nil, http.MethodGet, front+"/room/standup", c.token(bob), nil); r.Status != http.StatusForbidden || seenBy(bob.sub) != before {
			t.Fatalf("banned staff: %d %s", r.Status, r.Body)
		}
	})

	t.Run("spoofing", func(t *testing.T) {
		eve := staff("eve")
		eveTok := c.token(eve)
		before := len(seen.Requests())
		// Identity headers a client sends never reach the app as its own:
		// without credentials nothing passes; with them, the proxy's copy
		// replaces or removes each one.
		forged := []string{"X-Meetguard-User", "hanna", "X-Meetguard-Role", "host", "X-Meetguard-Room", "standup",
			"X-Meetguard-Assertion", "forged", "X-Meetguard-Email", "hanna@example.com"}
		if r := call(t, nil, http.MethodGet, front+"/room/standup", "", nil, forged...); r.Status != http.StatusUnauthorized || len(seen.Requests()) != before {
			t.Fatalf("forged identity headers alone: %d", r.Status)
		}
		if r := call(t, nil, http.MethodGet, front+"/", eveTok, nil, forged...); r.Status != http.StatusOK {
			t.Fatalf("eve on the app's index: %d %s", r.Status, r.Body)
		}
		last := seen.Requests()[len(seen.Requests())-1]
		if last.Header.Get("X-Meetguard-User") != eve.sub || last.Header.Get("X-Meetguard-Room") != "" || last.Header.Get("X-Meetguard-Role") != "" ||
			last.Header.Get("X-Meetguard-Email") != eve.email || last.Header.Get("X-Meetguard-Assertion") == "forged" {
			t.Fatalf("the app saw forged headers: %v", last.Header)
		}
		// A client naming another path in the headers the proxy asks with
		// does not move the question: it is refused, or asked about the
		// real path (where bob is banned).
		for _, hdr := range [][]string{{"X-Original-URI", "/"}, {"X-Forwarded-Uri", "/"}, {"X-Forwarded-Method", "OPTIONS"}} {
			before := seenBy(bob.sub)
			if r := call(t, nil, http.MethodGet, front+"/room/standup", c.token(bob), nil, hdr...); r.Status < 400 || seenBy(bob.sub) != before {
				t.Fatalf("banned staff with %v: %d %s", hdr, r.Status, r.Body)
			}
		}
		// Asking meetguard directly from an address that is not a trusted
		// proxy gets nothing.
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
		r := call(t, direct, http.MethodGet, n.URL+gateway.AuthPath, eveTok, nil, "X-Original-URI", "/room/standup", "X-Forwarded-Method", "GET")
		if r.Status != http.StatusForbidden || r.Header.Get("X-Meetguard-Assertion") != "" {
			t.Fatalf("forward-auth from an untrusted address: %d %v", r.Status, r.Header)
		}
	})
}

// freePort is a port on 127.0.0.1 nothing listens on right now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string, logs func() string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("front proxy never listened on %s: %s", addr, logs())
}

// binary finds a front proxy's binary, or skips outside CI.
func binary(t *testing.T, env, name string) string {
	p := os.Getenv(env)
	if p == "" {
		p, _ = exec.LookPath(name)
	}
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (set %s); .ci/run installs it", name, env)
		}
		t.Skipf("%s not found (set %s)", name, env)
	}
	return p
}

func runProxy(t *testing.T, addr string, cmd *exec.Cmd, logFile string) {
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that stopping it also stops nginx's workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A graceful stop: nginx's workers outlive a killed master.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		out.Close()
	})
	waitListening(t, addr, func() string { b, _ := os.ReadFile(logFile); return string(b) })
}

func startNginx(t *testing.T, meetguard, app string) string {
	bin := binary(t, "MEETGUARD_NGINX", "nginx")
	dir := t.TempDir()
	addr := freePort(t)
	mg, up := strings.TrimPrefix(meetguard, "http://"), strings.TrimPrefix(app, "http://")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := strings.NewReplacer("{{user}}", user, "{{dir}}", dir, "{{listen}}", addr, "{{meetguard}}", mg, "{{app}}", up).Replace(nginxTestConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runProxy(t, addr, exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")), filepath.Join(dir, "out.log"))
	return "http://" + addr
}

// nginxTestConf is docs/integrations.md's nginx example, with paths and
// addresses of the test.
const nginxTestConf = `
{{user}}
daemon off;
worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path {{dir}}/body;
  proxy_temp_path {{dir}}/proxy;
  fastcgi_temp_path {{dir}}/fastcgi;
  uwsgi_temp_path {{dir}}/uwsgi;
  scgi_temp_path {{dir}}/scgi;
` + NginxHTTPBlock + `
}
`

// NginxHTTPBlock is the part of docs/integrations.md's nginx example that
// goes in the http block.
const NginxHTTPBlock = `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream meetguard { server {{meetguard}}; keepalive 32; }
  upstream meeting_app { server {{app}}; keepalive 32; }
  server {
    listen {{listen}};

    # meetguard's own paths: sign-in, the rooms API, its keys.
    location /.meetguard/ {
      proxy_pass http://meetguard;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }

    # The question: may this request pass?
    location = /.meetguard-auth {
      internal;
      proxy_pass http://meetguard/.meetguard/auth?mode=nginx;
      proxy_http_version 1.1;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }

    location @meetguard_login {
      if ($mg_location = "") { return 401; }
      return 302 $mg_location;
    }

    location / {
      auth_request /.meetguard-auth;
      auth_request_set $mg_location $upstream_http_location;
      auth_request_set $mg_assertion $upstream_http_x_meetguard_assertion;
      auth_request_set $mg_user $upstream_http_x_meetguard_user;
      auth_request_set $mg_email $upstream_http_x_meetguard_email;
      auth_request_set $mg_name $upstream_http_x_meetguard_name;
      auth_request_set $mg_room $upstream_http_x_meetguard_room;
      auth_request_set $mg_role $upstream_http_x_meetguard_role;
      auth_request_set $mg_cookie $upstream_http_set_cookie;
      error_page 401 = @meetguard_login;
      add_header Set-Cookie $mg_cookie;

      proxy_pass http://meeting_app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Meetguard-Assertion $mg_assertion;
      proxy_set_header X-Meetguard-User $mg_user;
      proxy_set_header X-Meetguard-Email $mg_email;
      proxy_set_header X-Meetguard-Name $mg_name;
      proxy_set_header X-Meetguard-Room $mg_room;
      proxy_set_header X-Meetguard-Role $mg_role;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
`

func startCaddy(t *testing.T, meetguard, app string) string {
	bin := binary(t, "MEETGUARD_CADDY", "caddy")
	dir := t.TempDir()
	addr := freePort(t)
	mg, up := strings.TrimPrefix(meetguard, "http://"), strings.TrimPrefix(app, "http://")
	conf := strings.NewReplacer("{{listen}}", addr, "{{meetguard}}", mg, "{{app}}", up).Replace(CaddyTestConf)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	runProxy(t, addr, cmd, filepath.Join(dir, "out.log"))
	return "http://" + addr
}

// CaddyTestConf is docs/integrations.md's Caddy example.
const CaddyTestConf = `{
	admin off
	auto_https off
	persist_config off
}

http://{{listen}} {
	handle /.meetguard/* {
		reverse_proxy {{meetguard}}
	}
	handle {
		forward_auth {{meetguard}} {
			uri /.meetguard/auth
			copy_headers X-Meetguard-Assertion X-Meetguard-User X-Meetguard-Email X-Meetguard-Name X-Meetguard-Room X-Meetguard-Role
		}
		reverse_proxy {{app}}
	}
}
`
