package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"go.uber.org/zap"
)

// startDev runs `meetguard dev` in-process on a free loopback port and
// returns its base URL and audit path.
func startDev(t *testing.T) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- dev(ctx, devOptions{listen: "127.0.0.1:0", audit: auditPath, stdout: io.Discard, logger: zap.NewNop(), ready: func(b string) { ready <- b }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("dev did not stop")
		}
	})
	select {
	case base := <-ready:
		waitReady(t, base)
		return base, auditPath
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not start")
	}
	return "", ""
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/.meetguard/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("dev gateway never became ready")
}

func devToken(t *testing.T, base, user string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/.dev-idp/dev/token", url.Values{"user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("dev token for %s: %d %v", user, resp.StatusCode, err)
	}
	return body.AccessToken
}

func TestDev_ScriptTokensGetPolicyDecisions(t *testing.T) {
	base, auditPath := startDev(t)
	cases := []struct {
		user       string
		wantStatus int
	}{
		{"alice@example.com", http.StatusOK}, // staff (and host)
		{"bob@example.com", http.StatusOK},   // staff
		// Outside guest: the policy says lobby, but only POST …/join (or a
		// browser's page load) may knock; a script's room-path request is
		// refused like any other.
		{"eve@guest.test", http.StatusForbidden},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, base+"/room/demo", nil)
		req.Header.Set("Authorization", "Bearer "+devToken(t, base, tc.user))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s: status %d, want %d: %s", tc.user, resp.StatusCode, tc.wantStatus, body)
		}
	}
	// The explicit join knocks.
	req, _ := http.NewRequest(http.MethodPost, base+"/.meetguard/api/v1/rooms/demo/join", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+devToken(t, base, "eve@guest.test"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("eve's join: status %d, want 202: %s", resp.StatusCode, body)
	}
	// Every decision was recorded.
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"event":"admission.decision"`); n != len(cases)+1 {
		t.Errorf("audit log has %d admission decisions, want %d (the room paths and eve's join)", n, len(cases)+1)
	}
	if _, err := os.Stat(auditPath + ".pub"); err != nil {
		t.Errorf("audit public key not written beside the log: %v", err)
	}
}

// TestDev_BrowserLogsInAndSeesRoom drives real Chromium: open a room,
// get sent to the development provider, pick Alice, come back to the room
// page, and see herself in the live roster (over the proxied WebSocket).
func TestDev_BrowserLogsInAndSeesRoom(t *testing.T) {
	browsertest.Path(t)
	base, _ := startDev(t)
	ctx, cancel := context.WithTimeout(browsertest.Start(t), 60*time.Second)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/room/demo"),
		chromedp.WaitVisible(chromedp.CSS(`button.user[value="alice"]`)),
		chromedp.Click(chromedp.CSS(`button.user[value="alice"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#roster li`)),
	)
	if err != nil {
		t.Fatalf("browser flow: %v", err)
	}
	roster, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#roster`)))
	if err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	shot, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if location != base+"/room/demo" {
		t.Errorf("ended at %s, want the room page", location)
	}
	if !strings.Contains(roster, "Alice") {
		t.Errorf("roster %q does not show Alice", roster)
	}
	if dir := os.Getenv("MEETGUARD_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "dev-room.png"), shot, 0o644)
	}
}
