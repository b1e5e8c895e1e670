// Package livekittest runs a real livekit-server on 127.0.0.1 for tests: dev
// mode, explicit keys, every socket on loopback, no TCP ICE port, killed
// when the test ends. It also reads the first signalling messages that
// tests assert on, and asks the server's room service what it holds,
// independently of the adapter under test.
//
// It never touches a LiveKit it did not start, and it skips (never fails)
// a test when the binary is absent.
package livekittest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// EnvBinary names the environment variable with the livekit-server path.
const EnvBinary = "MEETGUARD_LIVEKIT_SERVER"

// Version is the release the tests are written against; .ci/run builds it.
const Version = "v1.13.5"

// Binary finds livekit-server: $MEETGUARD_LIVEKIT_SERVER, else the cache
// path .ci/run installs to (<user cache>/meetguard/livekit/server).
func Binary() (string, bool) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		return p, false
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", false
	}
	p := filepath.Join(dir, "meetguard", "livekit", "server")
	if _, err := os.Stat(p); err != nil {
		return p, false
	}
	return p, true
}

// SkipMessage explains a skip for want of the binary.
func SkipMessage(path string) string {
	return fmt.Sprintf("livekit-server not found at %q: build it with `GOBIN=$(dirname %s) go install github.com/livekit/livekit-server/cmd/server@%s` or set %s; skipping the test that needs a real LiveKit", path, path, Version, EnvBinary)
}

// Options configures a server.
type Options struct {
	// WebhookURL, when set, receives the server's webhooks signed with
	// the test key.
	WebhookURL string
}

// Server is a running livekit-server.
type Server struct {
	// URL is the HTTP base, e.g. http://127.0.0.1:41234.
	URL       string
	APIKey    string
	APISecret string

	cmd  *exec.Cmd
	log  string
	once sync.Once
}

// Start runs livekit-server for one test and kills it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		t.Skip(SkipMessage(bin))
	}
	dir := t.TempDir()
	httpPort := freePort(t, "tcp")
	udpPort := freePort(t, "udp")
	s := &Server{
		URL:       "http://127.0.0.1:" + strconv.Itoa(httpPort),
		APIKey:    "meetguard-test",
		APISecret: "test-secret-0123456789abcdef0123456789abcdef",
		log:       filepath.Join(dir, "livekit.log"),
	}
	// tcp_port 0: LiveKit's ICE/TCP listener cannot be bound to one
	// address, so it is off. UDP is muxed on one port on 127.0.0.1 only.
	cfg := fmt.Sprintf(`port: %d
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: %d
  tcp_port: 0
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
  ips:
    includes: ["127.0.0.1/32"]
logging:
  level: info
`, httpPort, udpPort)
	if o.WebhookURL != "" {
		cfg += fmt.Sprintf("webhook:\n  api_key: %s\n  urls: [%q]\n", s.APIKey, o.WebhookURL)
	}
	cfgPath := filepath.Join(dir, "livekit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "--config", cfgPath, "--dev", "--bind", "127.0.0.1", "--keys", s.APIKey+": "+s.APISecret)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("livekittest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		s.stop()
		logf.Close()
		if t.Failed() {
			t.Logf("livekit-server log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	probe := &http.Client{Timeout: time.Second}
	for {
		resp, err := probe.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("livekittest: server not ready at %s: %v\n%s", s.URL, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
}

// Log is what the server wrote so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// WSURL is the server's WebSocket base.
func (s *Server) WSURL() string {
	return "ws" + s.URL[len("http"):]
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// Validate calls /rtc/validate the way a client SDK does, with the token
// in the query, and returns the status and body.
func (s *Server) Validate(t testing.TB, token string) (int, string) {
	t.Helper()
	q := url.Values{"access_token": {token}, "protocol": {"16"}, "sdk": {"go"}}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + "/rtc/validate?" + q.Encode())
	if err != nil {
		t.Fatalf("validate: %v", errors.Unwrap(err)) // the URL holds the token
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Participants lists the identities in room through the room service,
// with an admin token this package signs itself.
func (s *Server) Participants(ctx context.Context, room string) ([]string, error) {
	var res struct {
		Participants []struct {
			Identity string `json:"identity"`
		} `json:"participants"`
	}
	if err := s.twirp(ctx, "ListParticipants", room, map[string]string{"room": room}, &res); err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range res.Participants {
		ids = append(ids, p.Identity)
	}
	return ids, nil
}

// Permission is what the server says one participant may do (the room
// service answers with protobuf field names).
type Permission struct {
	CanPublish     bool `json:"can_publish"`
	CanSubscribe   bool `json:"can_subscribe"`
	CanPublishData bool `json:"can_publish_data"`
}

// Permission asks the room service for identity's permissions in room.
func (s *Server) Permission(ctx context.Context, room, identity string) (Permission, error) {
	var res struct {
		Permission Permission `json:"permission"`
	}
	err := s.twirp(ctx, "GetParticipant", room, map[string]string{"room": room, "identity": identity}, &res)
	return res.Permission, err
}

// WaitPermission polls until cond holds for identity's permissions.
func (s *Server) WaitPermission(ctx context.Context, room, identity string, cond func(Permission) bool) (Permission, error) {
	for {
		p, err := s.Permission(ctx, room, identity)
		if err == nil && cond(p) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) twirp(ctx context.Context, method, room string, in, out any) error {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(s.APISecret)}, nil)
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := jwt.Signed(sig).Claims(map[string]any{
		"iss": s.APIKey, "sub": "livekittest", "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"video": map[string]any{"roomAdmin": true, "roomList": true, "room": room},
	}).Serialize()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/twirp/livekit.RoomService/"+method, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("livekittest: %s: %d %s", method, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// WaitParticipants polls until cond holds for room's identities.
func (s *Server) WaitParticipants(ctx context.Context, room string, cond func([]string) bool) ([]string, error) {
	for {
		ids, err := s.Participants(ctx, room)
		if err == nil && cond(ids) {
			return ids, nil
		}
		select {
		case <-ctx.Done():
			return ids, errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
