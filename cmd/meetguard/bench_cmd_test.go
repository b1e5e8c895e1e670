package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// startBenchRole runs one `meetguard bench` role in-process until the test
// ends and returns the address it prints.
func startBenchRole(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"bench"}, args...), pw, io.Discard); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("bench %s: %v", args[0], err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return strings.TrimSpace(strings.TrimPrefix(line, "listening "))
}

// TestBench_WSClientsThroughPlainProxy drives the peer comparison's Go
// roles end to end: sockets opened through the plain proxy to the upstream
// echo, each checked with one message.
func TestBench_WSClientsThroughPlainProxy(t *testing.T) {
	up := startBenchRole(t, "upstream", "--listen", "127.0.0.1:0")
	px := startBenchRole(t, "plainproxy", "--listen", "127.0.0.1:0", "--to", "http://"+up)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	if code := run(ctx, []string{"bench", "wsclients", "--url", "ws://" + px + "/app/ws", "--n", "5", "--once"}, &out, io.Discard); code != 0 {
		t.Fatalf("wsclients exit %d: %s", code, out.String())
	}
	if got := strings.TrimSpace(out.String()); got != "held 5 failed 0" {
		t.Fatalf("wsclients said %q", got)
	}
	// A socket to a path that does not echo fails, and says so.
	out.Reset()
	if code := run(ctx, []string{"bench", "wsclients", "--url", "ws://" + px + "/app/x", "--n", "2", "--once"}, &out, io.Discard); code == 0 {
		t.Fatalf("wsclients to a plain page succeeded: %s", out.String())
	}
}

func TestBench_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "nope"},
		{"bench", "plainproxy", "--to", "::"},
		{"bench", "gateway"},
		{"bench", "wsclients", "--header", "no-colon", "--url", "ws://127.0.0.1:1/ws"},
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
