// Package liveconn tracks the long-lived connections (WebSockets and other
// upgrades) the gateway proxies, so that logout, kick and ban can cut them
// at once instead of waiting for the client to go away.
package liveconn

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Meta says whose connection it is and to which room.
type Meta struct {
	SessionID     string
	SubjectKey    string
	Room          string
	ParticipantID string
	Upstream      string
	// WebSocket marks a WebSocket upgrade: CloseWith sends it a close
	// frame before the cut.
	WebSocket bool
}

// Registry holds the live connections of this gateway node.
type Registry struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	// buffers are the relay's large buffers, shared by every connection
	// while it moves a burst (relay.go).
	buffers sync.Pool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{conns: map[*trackedConn]struct{}{}}
}

// Track wraps w so that a connection hijacked through it (as
// httputil.ReverseProxy does for upgrades) is registered under meta until
// it closes.
func (r *Registry) Track(w http.ResponseWriter, meta Meta) http.ResponseWriter {
	return &trackingWriter{ResponseWriter: w, reg: r, meta: meta}
}

// ErrNoLongerAdmitted is returned by Hijack when the admission check of
// TrackChecked fails: the connection is closed before it carries anything.
var ErrNoLongerAdmitted = errors.New("liveconn: no longer admitted")

// TrackChecked is Track with an admission check that runs right after
// the connection is registered, before Hijack returns it. Registering
// first closes the race with a kick: a kick that lands before the check
// is seen by it; one that lands after finds the connection registered.
// A failing check closes the connection. check may be nil.
func (r *Registry) TrackChecked(w http.ResponseWriter, meta Meta, check func() error) http.ResponseWriter {
	return &trackingWriter{ResponseWriter: w, reg: r, meta: meta, check: check}
}

// Close closes every connection whose Meta matches and returns how many.
func (r *Registry) Close(match func(Meta) bool) int {
	r.mu.Lock()
	var victims []*trackedConn
	for c := range r.conns {
		if match(c.meta) {
			victims = append(victims, c)
		}
	}
	r.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
	return len(victims)
}

// CloseWith is Close, but each WebSocket is first sent a close frame with
// code and reason (at most closeFrameWait per connection, all in
// parallel), so that its client can tell a host's removal from a network
// fault. Other upgrades are cut as by Close.
func (r *Registry) CloseWith(match func(Meta) bool, code uint16, reason string) int {
	r.mu.Lock()
	var victims []*trackedConn
	for c := range r.conns {
		if match(c.meta) {
			victims = append(victims, c)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range victims {
		wg.Go(func() {
			if c.ws != nil {
				_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFrameWait))
				c.ws.sendClose(c.Conn.Write, code, reason)
			}
			_ = c.Close()
		})
	}
	wg.Wait()
	return len(victims)
}

// Count is the number of live connections.
func (r *Registry) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// CloseAll closes everything, for shutdown.
func (r *Registry) CloseAll() int {
	return r.Close(func(Meta) bool { return true })
}

type trackingWriter struct {
	http.ResponseWriter
	reg   *Registry
	meta  Meta
	check func() error
}

// Hijack registers the connection it hands out.
func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("liveconn: %w", err)
	}
	tc := &trackedConn{Conn: conn, reg: w.reg, meta: w.meta}
	if w.meta.WebSocket {
		tc.ws = &wsWriter{}
	}
	w.reg.mu.Lock()
	w.reg.conns[tc] = struct{}{}
	w.reg.mu.Unlock()
	if w.check != nil {
		if err := w.check(); err != nil {
			_ = tc.Close()
			return nil, nil, fmt.Errorf("%w: %w", ErrNoLongerAdmitted, err)
		}
	}
	return tc, brw, nil
}

// Flush lets streaming responses through the wrapper.
func (w *trackingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type trackedConn struct {
	net.Conn
	reg  *Registry
	meta Meta
	once sync.Once
	ws   *wsWriter // nil unless a WebSocket
}

// Write follows a WebSocket's frames on the way to the client (see
// CloseWith).
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.ws == nil {
		return c.Conn.Write(p)
	}
	return c.ws.write(c.Conn.Write, p)
}

var errClosing = errors.New("liveconn: connection is being closed")

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.reg.mu.Lock()
		delete(c.reg.conns, c)
		c.reg.mu.Unlock()
	})
	return c.Conn.Close()
}
