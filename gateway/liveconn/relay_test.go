package liveconn

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// chunkReader hands out data in reads of at most the next size in sizes
// (cycling), as a socket does, then fails with err (io.EOF by default).
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
	err   error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), c.sizes[c.i%len(c.sizes)])
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// TestRelay_CopiesEveryByteWhateverTheReads: the relay's switch between
// its small and large buffers must never lose, repeat or reorder a byte.
func TestRelay_CopiesEveryByteWhateverTheReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 300<<10)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name  string
		size  int
		sizes []int
	}{
		{"empty", 0, []int{1}},
		{"one byte", 1, []int{1}},
		{"just below the idle buffer", idleBufferSize - 1, []int{1 << 20}},
		{"exactly the idle buffer", idleBufferSize, []int{1 << 20}},
		{"a burst in one go", 300 << 10, []int{1 << 20}},
		{"a burst then quiet then a burst", 300 << 10, []int{idleBufferSize, burstBufferSize, 100, idleBufferSize, burstBufferSize, burstBufferSize, 7}},
		{"odd reads", 300 << 10, []int{1, 2047, 2049, 4096, 31, 40000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Registry
			var out bytes.Buffer
			n, err := r.relay(out.Write, &chunkReader{data: payload[:tc.size], sizes: tc.sizes})
			if err != nil || n != int64(tc.size) || !bytes.Equal(out.Bytes(), payload[:tc.size]) {
				t.Fatalf("relay: n=%d err=%v, output equal: %v", n, err, bytes.Equal(out.Bytes(), payload[:tc.size]))
			}
		})
	}
}

func TestRelay_ReportsFailures(t *testing.T) {
	var r Registry
	boom := errors.New("reset by peer")
	if _, err := r.relay(io.Discard.Write, &chunkReader{data: []byte("abc"), sizes: []int{1}, err: boom}); !errors.Is(err, boom) {
		t.Errorf("read failure: %v, want %v", err, boom)
	}
	short := func(p []byte) (int, error) { return len(p) - 1, nil }
	if _, err := r.relay(short, &chunkReader{data: []byte("abc"), sizes: []int{3}}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("short write: %v, want io.ErrShortWrite", err)
	}
	closed := errors.New("closed")
	if _, err := r.relay(func([]byte) (int, error) { return 0, closed }, &chunkReader{data: []byte("abc"), sizes: []int{3}}); !errors.Is(err, closed) {
		t.Errorf("write failure: %v, want %v", err, closed)
	}
}
