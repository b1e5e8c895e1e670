package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestBuffer_ConcurrentWritersAndReaders: run with -race, writers and readers sharing a Buffer are no data
// race, and every write arrives whole.
func TestBuffer_ConcurrentWritersAndReaders(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("line of text\n"))
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				_ = b.Bytes()
				_ = b.Lines()
			}
		}()
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if l != "line of text" {
			t.Fatalf("torn write: %q", l)
		}
	}
	if got := b.Bytes(); len(got) > 0 {
		got[0] = 'X' // a copy: the buffer keeps its own bytes
		if strings.HasPrefix(b.String(), "X") {
			t.Fatal("Bytes returned the buffer's own memory")
		}
	}
	var empty Buffer
	if empty.Lines() != nil || empty.Sync() != nil {
		t.Fatal("empty buffer has lines or fails Sync")
	}
}
