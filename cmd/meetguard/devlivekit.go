package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/upstream"
)

// envLiveKitServer names livekit-server's path for `meetguard dev --upstream livekit` (and the tests).
const envLiveKitServer = "MEETGUARD_LIVEKIT_SERVER"

// liveKitUpstream is the LiveKit upstream of `meetguard dev --upstream livekit`: its rooms are at
// /lk/room/{room}, where the meeting page signals through the gateway.
const liveKitUpstream = "lk"

// devLiveKit is a LiveKit server for `meetguard dev`: one it started (stop ends it) or one it was pointed at.
type devLiveKit struct {
	url, key, secret string
	stop             func()
}

// defaultLiveKitServer is $MEETGUARD_LIVEKIT_SERVER, else where .ci/run installs livekit-server.
func defaultLiveKitServer() string {
	if p := os.Getenv(envLiveKitServer); p != "" {
		return p
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "meetguard", "livekit", "server")
	}
	return "livekit-server"
}

// startLiveKit runs livekit-server on loopback only (signalling, the one UDP media port, no TCP ICE), with a
// fresh key pair and its webhooks sent to the gateway at base; it is stopped (SIGTERM, then killed) by stop.
func startLiveKit(ctx context.Context, bin, base, logDir string) (*devLiveKit, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("livekit-server not found at %s (build it with `go install github.com/livekit/livekit-server/cmd/server@v1.13.5`, or set %s, or give --livekit-url): %w", bin, envLiveKitServer, err)
	}
	httpPort, err := loopbackPort("tcp")
	if err != nil {
		return nil, err
	}
	udpPort, err := loopbackPort("udp")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	lk := &devLiveKit{url: "http://127.0.0.1:" + strconv.Itoa(httpPort), key: "meetguard-dev", secret: hex.EncodeToString(b)}
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
keys:
  %s: %s
webhook:
  api_key: %s
  urls: [%q]
logging:
  level: warn
`, httpPort, udpPort, lk.key, lk.secret, lk.key, base+upstream.WebhookPath(liveKitUpstream))
	cfgPath := filepath.Join(logDir, "livekit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(logDir, "livekit.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start livekit-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	lk.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second): // it drains participants first
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(time.Minute) // a loaded machine starts it slowly
	for {
		resp, err := http.Get(lk.url)
		if err == nil {
			resp.Body.Close()
			return lk, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("livekit-server exited at start; see %s", logFile.Name())
		case <-ctx.Done():
			lk.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			lk.stop()
			return nil, errors.New("livekit-server did not answer within a minute")
		}
	}
}

// loopbackPort asks the kernel for a free loopback port of network ("tcp" or "udp").
func loopbackPort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// liveKitRoom is the room `meetguard dev --upstream livekit` sets up for the meeting page; it requires
// end-to-end encryption.
const liveKitRoom = "e2ee-demo"

// liveKitConfig is the gateway's LiveKit upstream for lk, and its room.
func liveKitConfig(lk *devLiveKit) (config.Upstream, config.PermanentRoom) {
	return config.Upstream{
			Name: liveKitUpstream, URL: lk.url, Kind: "livekit", Prefix: "/lk/",
			Rooms:   config.UpstreamRooms{Path: "/lk/room/{room}"},
			LiveKit: &config.LiveKit{APIKey: lk.key, APISecret: lk.secret},
		},
		config.PermanentRoom{ID: liveKitRoom, E2EERequired: true}
}
