package roomsapi_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestForwardAuth_Throughput measures, in one run, authenticated page loads
// (a signed-in browser's session cookie, a non-room page) through nginx
// alone, through nginx asking meetguard (forward-auth), through nginx
// asking meetguard with its auth cache on, and through meetguard as the
// proxy, with wrk. It only reports figures (docs/performance.md); run it
// with MEETGUARD_WRK=1.
func TestForwardAuth_Throughput(t *testing.T) {
	if os.Getenv("MEETGUARD_WRK") == "" {
		t.Skip("set MEETGUARD_WRK=1 to measure")
	}
	wrk := binary(t, "MEETGUARD_WRK_BIN", "wrk")
	bin := binary(t, "MEETGUARD_NGINX", "nginx")
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.Repeat("<p>meeting</p>", 100)
	app := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	})}
	go func() { _ = app.Serve(appLn) }()
	t.Cleanup(func() { _ = app.Close() })
	appURL := "http://" + appLn.Addr().String()
	c := newCluster(t, clusterOptions{trustLoopback: true, upstreamURL: appURL, policyConfig: staffTestUser, policyTimeout: time.Minute})
	n := c.nodes[0]
	b := c.login(n)
	u, _ := url.Parse(n.URL)
	var cookies []string
	for _, ck := range b.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	cookie := strings.Join(cookies, "; ")

	dir := t.TempDir()
	plain, auth, cached := freePort(t), freePort(t), freePort(t)
	mg, up := strings.TrimPrefix(n.URL, "http://"), strings.TrimPrefix(appURL, "http://")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	authBlock := strings.NewReplacer("{{listen}}", auth, "{{meetguard}}", mg, "{{app}}", up).Replace(NginxHTTPBlock)
	cachedBlock := strings.NewReplacer("{{listen}}", cached, "upstream meetguard", "upstream meetguard_c", "upstream meeting_app", "upstream meeting_app_c",
		"http://meetguard", "http://meetguard_c", "http://meeting_app", "http://meeting_app_c", "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }", "",
		"proxy_pass_request_body off;", "proxy_pass_request_body off;\n"+nginxAuthCache,
		"{{meetguard}}", mg, "{{app}}", up).Replace(NginxHTTPBlock)
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes 2;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  proxy_cache_path %[2]s/authcache keys_zone=meetguard_auth:1m max_size=10m;
  upstream plain_app { server %[3]s; keepalive 32; }
  server {
    listen %[4]s;
    location / { proxy_pass http://plain_app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
%[5]s
%[6]s
}
`, user, dir, up, plain, authBlock, cachedBlock)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runProxy(t, plain, exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")), filepath.Join(dir, "out.log"))
	waitListening(t, auth, func() string { return "" })

	for _, target := range []struct{ name, url string }{
		{"nginx alone", "http://" + plain + "/page"},
		{"nginx + forward-auth", "http://" + auth + "/page"},
		{"nginx + forward-auth, auth cache 5 s", "http://" + cached + "/page"},
		{"meetguard as the proxy", n.URL + "/page"},
	} {
		// Every answer must be the page, or the figures measure refusals.
		r := call(t, nil, http.MethodGet, target.url, "", nil, "Cookie", cookie, "Accept", "text/html")
		if r.Status != http.StatusOK || string(r.Body) != page {
			t.Fatalf("%s: %d %.200s", target.name, r.Status, r.Body)
		}
		out, err := exec.Command(wrk, "-t2", "-c32", "-d10s", "--latency", "-H", "Cookie: "+cookie, "-H", "Accept: text/html", target.url).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk: %v %s", err, out)
		}
		rps := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
		p99 := regexp.MustCompile(`\s99%\s+(\S+)`).FindSubmatch(out)
		non2xx := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out)
		if rps == nil || p99 == nil {
			t.Fatalf("wrk output: %s", out)
		}
		bad := "0"
		if non2xx != nil {
			bad = string(non2xx[1])
		}
		t.Logf("%-38s %10s req/s  p99 %8s  non-2xx %s", target.name, rps[1], p99[1], bad)
	}
}

// nginxAuthCache is docs/integrations.md's optional auth cache: the answer
// for one session cookie, bearer token and URI is reused for 5 seconds,
// which is how long a kick or ban can take to reach page loads.
const nginxAuthCache = `      proxy_cache meetguard_auth;
      proxy_cache_key "$http_cookie|$http_authorization|$request_method|$request_uri";
      proxy_cache_valid 200 5s;
      proxy_ignore_headers Cache-Control Set-Cookie;`
