package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/devidp"
)

// runBench is the hidden `meetguard bench` group: the Go parts of the peer
// comparison that bench/peers.sh drives (docs/performance.md). Each role
// is its own process, so wrk and the RSS figures see one server at a time.
// It is not in the usage text: it serves benchmarks, not operators.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "bench", benchUsage, map[string]command{
		"upstream":   runBenchUpstream,
		"plainproxy": runBenchPlainProxy,
		"gateway":    runBenchGateway,
		"wsclients":  runBenchWSClients,
		"token":      runBenchToken,
		"soak":       runBenchSoak,
	}, args, stdout, stderr)
}

const benchUsage = `usage: meetguard bench <role> [flags]   (for bench/peers.sh)

  upstream   --listen ADDR                      1 KiB answer; WebSocket echo on paths ending in /ws
  plainproxy --listen ADDR --to URL             a plain httputil.ReverseProxy
  gateway    --listen ADDR --to URL --creds F   meetguard (dev identity provider, shipped policy,
                                                durable audit file, JSON access log on stderr);
                                                writes "cookie: ..." to F once it serves
             [--users N] [--admin ADDR] [--redis ADDR]
                                                N more users soak-0000@example.com… (staff),
                                                the admin listener (/metrics), a Redis store
  wsclients  --url WS_URL --n N [--header 'K: V'] [--token-from GATEWAY_URL] [--once]
                                                opens N WebSockets, one echo each, prints
                                                "held N failed M" and holds them until killed
                                                (--once: closes them and exits)
  token      --from GATEWAY_URL                 prints alice's bearer token from the gateway
                                                started by "bench gateway"
  soak       --gateway URL --metrics URL [--conns 1000] [--duration 10m] [--churn 10] ...
                                                holds --conns WebSockets as distinct users of a
                                                "bench gateway --users", churns joins, leaves and
                                                host kicks, samples heap, goroutines and
                                                descriptors; prints a table and a verdict
`

// benchBody is the upstream's answer: the 1 KiB of the wrk load.
var benchBody = []byte(strings.Repeat("x", 1024))

func runBenchUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench upstream", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ws") {
			benchEcho(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(benchBody)
	})
	return benchServe(ctx, *listen, h, stdout, stderr)
}

// benchEcho answers one message per WebSocket, then holds it open.
func benchEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
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

func runBenchPlainProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench plainproxy", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	to := fs.String("to", "", "upstream URL")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	target, err := url.Parse(*to)
	if err != nil || target.Host == "" {
		fmt.Fprintln(stderr, "meetguard bench plainproxy: --to must be an http URL")
		return exitUsage
	}
	// What an engineer writes first: the standard proxy with the default
	// transport, given as many idle connections as the load has clients.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }, Transport: tr}
	return benchServe(ctx, *listen, rp, stdout, stderr)
}

// benchServe serves h on listen until ctx ends and prints the address.
func benchServe(ctx context.Context, listen string, h http.Handler, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "meetguard bench: %v\n", err)
		return 1
	}
	return 0
}

