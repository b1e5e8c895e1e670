package gateway_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
)

// h2cUpstream is a real meeting-server stand-in that honours
// "Upgrade: h2c" the lenient way many Java, Node and Envoy servers do:
// it answers 101 and then serves HTTP/2 on the connection. It records
// every request it serves, over HTTP/1 or inside the tunnel.
type h2cUpstream struct {
	URL string
	mu  sync.Mutex
	got []string // "proto path user"
}

func (u *h2cUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

func startH2CUpstream(t *testing.T) *h2cUpstream {
	t.Helper()
	u := &h2cUpstream{}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, fmt.Sprintf("%s %s %s", r.Proto, r.URL.Path, r.Header.Get("X-Meetguard-User")))
		u.mu.Unlock()
		_, _ = io.WriteString(w, "upstream:"+r.URL.Path)
	})
	// Past the 101 the connection speaks HTTP/2: hand it to a second,
	// HTTP/2-only server.
	tunnels := &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
	h2 := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: inner, Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = h2.Serve(tunnels) }()
	t.Cleanup(func() { _ = h2.Close() })
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "h2c") {
			inner.ServeHTTP(w, r)
			return
		}
		u.mu.Lock()
		u.got = append(u.got, "upgrade "+r.URL.Path+" "+r.Header.Get("X-Meetguard-User"))
		u.mu.Unlock()
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_ = rw.Flush()
		select {
		case tunnels.ch <- &bufferedConn{Conn: conn, r: rw.Reader}:
		case <-tunnels.done:
			conn.Close()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// connListener hands connections to http.Server.Serve.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// rawExchange sends one HTTP/1.1 request on a new connection and returns
// the response and the connection, positioned after the response head.
func rawExchange(t *testing.T, base, req string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp, conn, br
}

// TestUpgrade_H2CSmugglingRefused: an authenticated user asks to upgrade
// an admitted room's connection to h2c. Were the gateway to forward it,
// the upstream answers 101 and the tunnel carries HTTP/2 requests to a
// room the gateway refused, with a forged identity header.
func TestUpgrade_H2CSmugglingRefused(t *testing.T) {
	up := startH2CUpstream(t)
	g := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
		Admitter:  gwtest.RoomRoles{Deny: map[string]bool{"board": true}},
	})
	bearer := g.Bearer(t, "mallory")
	// Check the setup: the refused room really is refused.
	if resp := get(t, http.DefaultClient, g.URL+"/room/board", map[string]string{"Authorization": "Bearer " + bearer}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("setup: refused room answers %d", resp.StatusCode)
	}
	settings := base64.RawURLEncoding.EncodeToString(nil)
	resp, conn, br := rawExchange(t, g.URL, "GET /room/open HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+bearer+
		"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "+settings+"\r\n\r\n")
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The attack goes through: say how far.
		tunnel := &bufferedConn{Conn: conn, r: br}
		tr := &http.Transport{Protocols: new(http.Protocols), DialContext: func(context.Context, string, string) (net.Conn, error) { return tunnel, nil }}
		tr.Protocols.SetUnencryptedHTTP2(true)
		cc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, "http://gw/room/board", nil)
		req.Header.Set("X-Meetguard-User", "alice@example.com")
		r2, err := cc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(r2.Body)
			t.Fatalf("h2c smuggled past admission: refused room answered %d %q; upstream saw %q", r2.StatusCode, body, up.seen())
		}
		t.Fatalf("gateway answered 101 to an h2c upgrade (tunnel request: %v)", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("h2c upgrade: %d, want 400", resp.StatusCode)
	}
	if s := up.seen(); len(s) != 0 {
		t.Fatalf("upstream reached: %q", s)
	}
}

// TestUpgrade_OnlyCompleteWebSocketHandshakesPass: every other way of
// asking for an upgrade is refused before authentication, and a header
// cannot lift the body limit.
func TestUpgrade_OnlyCompleteWebSocketHandshakesPass(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(c *config.Config) { c.Limits.MaxBodyBytes = 1 << 10 }})
	c, resp := e.login("/app")
	resp.Body.Close()
	cookie := ""
	for _, ck := range c.Jar.Cookies(mustURL(t, e.URL)) {
		cookie += ck.Name + "=" + ck.Value + "; "
	}
	ws := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	big := strings.Repeat("a", 4<<10)
	cases := []struct {
		name, req string
		want      int
	}{
		{"h2c", "GET /room/r1 HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", 400},
		{"h2c without HTTP2-Settings", "GET /room/r1 HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n", 400},
		{"websocket and h2c", "GET /room/r1/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 400},
		{"websocket with HTTP2-Settings", "GET /room/r1/ws HTTP/1.1\r\n" + ws + "HTTP2-Settings: AAMAAABkAAQAAP__\r\n", 400},
		{"other token", "GET /room/r1 HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n", 400},
		{"websocket on POST", "POST /room/r1/ws HTTP/1.1\r\n" + ws + "Content-Length: 0\r\n", 400},
		{"websocket without key", "GET /room/r1/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", 400},
		{"websocket with a body", "GET /room/r1/ws HTTP/1.1\r\n" + ws + "Content-Length: 5\r\n\r\nhello", 400},
		{"Connection: Upgrade lifting the body limit", "POST /app HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big, 400},
		{"oversized body, no upgrade", "POST /app HTTP/1.1\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big, 413},
		{"complete websocket handshake", "GET /room/r1/ws HTTP/1.1\r\n" + ws, 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.up.Reset()
			head, body, _ := strings.Cut(tc.req, "\r\n\r\n")
			// A browser's own origin, so the edge's Origin check (cookie
			// callers' upgrades and state changes) is not what answers.
			own := "Host: gw\r\nOrigin: " + e.URL + "\r\nCookie: " + cookie + "\r\n\r\n"
			req := head + own + body
			if !strings.HasSuffix(head, "\r\n") {
				req = head + "\r\n" + own + body
			}
			resp, _, _ := rawExchange(t, e.URL, req)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.want)
			}
			if n := len(e.up.Requests()); tc.want == 400 && n != 0 {
				t.Fatalf("upstream reached %d times", n)
			}
		})
	}
}
