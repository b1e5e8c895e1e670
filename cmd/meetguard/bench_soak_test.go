package main

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/syncbuf"
)

func TestLinearTrend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		x, y      []float64
		slope, se float64
	}{
		{"flat", []float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0, 0},
		{"exact line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2, 0},
		// Residuals ±1 around y = x: slope 1, s.e. sqrt(ssr/(n-2)/sxx).
		{"noisy", []float64{0, 1, 2, 3}, []float64{1, 0, 3, 2}, 0.6, math.Sqrt(3.2 / 2 / 5)},
		{"one point", []float64{1}, []float64{1}, 0, 0},
		{"same x", []float64{2, 2, 2}, []float64{1, 2, 3}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slope, se := linearTrend(tc.x, tc.y)
			if math.Abs(slope-tc.slope) > 1e-9 || math.Abs(se-tc.se) > 1e-9 {
				t.Fatalf("linearTrend = %v ± %v, want %v ± %v", slope, se, tc.slope, tc.se)
			}
		})
	}
}

func TestTrendVerdict(t *testing.T) {
	for _, tc := range []struct {
		slope, se, tol float64
		want           string
	}{
		{0, 0, 1, "flat"},
		{1, 5, 1, "flat"},
		{-1, 0, 1, "flat"},
		{-3, 5, 1, "falls"},
		{3, 0.5, 1, "grows"},
		{3, 1.5, 1, "unclear"}, // 3-2·1.5 = 0: within the noise
	} {
		if got := trendVerdict(tc.slope, tc.se, tc.tol); got != tc.want {
			t.Errorf("trendVerdict(%v, %v, %v) = %q, want %q", tc.slope, tc.se, tc.tol, got, tc.want)
		}
	}
}

// TestSoakReport_Verdict: a goroutine count that climbs by one per cycle
// (a leaked goroutine per join) reads GROWS; the same run with the count
// flat reads flat.
func TestSoakReport_Verdict(t *testing.T) {
	o := soakOptions{warmup: 0, sample: time.Second, tolCountPerCycle: 0.01, tolHeapPerCycle: 1024}
	mk := func(leakPerCycle float64) *soakReport {
		r := &soakReport{o: o}
		for i := range 120 {
			cycles := int64(i * 10)
			r.samples = append(r.samples, soakSample{at: time.Duration(i) * time.Second, heapInuse: 30 << 20, heapGoal: 40 << 20,
				rss: 80 << 20, goroutines: 2000 + float64(i%3) + leakPerCycle*float64(cycles), fds: 2000, cycles: cycles})
		}
		return r
	}
	if v := mk(0).verdict(); v != "flat" {
		t.Errorf("flat run: verdict %q", v)
	}
	if v := mk(1).verdict(); v != "GROWS" {
		t.Errorf("leaking run: verdict %q", v)
	}
}

// startSoakGateway runs `bench upstream` and `bench gateway --users N
// --admin` in-process until the test ends, and returns the gateway's base
// URL and metrics URL.
func startSoakGateway(t *testing.T, users int) (base, metrics string) {
	t.Helper()
	up := startBenchRole(t, "upstream", "--listen", "127.0.0.1:0")
	gw, admin := freePort(t), freePort(t)
	creds := filepath.Join(t.TempDir(), "creds")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var logs syncbuf.Buffer
	exited := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(exited)
		run(ctx, []string{"bench", "gateway", "--listen", gw, "--to", "http://" + up, "--creds", creds,
			"--users", strconv.Itoa(users), "--admin", admin,
			// A busy test machine under -race takes longer than the
			// default 250 ms over a decision, which fails closed.
			"--policy-timeout", "5s"}, io.Discard, &logs)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	for range 1200 {
		if b, err := os.ReadFile(creds); err == nil && len(b) > 0 {
			return "http://" + gw, "http://" + admin + "/metrics"
		}
		select {
		case <-exited:
			t.Fatalf("bench gateway exited:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("bench gateway did not sign in:\n%s", logs.String())
	return "", ""
}

var soakOpsLine = regexp.MustCompile(`kicks (\d+), kicked sockets closed by the gateway with 4001: (\d+)`)

// TestBenchSoak_ChurnsThroughARealGateway: the soak against a real
// gateway and echo upstream, every socket its own identity, with kicks
// (which the gateway must close with 4001) and leaves; then the same soak
// with more sockets than the gateway has identities, whose joins fail and
// must be counted and fail the run.
func TestBenchSoak_ChurnsThroughARealGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	base, metrics := startSoakGateway(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"bench", "soak", "--gateway", base, "--metrics", metrics, "--per-room", "5",
		"--duration", "4s", "--warmup", "0s", "--sample", "500ms", "--churn", "20", "--kick-fraction", "0.5",
		// Seconds say nothing about trends (TestSoakReport_Verdict
		// covers the verdict): only errors may fail this run.
		"--tol-heap", "1e12", "--tol-count", "1e9"}
	var out, errb strings.Builder
	code := run(ctx, append(args, "--conns", "12"), &out, &errb)
	if code != 0 {
		t.Fatalf("soak exit %d:\n%s\n%s", code, out.String(), errb.String())
	}
	m := soakOpsLine.FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "Errors: none.") {
		t.Fatalf("report:\n%s", out.String())
	}
	if m[1] != m[2] {
		t.Fatalf("%s kicks, %s sockets closed with 4001:\n%s", m[1], m[2], out.String())
	}

	// 14 sockets, 12 identities at the gateway: soak-0012 and -0013
	// cannot get tokens.
	out.Reset()
	errb.Reset()
	code = run(ctx, append(args, "--conns", "14", "--duration", "2s"), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "- token: ") && !strings.Contains(out.String(), "- join: ") {
		t.Fatalf("soak with unknown identities: exit %d:\n%s\n%s", code, out.String(), errb.String())
	}
}
