package liveconn

import (
	"errors"
	"io"
)

// An idle WebSocket spends its whole life with one goroutine per direction
// blocked in Read. Through io.Copy each of them waits in its own 32 KiB
// buffer, which made buffers most of what an idle proxied socket costs the
// gateway (docs/performance.md). trackedConn therefore implements WriterTo
// and ReaderFrom, which io.Copy (and so httputil's upgrade copier) prefers:
// each direction waits in a small buffer, moves to a pooled large one only
// while a read fills the small one (a burst), and gives the large one back
// at the first short read.
const (
	idleBufferSize  = 2 << 10
	burstBufferSize = 32 << 10
)

// burstBuffer is a pooled large buffer.
type burstBuffer [burstBufferSize]byte

// relay copies src to write until src ends (nil) or either side fails.
func (r *Registry) relay(write func([]byte) (int, error), src io.Reader) (int64, error) {
	small := make([]byte, idleBufferSize)
	var big *burstBuffer
	defer func() {
		if big != nil {
			r.buffers.Put(big)
		}
	}()
	var total int64
	for {
		buf := small
		if big != nil {
			buf = big[:]
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w != n {
				return total, io.ErrShortWrite
			}
		}
		switch {
		case big == nil && n == len(small):
			// A burst: read the rest of it in big steps.
			if b, ok := r.buffers.Get().(*burstBuffer); ok {
				big = b
			} else {
				big = new(burstBuffer)
			}
		case big != nil && n < len(big):
			// The burst is over: wait in the small buffer again.
			r.buffers.Put(big)
			big = nil
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return total, nil
			}
			return total, rerr
		}
	}
}

// WriteTo copies what the client sends to w (the upstream).
func (c *trackedConn) WriteTo(w io.Writer) (int64, error) {
	return c.reg.relay(w.Write, c.Conn)
}

// ReadFrom copies what the upstream sends to the client, through Write, so
// that WebSocket frames stay tracked.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	return c.reg.relay(c.Write, r)
}
