// Package syncbuf provides Buffer, an in-memory writer that concurrent writers (a logger's goroutines, a
// child process's output copiers) and a test reading it may share. zaptest's Buffer is not safe for that: it
// is a bytes.Buffer without a lock.
//
// It is a leaf: it imports nothing of meetguard, so cmd/ tests use it too. crypto/ and policy/ may not import
// gateway/ (the layout's import rules); their tests log to a temporary file instead.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer behind a mutex. Its zero value is empty and ready; it implements io.Writer and
// zapcore.WriteSyncer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Sync does nothing: everything written is already readable.
func (s *Buffer) Sync() error { return nil }

// Bytes returns a copy of what was written so far.
func (s *Buffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns what was written so far split into lines, without the final newline (none when nothing was
// written).
func (s *Buffer) Lines() []string {
	t := strings.TrimSpace(s.String())
	if t == "" {
		return nil
	}
	return strings.Split(t, "\n")
}
