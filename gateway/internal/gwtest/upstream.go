package gwtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Recorder keeps copies of the requests that reached an upstream. The
// zero value is ready to use.
type Recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

// Record stores a copy of r.
func (rec *Recorder) Record(r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
	rec.mu.Unlock()
}

// Requests are the recorded requests so far.
func (rec *Recorder) Requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

// Reset forgets the recorded requests.
func (rec *Recorder) Reset() {
	rec.mu.Lock()
	rec.reqs = nil
	rec.mu.Unlock()
}

// UpstreamOptions configures an Upstream.
type UpstreamOptions struct {
	// Body is the text/plain answer to a plain request; default
	// "upstream:" and the request's escaped path.
	Body func(r *http.Request) string
}

// Upstream is a real HTTP server on 127.0.0.1 standing in for a meeting
// server: it records every request that reaches it, echoes WebSocket
// messages on paths ending in /ws, and answers anything else with
// UpstreamOptions.Body.
type Upstream struct {
	URL string
	Recorder
}

// StartUpstream runs an Upstream until the test ends.
func StartUpstream(t testing.TB, o UpstreamOptions) *Upstream {
	t.Helper()
	body := o.Body
	if body == nil {
		body = func(r *http.Request) string { return "upstream:" + r.URL.EscapedPath() }
	}
	u := &Upstream{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.Record(r)
		if strings.HasSuffix(r.URL.Path, "/ws") {
			echoWebSocket(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body(r))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

// echoWebSocket sends every message back until the client goes away.
func echoWebSocket(w http.ResponseWriter, r *http.Request) {
	// The gateway in front decides which origins may open a socket; the
	// stand-in accepts whatever it forwards, so tests see that decision.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
}
