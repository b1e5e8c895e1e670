package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
)

// TestServe_GCPercent runs `meetguard serve` (its config missing, so it
// stops after the runtime settings) and `meetguard bench gateway` (a bad
// flag) and reads the collector's target: 200 % when GOGC is unset, and
// whatever GOGC said when it is set, "off" included.
func TestServe_GCPercent(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	tests := []struct {
		name string
		gogc string // "" = unset
		was  int    // the target the runtime took from GOGC at start
		want int
	}{
		{name: "unset", was: 100, want: defaultGCPercent},
		{name: "GOGC=50", gogc: "50", was: 50, want: 50},
		{name: "GOGC=off", gogc: "off", was: -1, want: -1},
		{name: "GOGC=100 (Go's default, asked for)", gogc: "100", was: 100, want: 100},
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			if tt.gogc == "" {
				if err := os.Unsetenv("GOGC"); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"serve", "--config", missing}, {"bench", "gateway", "--no-such-flag"}} {
				debug.SetGCPercent(tt.was)
				if code, _, _ := runCLI(args...); code == 0 {
					t.Fatalf("%v ran", args)
				}
				if got := debug.SetGCPercent(100); got != tt.want {
					t.Errorf("%v: GC percent %d, want %d", args, got, tt.want)
				}
			}
		})
	}
}

// TestApplyMemoryLimit: a container's limit becomes a soft limit at 90 %
// of it, so that GOGC=200's headroom makes the collector run earlier
// instead of the kernel killing the gateway; an operator's GOMEMLIMIT or
// AUTOMEMLIMIT wins, and without a limit nothing changes.
func TestApplyMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	noLimit := func() (uint64, error) { return 0, memlimit.ErrNoLimit }
	unreadable := func() (uint64, error) { return 0, errors.New("no cgroup memory controller") }
	tests := []struct {
		name     string
		env      map[string]string
		provider memlimit.Provider
		want     int64
	}{
		{name: "container limit", provider: memlimit.Limit(gib), want: gib * 9 / 10},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "300MiB"}, provider: memlimit.Limit(gib), want: math.MaxInt64},
		{name: "AUTOMEMLIMIT=off", env: map[string]string{"AUTOMEMLIMIT": "off"}, provider: memlimit.Limit(gib), want: math.MaxInt64},
		{name: "AUTOMEMLIMIT=0.5", env: map[string]string{"AUTOMEMLIMIT": "0.5"}, provider: memlimit.Limit(gib), want: gib / 2},
		{name: "no limit", provider: noLimit, want: math.MaxInt64},
		{name: "cgroup unreadable", provider: unreadable, want: math.MaxInt64},
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
				t.Setenv(k, tt.env[k])
				if _, set := tt.env[k]; !set {
					if err := os.Unsetenv(k); err != nil {
						t.Fatal(err)
					}
				}
			}
			debug.SetMemoryLimit(math.MaxInt64)
			applyMemoryLimit(zap.NewNop(), tt.provider)
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
}
