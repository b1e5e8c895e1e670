package upstream_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/upstream"
	"github.com/meetguard/meetguard/gateway/upstream/bbb"
	"github.com/meetguard/meetguard/gateway/upstream/jitsi"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
)

func parse(t *testing.T, upstreams string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
public_url: https://meet.example.org
oidc:
  issuer: https://idp.example.org
  client_id: meetguard
  client_secret: x
session:
  secret: `+strings.Repeat("k", 32)+`
upstreams:
`+upstreams), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew_BuildsTheAdapterOfEachKind(t *testing.T) {
	key, err := os.ReadFile(filepath.Join("jitsi", "testdata", "asap_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "asap.pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s := strings.Repeat("s", 40)
	c := parse(t, `  - name: app
    url: http://127.0.0.1:8000
  - name: lk
    url: http://127.0.0.1:7880
    kind: livekit
    prefix: /lk/
    rooms: {path: "/lk/room/{room}"}
    livekit: {api_key: k, api_secret: `+s+`}
  - name: meet
    url: http://127.0.0.1:8001
    kind: jitsi
    prefix: /meet/
    rooms: {path: "/meet/{room}"}
    jitsi: {app_id: meetguard, subject: meet.example.org, private_key_file: `+keyFile+`, key_id: meetguard/1}
  - name: classes
    url: https://bbb.example.org
    kind: bbb
    prefix: /classes/
    rooms: {path: "/classes/{room}"}
    bbb: {secret: `+s+`}
`)
	var kinds []string
	endpoints := map[string]http.Handler{}
	for _, u := range c.Upstreams {
		a, err := upstream.New(context.Background(), u, upstream.Options{})
		if err != nil {
			t.Fatalf("%s: %v", u.Name, err)
		}
		switch a.(type) {
		case nil:
			kinds = append(kinds, "generic")
		case *livekit.Adapter:
			kinds = append(kinds, "livekit")
		case *jitsi.Adapter:
			kinds = append(kinds, "jitsi")
		case *bbb.Adapter:
			kinds = append(kinds, "bbb")
		}
		for p, h := range upstream.Endpoints(u.Name, a) {
			endpoints[p] = h
		}
	}
	if strings.Join(kinds, ",") != "generic,livekit,jitsi,bbb" {
		t.Fatalf("kinds %v", kinds)
	}
	if len(endpoints) != 2 || endpoints[upstream.WebhookPath("lk")] == nil || endpoints[upstream.KeyServerPath("meet")] == nil {
		t.Fatalf("endpoints %v", endpoints)
	}
	// The key server works under the mount the lead uses (a prefix).
	mux := http.NewServeMux()
	for p, h := range endpoints {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	sum := sha256.Sum256([]byte("meetguard/1"))
	resp, err := http.Get(srv.URL + upstream.KeyServerPath("meet") + hex.EncodeToString(sum[:]) + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("key server: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Post(srv.URL+upstream.WebhookPath("lk"), "application/webhook+json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d", resp.StatusCode)
	}
}

func TestNew_RefusesWhatValidationWouldHaveCaught(t *testing.T) {
	cases := map[string]config.Upstream{
		"unknown kind":        {Name: "x", URL: "http://127.0.0.1", Kind: "zoom"},
		"livekit block":       {Name: "x", URL: "http://127.0.0.1", Kind: "livekit", Rooms: config.UpstreamRooms{Path: "/room/{room}"}},
		"jitsi block":         {Name: "x", URL: "http://127.0.0.1", Kind: "jitsi", Rooms: config.UpstreamRooms{Path: "/room/{room}"}},
		"bbb block":           {Name: "x", URL: "http://127.0.0.1", Kind: "bbb"},
		"livekit weak secret": {Name: "x", URL: "http://127.0.0.1", Kind: "livekit", Rooms: config.UpstreamRooms{Path: "/room/{room}"}, LiveKit: &config.LiveKit{APIKey: "k", APISecret: "s"}},
		"jitsi key file":      {Name: "x", URL: "http://127.0.0.1", Kind: "jitsi", Rooms: config.UpstreamRooms{Path: "/room/{room}"}, Jitsi: &config.Jitsi{AppID: "a", Subject: "s", PrivateKeyFile: "/nonexistent", KeyID: "k"}},
		"bbb sha1":            {Name: "x", URL: "http://127.0.0.1", Kind: "bbb", BBB: &config.BBB{Secret: strings.Repeat("s", 40), Checksum: "sha1", APIURL: "http://127.0.0.1/api", RedirectHosts: []string{"127.0.0.1"}}},
	}
	for name, u := range cases {
		a, err := upstream.New(context.Background(), u, upstream.Options{})
		if err == nil || a != nil {
			t.Errorf("%s: built %T", name, a)
		}
		if strings.HasSuffix(name, "block") || name == "unknown kind" {
			if !errors.Is(err, upstream.ErrKind) {
				t.Errorf("%s: %v, want ErrKind", name, err)
			}
		}
	}
}
