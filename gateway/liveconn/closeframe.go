package liveconn

import (
	"encoding/binary"
	"sync"
	"time"
)

// Close codes the gateway sends a WebSocket client whose admission a host
// ended, so that its page can say so instead of reconnecting (docs/api.md).
// 4000–4999 are the application's own codes (RFC 6455, 7.4.2).
const (
	// CodeRemoved: removed by a host, or the room was suspended.
	CodeRemoved uint16 = 4001
	// CodeBanned: removed and banned by a host.
	CodeBanned uint16 = 4003
	// CodeRoleChanged: a host changed the participant's role; the
	// admission stands and the client should reconnect, its next
	// connection carrying the new role.
	CodeRoleChanged uint16 = 4005
	// CodeEnded: the admission ended otherwise (left elsewhere, lease
	// lapsed). 1008 is the standard "policy violation".
	CodeEnded uint16 = 1008
)

// closeFrameWait bounds how long a cut waits to send its close frame: for
// a write stuck on a slow client, or for the upstream to finish the frame
// it is in the middle of. After it the connection is cut without one.
const closeFrameWait = 500 * time.Millisecond

// frameCursor follows the frame boundaries of the server-to-client
// WebSocket stream the proxy copies, so that a close frame is only ever
// written between two frames (a control frame may also go between the
// fragments of a message, RFC 6455, 5.4). The bytes come from the upstream:
// anything it cannot follow marks the stream broken, and then no frame is
// ever injected.
type frameCursor struct {
	hdr    [14]byte
	n      int    // header bytes collected
	left   uint64 // payload bytes of the current frame still to come
	broken bool
}

// advance consumes bytes written to the client.
func (f *frameCursor) advance(p []byte) {
	for len(p) > 0 && !f.broken {
		if f.left > 0 {
			k := min(uint64(len(p)), f.left)
			f.left -= k
			p = p[k:]
			continue
		}
		f.hdr[f.n] = p[0]
		f.n++
		p = p[1:]
		need := headerLen(f.hdr[:f.n])
		if f.n < need {
			continue
		}
		f.left, f.broken = payloadLen(f.hdr[:f.n])
		f.n = 0
	}
}

// atBoundary reports whether the next byte written would start a frame.
func (f *frameCursor) atBoundary() bool { return !f.broken && f.n == 0 && f.left == 0 }

// headerLen is the length of the frame header that starts with h, as far
// as h tells (at least 2).
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// payloadLen reads a complete header's payload length; broken for a
// length with the top bit set, which RFC 6455 forbids.
func payloadLen(h []byte) (uint64, bool) {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4])), false
	case 127:
		n := binary.BigEndian.Uint64(h[2:10])
		return n, n>>63 != 0
	default:
		return uint64(l), false
	}
}

// closeFrame is an unmasked server close frame; reason is cut to fit a
// control frame's 125 bytes.
func closeFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b := make([]byte, 4, 4+len(reason))
	b[0] = 0x88 // FIN, opcode close
	b[1] = byte(2 + len(reason))
	binary.BigEndian.PutUint16(b[2:], code)
	return append(b, reason...)
}

// wsWriter is the frame-aware part of a tracked WebSocket connection.
type wsWriter struct {
	mu      sync.Mutex
	cur     frameCursor
	pending []byte        // a close frame waiting for the frame in flight to end
	sent    chan struct{} // closed once pending went out (or was dropped)
	done    bool          // closing: nothing more is written
}

// write passes p to the client through w (holding the lock), then sends a
// pending close frame if p ended a frame.
func (ws *wsWriter) write(w func([]byte) (int, error), p []byte) (int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.done {
		return 0, errClosing
	}
	n, err := w(p)
	ws.cur.advance(p[:n])
	if ws.pending != nil && ws.cur.atBoundary() {
		_, _ = w(ws.pending)
		ws.pending, ws.done = nil, true
		close(ws.sent)
		return n, errClosing
	}
	return n, err
}

// sendClose writes the close frame now if the stream is between frames, or
// leaves it for the write that ends the current frame and waits for that
// up to closeFrameWait.
func (ws *wsWriter) sendClose(w func([]byte) (int, error), code uint16, reason string) {
	ws.mu.Lock()
	if ws.done {
		ws.mu.Unlock()
		return
	}
	if ws.cur.atBoundary() {
		_, _ = w(closeFrame(code, reason))
		ws.done = true
		ws.mu.Unlock()
		return
	}
	if ws.cur.broken {
		ws.done = true
		ws.mu.Unlock()
		return
	}
	ws.pending, ws.sent = closeFrame(code, reason), make(chan struct{})
	sent := ws.sent
	ws.mu.Unlock()
	select {
	case <-sent:
	case <-time.After(closeFrameWait):
		ws.mu.Lock()
		ws.pending, ws.done = nil, true
		ws.mu.Unlock()
	}
}
