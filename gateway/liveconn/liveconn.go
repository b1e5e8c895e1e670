// Package liveconn tracks the long-lived connections (WebSockets and other
// upgrades) the gateway proxies, so that logout, kick and ban can cut them
// at once instead of waiting for the client to go away.
package liveconn

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// Meta says whose connection it is and to which room.
type Meta struct {
	SessionID     string
	SubjectKey    string
	Room          string
	ParticipantID string
	Upstream      string
}

// Registry holds the live connections of this gateway node.
type Registry struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
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
	reg  *Registry
	meta Meta
}

// Hijack registers the connection it hands out.
func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("liveconn: %w", err)
	}
	tc := &trackedConn{Conn: conn, reg: w.reg, meta: w.meta}
	w.reg.mu.Lock()
	w.reg.conns[tc] = struct{}{}
	w.reg.mu.Unlock()
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
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.reg.mu.Lock()
		delete(c.reg.conns, c)
		c.reg.mu.Unlock()
	})
	return c.Conn.Close()
}
