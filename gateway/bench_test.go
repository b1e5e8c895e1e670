package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/session"
)

var kib = strings.Repeat("x", 1024)

// BenchmarkProxiedGET compares, in one run, a 1 KiB GET served directly by
// the upstream, through a plain httputil.ReverseProxy, and through
// meetguard with an authenticated bearer caller (the assertion and
// identity headers included). Keep-alive clients run in parallel; p50 and
// p99 are reported per request.
func BenchmarkProxiedGET(b *testing.B) {
	up, plain := startProxyBaseline(b)
	e := newBenchEnv(b, up.URL)
	tok := e.idToken()
	cases := []struct {
		name string
		url  string
		hdr  map[string]string
	}{
		{"direct", up.URL + "/app/x", nil},
		// The plain proxy gets the same Authorization header, so both paths
		// move the same bytes from the client.
		{"plain_reverseproxy", plain.URL + "/app/x", map[string]string{"Authorization": "Bearer " + tok}},
		{"meetguard_bearer", e.URL + "/app/x", map[string]string{"Authorization": "Bearer " + tok}},
		{"meetguard_cookie", e.URL + "/app/x", map[string]string{"Cookie": e.sessionCookie(b)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
					for k, v := range tc.hdr {
						req.Header.Set(k, v)
					}
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(start))
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkVerifyBearer is one bearer JWT verification (RS256, cached keys).
func BenchmarkVerifyBearer(b *testing.B) {
	e := newBenchEnv(b, "http://127.0.0.1:1")
	tok := e.idToken()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.authn.VerifyBearer(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCookieOpen is one session cookie decode (XChaCha20-Poly1305).
func BenchmarkCookieOpen(b *testing.B) {
	codec, _ := session.NewCodec([]byte(strings.Repeat("k", 32)))
	v := codec.Seal("meetguard", session.NewHandle())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Open("meetguard", v); err != nil {
			b.Fatal(err)
		}
	}
}

// startProxyBaseline starts what meetguard is measured against: a quiet
// upstream that answers 1 KiB, and a plain httputil.ReverseProxy in front
// of it. Both stop when the benchmark ends.
func startProxyBaseline(b *testing.B) (upstream, plain *httptest.Server) {
	b.Helper()
	upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, kib)
	}))
	b.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	// The plain proxy gets the same connection pooling as the gateway's
	// transport, so the comparison isolates what meetguard adds.
	plainTransport := http.DefaultTransport.(*http.Transport).Clone()
	plainTransport.MaxIdleConnsPerHost = 256
	plain = httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: plainTransport})
	b.Cleanup(plain.Close)
	return upstream, plain
}

// newBenchEnv is newEnv for benchmarks, with a quiet upstream of our own.
// The gateway logs one JSON access line per request, as in production.
func newBenchEnv(b *testing.B, upstreamURL string) *env {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	return newEnvTB(b, envOptions{upstreamURL: upstreamURL, logger: logger})
}

// sessionCookie logs in once and returns the Cookie header value.
func (e *env) sessionCookie(tb testing.TB) string {
	c := browsertest.Client(tb)
	resp := e.idp.BrowserLogin(tb, c, e.URL+auth.LoginURL("/"))
	resp.Body.Close()
	u, _ := url.Parse(e.URL)
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// BenchmarkAddedLatencyAt1000RPS sends an open-loop 1,000 requests/s for
// 3 s through the plain proxy and through meetguard (bearer), one after
// the other in the same run, and reports each path's p50/p99. The added
// latency is the difference of the two. b.N is ignored: the load is
// fixed, so run it with -benchtime 1x.
func BenchmarkAddedLatencyAt1000RPS(b *testing.B) {
	up, plain := startProxyBaseline(b)
	e := newBenchEnv(b, up.URL)
	tok := e.idToken()
	for _, tc := range []struct {
		name, url, auth string
	}{
		{"plain_reverseproxy", plain.URL + "/app/x", "Bearer " + tok},
		{"meetguard_bearer", e.URL + "/app/x", "Bearer " + tok},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			const rate, seconds = 1000, 3
			lat := make([]time.Duration, rate*seconds)
			var wg sync.WaitGroup
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for i := range lat {
				<-tick.C
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
					if tc.auth != "" {
						req.Header.Set("Authorization", tc.auth)
					}
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat[i] = time.Since(start)
				}(i)
			}
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
