package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
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
