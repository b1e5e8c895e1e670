package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/web"
)

// TestDev_LiveKitUpstreamStartsLiveKitAndServesTheMeetingPage: `meetguard dev --upstream livekit` starts a
// real livekit-server on loopback, puts it behind the gateway, prints the meeting page's address, and serves
// that page to a signed-in person with the room's signalling path on the gateway. Stopping dev stops the server.
// (The meeting itself, through a gateway built the same way, is TestMeeting_SignedInBrowsersThroughTheGateway
// in gateway/e2eeapi.)
func TestDev_LiveKitUpstreamStartsLiveKitAndServesTheMeetingPage(t *testing.T) {
	bin := defaultLiveKitServer()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("livekit-server not found at %s (set %s or run .ci/run): skipping", bin, envLiveKitServer)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var banner bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- dev(ctx, devOptions{listen: "127.0.0.1:0", audit: filepath.Join(t.TempDir(), "audit.log"), stdout: &banner, logger: zap.NewNop(),
			ready: func(b string) { ready <- b }, livekit: &devLiveKitOptions{server: bin}})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute): // livekit-server drains for up to 15 s
			t.Error("dev did not stop")
		}
	}
	t.Cleanup(stop)
	var base string
	select {
	case base = <-ready:
		waitReady(t, base)
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("dev did not start")
	}
	page := base + web.MeetingPath(liveKitRoom)
	if !strings.Contains(banner.String(), page) {
		t.Fatalf("the banner does not name the meeting page %s:\n%s", page, banner.String())
	}
	lkURL := between(banner.String(), "(LiveKit at ", ")")
	if resp, err := http.Get(lkURL); err != nil {
		t.Fatalf("the LiveKit server dev started does not answer at %q: %v", lkURL, err)
	} else {
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodGet, page, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Authorization", "Bearer "+devToken(t, base, "alice@example.com"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-signal="/lk/room/`+liveKitRoom+`"`) {
		t.Fatalf("meeting page: %d\n%s", resp.StatusCode, body)
	}
	stop()
	if resp, err := http.Get(lkURL); err == nil {
		resp.Body.Close()
		t.Fatalf("livekit-server still answers at %s after dev stopped", lkURL)
	}
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestDev_LiveKitFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "jitsi"}, "--upstream"},
		{[]string{"--livekit-url", "http://127.0.0.1:7880"}, "--livekit-url needs --upstream livekit"},
		{[]string{"--upstream", "livekit", "--livekit-url", "http://127.0.0.1:7880", "--livekit-key", "k", "--livekit-secret", "short"}, "at least 32 bytes"},
	} {
		var stderr bytes.Buffer
		if code := runDev(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr.String())
		}
	}
}