func runBenchGateway(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The collector as `meetguard serve` sets it, so that the peer
	// comparison and the soak measure what a served gateway does.
	applyGCDefault(os.LookupEnv)
	fs := newFlagSet("bench gateway", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address (loopback)")
	to := fs.String("to", "", "upstream URL")
	creds := fs.String("creds", "", "file to write the signed-in session cookie to")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	heapProfile := fs.String("heapprofile", "", "on SIGUSR1, write a heap profile and the goroutine count to this file (.goroutines beside it)")
	users := fs.Int("users", 0, "extra development users soak-0000@example.com… (staff), for bench soak")
	admin := fs.String("admin", "", "admin listener address (health and /metrics), e.g. 127.0.0.1:9091")
	redisAddr := fs.String("redis", "", "use a Redis rooms store at host:port instead of the memory store")
	policyTimeout := fs.Duration("policy-timeout", 0, "bound on one policy decision (default the gateway's)")
	auditPath := fs.String("audit", "", "audit log file to keep (default: one in a temporary directory, removed at exit)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "meetguard bench gateway: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "meetguard bench gateway: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *to == "" || *creds == "" {
		fmt.Fprintln(stderr, "meetguard bench gateway: --to and --creds are required")
		return exitUsage
	}
	if *users < 0 || *users > maxSoakUsers {
		fmt.Fprintf(stderr, "meetguard bench gateway: --users must be 0…%d\n", maxSoakUsers)
		return exitUsage
	}
	var store config.Store
	if *redisAddr != "" {
		store = config.Store{Kind: "redis", Redis: config.Redis{Addr: *redisAddr}}
	}
	var devUsers []devidp.User
	if *users > 0 {
		devUsers = append(devidp.DefaultUsers(), soakUsers(*users)...)
	}
	if *heapProfile != "" {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		go func() {
			for range usr1 {
				runtime.GC()
				if f, err := os.Create(*heapProfile); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
				_ = os.WriteFile(*heapProfile+".goroutines", fmt.Appendf(nil, "%d\n", runtime.NumGoroutine()), 0o644)
			}
		}()
	}
	dir, err := os.MkdirTemp("", "meetguard-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench gateway: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The production logger (`meetguard serve`'s), access log included.
	logger, flushLog, err := newLogger(config.Log{Level: "info"}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench gateway: %v\n", err)
		return 1
	}
	defer flushLog()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *auditPath == "" {
		*auditPath = filepath.Join(dir, "audit.log")
	}
	err = dev(ctx, devOptions{
		listen: *listen, audit: *auditPath, upstreamURL: *to, logger: logger,
		users: devUsers, adminListen: *admin, store: store, policyTimeout: *policyTimeout,
		ready: func(base string) {
			go func() {
				// The provider discovery finishes just after the
				// listener serves: retry for a few seconds.
				var cookie string
				var err error
				for range 50 {
					if cookie, err = benchLogin(ctx, base); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err == nil {
					// Start-up garbage (the policy's compilation above all)
					// goes back to the system, so that the RSS the peer
					// comparison starts from is what the gateway holds and
					// connections cannot hide in freed pages.
					debug.FreeOSMemory()
					err = os.WriteFile(*creds, []byte("cookie: "+cookie+"\n"), 0o600)
				}
				if err != nil {
					fmt.Fprintf(stderr, "meetguard bench gateway: sign-in: %v\n", err)
					cancel()
				}
			}()
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench gateway: %v\n", err)
		return 1
	}
	return 0
}

var benchRequestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// benchLogin signs alice in through the development provider's login form,
// as a browser would, and returns the gateway's session cookie header.
func benchLogin(ctx context.Context, base string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+auth.LoginURL("/"), nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := benchRequestField.FindSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("no login form (status %d)", resp.StatusCode)
	}
	form := url.Values{"request": {string(m[1])}, "user": {"alice"}}
	resp, err = c.PostForm(base+devIdPPrefix+"/login", form)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("no session cookie after sign-in (status %d)", resp.StatusCode)
	}
	return strings.Join(parts, "; "), nil
}

// benchToken asks the development provider for alice's bearer token.
func benchToken(ctx context.Context, base string) (string, error) {
	return fetchDevToken(ctx, http.DefaultClient, base, "alice@example.com")
}

// fetchDevToken asks the development provider at base for user's bearer token.
func fetchDevToken(ctx context.Context, hc *http.Client, base, user string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+devIdPPrefix+"/dev/token", strings.NewReader(url.Values{"user": {user}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("dev token for %s: status %d", user, resp.StatusCode)
	}
	return body.AccessToken, nil
}

func runBenchToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench token", stderr)
	from := fs.String("from", "", "gateway base URL")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	tok, err := benchToken(ctx, *from)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func runBenchWSClients(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench wsclients", stderr)
	target := fs.String("url", "", "ws:// URL")
	n := fs.Int("n", 100, "connections")
	parallel := fs.Int("parallel", 50, "connections opened at once")
	token := fs.String("token-from", "", "gateway base URL to fetch a bearer token from (development provider)")
	once := fs.Bool("once", false, "close the sockets and exit once they are open")
	var headers headerFlags
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	h := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			fmt.Fprintf(stderr, "meetguard bench wsclients: --header %q: want 'Name: value'\n", kv)
			return exitUsage
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if *token != "" {
		tok, err := benchToken(ctx, *token)
		if err != nil {
			fmt.Fprintf(stderr, "meetguard bench wsclients: %v\n", err)
			return 1
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: -1}
	hc := &http.Client{Transport: tr}
	var (
		mu    sync.Mutex
		conns []*websocket.Conn
		fails atomic.Int64
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*n) {
				c, err := benchWSOne(ctx, hc, *target, h)
				mu.Lock()
				if err != nil {
					fails.Add(1)
					if first == nil {
						first = err
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		fmt.Fprintf(stderr, "meetguard bench wsclients: %d failed, first: %v\n", fails.Load(), first)
	}
	fmt.Fprintf(stdout, "held %d failed %d\n", len(conns), fails.Load())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	if !*once {
		<-ctx.Done()
	}
	for _, c := range conns {
		_ = c.CloseNow()
	}
	if fails.Load() > 0 {
		return 1
	}
	return 0
}

// benchWSOne opens one WebSocket and checks one echo through it.
func benchWSOne(ctx context.Context, hc *http.Client, target string, h http.Header) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, target, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c.SetReadLimit(1 << 10)
	if err := c.Write(dctx, websocket.MessageText, []byte("ping")); err != nil {
		c.CloseNow()
		return nil, err
	}
	if _, msg, err := c.Read(dctx); err != nil || string(msg) != "ping" {
		c.CloseNow()
		return nil, fmt.Errorf("echo: %q %v", msg, err)
	}
	return c, nil
}
