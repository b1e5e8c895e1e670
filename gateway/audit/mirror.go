package audit

import (
	"bytes"
	"io"
	"sync"

	"go.uber.org/zap"
)

// mirror copies durable records to a second writer (a SIEM pipeline on
// stdout) from its own goroutine, so that a stalled reader never stalls
// admissions. The file stays the record of truth: copies are dropped, and
// counted, when the mirror falls behind.
type mirror struct {
	w      io.Writer
	ch     chan []byte
	logger *zap.Logger
	wg     sync.WaitGroup
}

const mirrorQueue = 1024

func newMirror(w io.Writer, logger *zap.Logger) *mirror {
	m := &mirror{w: w, ch: make(chan []byte, mirrorQueue), logger: logger}
	m.wg.Add(1)
	go m.run()
	return m
}

func (m *mirror) send(buf []byte) {
	select {
	case m.ch <- bytes.Clone(buf):
	default:
		m.logger.Warn("audit mirror is behind; dropped a batch of records",
			zap.Int("records", bytes.Count(buf, []byte{'\n'})))
	}
}

func (m *mirror) run() {
	defer m.wg.Done()
	for b := range m.ch {
		if _, err := m.w.Write(b); err != nil {
			m.logger.Warn("audit mirror write failed", zap.Error(err))
		}
	}
}

func (m *mirror) close() {
	close(m.ch)
	m.wg.Wait()
}
