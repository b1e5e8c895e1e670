package liveconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// frame builds an unmasked server frame with n payload bytes.
func frame(opcode byte, n int) []byte {
	var b []byte
	switch {
	case n < 126:
		b = []byte{0x80 | opcode, byte(n)}
	case n < 1<<16:
		b = []byte{0x80 | opcode, 126, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10)
		b[0], b[1] = 0x80|opcode, 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	return append(b, bytes.Repeat([]byte{'x'}, n)...)
}

func TestFrameCursor_BoundariesWhateverTheSplit(t *testing.T) {
	frames := [][]byte{frame(1, 0), frame(1, 5), frame(2, 125), frame(2, 126), frame(1, 300), frame(2, 70000), frame(9, 3)}
	var stream []byte
	ends := map[int]bool{}
	for _, f := range frames {
		stream = append(stream, f...)
		ends[len(stream)] = true
	}
	for _, chunk := range []int{1, 2, 3, 7, 126, 4096, len(stream)} {
		var f frameCursor
		for i := 0; i < len(stream); i += chunk {
			end := min(i+chunk, len(stream))
			f.advance(stream[i:end])
			if want := ends[end]; f.atBoundary() != want {
				t.Fatalf("chunk %d: after %d bytes atBoundary = %v, want %v", chunk, end, f.atBoundary(), want)
			}
		}
	}
}

func TestFrameCursor_MaskedAndHostileHeaders(t *testing.T) {
	var f frameCursor
	f.advance([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l'})
	if f.atBoundary() {
		t.Fatal("boundary inside a masked frame")
	}
	f.advance([]byte{'o'})
	if !f.atBoundary() {
		t.Fatal("no boundary after a masked frame")
	}
	f.advance([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0})
	if f.atBoundary() || !f.broken {
		t.Fatal("a 64-bit length with the top bit set must mark the stream broken")
	}
}

// FuzzFrameCursor: whatever the upstream sends, in whatever pieces, the
// cursor neither panics nor disagrees with itself; a stream of whole
// frames always ends at a boundary.
func FuzzFrameCursor(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint8(1))
	f.Add(frame(2, 200), uint8(7))
	f.Add([]byte{0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 1}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		step := int(chunk) + 1
		var a, b frameCursor
		for i := 0; i < len(data); i += step {
			a.advance(data[i:min(i+step, len(data))])
		}
		b.advance(data)
		if a != b {
			t.Fatalf("split %d: %+v, whole: %+v", step, a, b)
		}
		// Re-frame the data as payloads of whole frames.
		var c frameCursor
		for len(data) > 0 {
			n := min(len(data), int(data[0])+1)
			c.advance(frame(2, n))
			if !c.atBoundary() {
				t.Fatalf("no boundary after a whole frame of %d", n)
			}
			data = data[n:]
		}
	})
}

// TestCloseWith_WaitsForTheFrameInFlight: a cut that comes while the
// upstream is half-way through a frame sends its close frame right after
// that frame, never inside it.
func TestCloseWith_WaitsForTheFrameInFlight(t *testing.T) {
	client, server := net.Pipe()
	reg := NewRegistry()
	tc := &trackedConn{Conn: server, reg: reg, meta: Meta{Room: "r", WebSocket: true}, ws: &wsWriter{}}
	reg.conns[tc] = struct{}{}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	msg := frame(1, 10)
	if _, err := tc.Write(msg[:6]); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- reg.CloseWith(func(m Meta) bool { return m.Room == "r" }, CodeRemoved, "removed") }()
	time.Sleep(50 * time.Millisecond) // let the cut find the frame in flight
	if _, err := tc.Write(msg[6:]); err == nil {
		t.Error("the write that ended the frame was not told the connection is closing")
	}
	if n := <-done; n != 1 {
		t.Fatalf("closed %d connections", n)
	}
	want := append(append([]byte{}, msg...), closeFrame(CodeRemoved, "removed")...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client read %x, want the whole frame then the close frame %x", b, want)
	}
	if reg.Count() != 0 {
		t.Fatal("the connection is still registered")
	}
}

func TestCloseWith_AtBoundarySendsCodeAndReason(t *testing.T) {
	client, server := net.Pipe()
	reg := NewRegistry()
	tc := &trackedConn{Conn: server, reg: reg, meta: Meta{Room: "r", WebSocket: true}, ws: &wsWriter{}}
	reg.conns[tc] = struct{}{}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	reg.CloseWith(func(Meta) bool { return true }, CodeBanned, "banned")
	b := <-got
	if len(b) != 4+len("banned") || b[0] != 0x88 || binary.BigEndian.Uint16(b[2:4]) != 4003 || string(b[4:]) != "banned" {
		t.Fatalf("close frame %x", b)
	}
}

// BenchmarkWSWriter_FrameTracking is what following frame boundaries costs
// each write the proxy copies to a client (1 KiB text frames).
func BenchmarkWSWriter_FrameTracking(b *testing.B) {
	msg := frame(1, 1024)
	discard := func(p []byte) (int, error) { return len(p), nil }
	var ws wsWriter
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ws.write(discard, msg); err != nil {
			b.Fatal(err)
		}
	}
}
