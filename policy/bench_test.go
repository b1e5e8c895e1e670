package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchPolicy is the shipped bundle with 100 rooms' worth of configuration
// (per-room capacity and host groups) and a few more domains and groups, as
// a mid-sized organisation would run it.
func benchPolicy(b testing.TB) string {
	b.Helper()
	dir := copyShipped(b)
	name := filepath.Join(dir, "data.json")
	raw, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		b.Fatal(err)
	}
	cfg := data["meetguard"].(map[string]any)["config"].(map[string]any)
	rooms := cfg["rooms"].(map[string]any)
	for i := range 100 {
		rooms[fmt.Sprintf("room-%03d", i)] = map[string]any{"capacity": 20 + i, "host_groups": []string{fmt.Sprintf("team-%03d-leads", i)}}
	}
	cfg["staff_domains"] = []string{"example.com", "example.org", "corp.example.net", "lab.example.com"}
	cfg["host_groups"] = []string{"meeting-hosts", "it-admins", "executive-assistants"}
	out, err := json.Marshal(data)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(name, out, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchInput is a staff member in ten groups joining a configured room
// with meeting hours, so every rule family is evaluated.
func benchInput() Input {
	in := staffInput()
	in.Identity.Groups = []string{"staff", "engineering", "berlin", "team-042", "vpn-users", "all-hands", "guild-go", "guild-security", "oncall", "parents"}
	in.Identity.AMR = []string{"pwd", "mfa"}
	in.Room.ID = "room-042"
	in.Room.Tags = []string{"business-hours", "engineering"}
	in.Room.Occupancy = 17
	in.Device = Device{KeyRegistered: true, KeyFingerprint: "SHA256:Jg9m1Yp8q4W0s3nV6cD2rT5uX7zA1bE4fH8kL0oQ2iM", PQ: true}
	return in
}

// reportLatency records per-decision latency percentiles.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)*50/100]), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100]), "p99-ns")
}

// processCPU is the CPU time this process has used (garbage collection
// included): on a shared machine the wall time of a benchmark says more about
// the neighbours than about the code.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation.
func reportCPU(b *testing.B, d time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkDecide(b *testing.B) {
	dir := benchPolicy(b)
	minimal := policyDir(b, map[string]string{"p.rego": "package meetguard.admission\n\ndecision := {\"allow\": true, \"role\": \"participant\"}\n"})
	// The same bundle with admission.rego as it was before it was shaped
	// for the evaluator, for benchstat comparisons in one run.
	v1 := benchPolicy(b)
	copyFile(b, filepath.Join("testdata", "admission-v1", "admission.rego"), filepath.Join(v1, "admission.rego"))
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{name: "minimal-policy", opts: Options{Dir: minimal}},
		{name: "shipped-100-rooms", opts: Options{Dir: dir}},
		{name: "shipped-100-rooms-v1", opts: Options{Dir: v1}},
		{name: "shipped-100-rooms+decision-log", opts: Options{Dir: dir, MaskFields: []string{"/identity/email"}, OnDecision: func(DecisionRecord) {}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, bc.opts)
			in := benchInput()
			ctx := context.Background()
			if d := e.Decide(ctx, in); !d.Allow || d.Role != RoleParticipant {
				b.Fatalf("benchmark input decided %+v", d)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for b.Loop() {
				start := time.Now()
				e.Decide(ctx, in)
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			reportCPU(b, processCPU()-cpu)
			reportLatency(b, durations)
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	e := newEngine(b, Options{Dir: benchPolicy(b)})
	in := benchInput()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			e.Decide(ctx, in)
		}
	})
}

// BenchmarkReload is a SIGHUP reload of the shipped bundle with 100 rooms:
// read, hash, parse, compile with schema checks, run its Rego tests, prepare.
func BenchmarkReload(b *testing.B) {
	dir := benchPolicy(b)
	e := newEngine(b, Options{Dir: dir})
	name := filepath.Join(dir, "data.json")
	orig, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		// A new revision each time, so nothing is skipped as unchanged.
		if err := os.WriteFile(name, append(orig, fmt.Sprintf("\n%*s", i%64, "")...), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := e.Reload(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchReload is a file change to the new revision serving,
// through fsnotify and a 1ms debounce.
func BenchmarkWatchReload(b *testing.B) {
	dir := benchPolicy(b)
	reloaded := make(chan ReloadEvent, 16)
	e := newEngine(b, Options{Dir: dir, WatchDebounce: time.Millisecond, OnReload: func(ev ReloadEvent) { reloaded <- ev }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Watch(ctx) })
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // let the watch start

	name := filepath.Join(dir, "data.json")
	orig, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		old := e.Revision()
		if err := os.WriteFile(name, append(orig, fmt.Sprintf("\n%*s", i%64+1, "")...), 0o644); err != nil {
			b.Fatal(err)
		}
		for e.Revision() == old {
			select {
			case ev := <-reloaded:
				if !ev.OK {
					b.Fatalf("reload refused: %v", ev.Err)
				}
			case <-time.After(30 * time.Second):
				b.Fatal("no reload")
			}
		}
	}
}
