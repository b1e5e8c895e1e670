package e2eeapi_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
)

// livekitToken mints a LiveKit access token as the gateway's adapter does (HS256, one room, person grants).
func livekitToken(t *testing.T, lk *livekittest.Server, identity, room string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(lk.APISecret)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": lk.APIKey, "sub": identity, "name": identity, "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"video": map[string]any{"roomJoin": true, "room": room, "canPublish": true, "canSubscribe": true, "canPublishData": true},
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mediaBrowser starts headless Chromium with fake camera and microphone and loopback ICE.
func mediaBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := browsertest.Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	b, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// page is one participant's tab.
type page struct {
	name string
	ctx  context.Context
}

type pageStats struct {
	FramesDecoded    int    `json:"framesDecoded"`
	FramesReceived   int    `json:"framesReceived"`
	PacketsReceived  int    `json:"packetsReceived"`
	Mapped           int    `json:"mapped"`
	Received         int    `json:"received"`
	LastError        string `json:"lastError"`
	Announced        bool   `json:"announced"`
	EncryptionErrors int    `json:"encryptionErrors"`
	RemoteEncrypted  []bool `json:"remoteEncrypted"`
	// E2EERequired: the page's LiveKit token marks the room as requiring e2ee; Clear are the identities
	// whose tracks arrived unencrypted and were refused.
	E2EERequired bool     `json:"e2eeRequired"`
	Clear        []string `json:"clear"`
	// KeyedAt is when (Unix ms) the page set its sending key of each "epoch.generation".
	KeyedAt map[string]float64 `json:"keyedAt"`
}

type pageStatus struct {
	State        string `json:"state"`
	Epoch        uint64 `json:"epoch"`
	Generation   uint8  `json:"generation"`
	SecurityCode string `json:"securityCode"`
	Members      []struct {
		Fingerprint string `json:"fingerprint"`
		Self        bool   `json:"self"`
		OwnDevice   bool   `json:"ownDevice"`
		Confirmed   bool   `json:"confirmed"`
	} `json:"members"`
	Unconfirmed []string `json:"unconfirmed"`
	Alarm       *struct {
		Kind string `json:"kind"`
	} `json:"alarm"`
}

func (p *page) status(t *testing.T) pageStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.meetguardMeeting.status() ?? {})`))
	if err != nil {
		t.Fatalf("%s: status: %v", p.name, err)
	}
	var st pageStatus
	_ = json.Unmarshal([]byte(s), &st)
	return st
}

func (p *page) stats(t *testing.T) pageStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.meetguardMeeting.stats().then(JSON.stringify)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: stats: %v", p.name, err)
	}
	var st pageStats
	_ = json.Unmarshal([]byte(s), &st)
	return st
}

// pollUntil polls cond every 100 ms for up to 2 min (a loaded machine: the limit is a hang guard, not a
// measurement).
func pollUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never: %s (last: %s)", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *page) screenshot(t *testing.T, dir string) {
	if shot, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(90)); err == nil {
		path := filepath.Join(dir, p.name+".png")
		if os.WriteFile(path, shot, 0o644) == nil {
			t.Logf("screenshot of %s's page: %s", p.name, path)
		}
	}
}
