package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawUpstream is a meeting-server stand-in on a real loopback socket that
// answers every request's handshake with the raw response head given, then
// echoes whatever the connection carries.
func rawUpstream(t *testing.T, head string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, head); err != nil {
					return
				}
				_, _ = io.Copy(c, br)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

const wsHandshake = "GET /app/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

// openThrough sends a WebSocket handshake (and early, in the same write)
// through the gateway and returns its answer and the connection.
func openThrough(t *testing.T, e *env, early string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, wsHandshake+"Authorization: Bearer "+e.idToken()+"\r\n\r\n"+early); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, br, c
}

// TestWSRelay_UpstreamSwitchingToAnotherProtocolIsRefused: the client
// asked for a WebSocket; an upstream that switches to h2c instead must not
// get a tunnel to the client.
func TestWSRelay_UpstreamSwitchingToAnotherProtocolIsRefused(t *testing.T) {
	up := rawUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0")
	e := newEnv(t, envOptions{upstreamURL: up})
	resp, _, _ := openThrough(t, e, "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "PRI") {
		t.Fatalf("status %d, body %q: want 502 and nothing of the tunnel", resp.StatusCode, body)
	}
}

// TestWSRelay_CarriesFramesSentRightBehindTheHandshake: a client may send
// its first frame in the same packet as its handshake; those bytes sit in
// the gateway's read buffer and must reach the upstream (httputil's own
// upgrade handling dropped them), and the upstream's answer the client.
func TestWSRelay_CarriesFramesSentRightBehindTheHandshake(t *testing.T) {
	up := rawUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	e := newEnv(t, envOptions{upstreamURL: up})
	resp, br, c := openThrough(t, e, "early")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	got := make([]byte, len("early"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early" {
		t.Fatalf("echo of the early bytes: %q %v", got, err)
	}
	// And the relay carries on both ways after that.
	if _, err := io.WriteString(c, "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "later" {
		t.Fatalf("echo: %q %v", got, err)
	}
}
