package main

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/syncbuf"
)

// TestLogger_AccessLinesBatchedOthersAtOnce: access lines may wait in the
// buffer, but any other line (an error above all) is written at once and
// carries every access line before it, in order; the shutdown flush writes
// the rest. Losing a batch of access lines must never hide an error.
func TestLogger_AccessLinesBatchedOthersAtOnce(t *testing.T) {
	var out syncbuf.Buffer
	logger, flush, err := newLogger(config.Log{Level: "info"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	access := logger.Named("access")
	access.Info("request", zap.String("path", "/a"))
	access.Info("request", zap.String("path", "/b"))
	logger.Error("upstream failed")
	got := out.Lines()
	if len(got) != 3 || !strings.Contains(got[0], `"/a"`) || !strings.Contains(got[1], `"/b"`) || !strings.Contains(got[2], "upstream failed") {
		t.Fatalf("after an error line, want both access lines then the error, got:\n%s", strings.Join(got, "\n"))
	}
	access.Warn("request", zap.String("path", "/c"))
	if got := out.Lines(); len(got) != 4 {
		t.Fatalf("an access line at warn must be written at once, got:\n%s", strings.Join(got, "\n"))
	}
	access.Info("request", zap.String("path", "/d"))
	flush()
	if got := out.Lines(); len(got) != 5 || !strings.Contains(got[4], `"/d"`) {
		t.Fatalf("after the shutdown flush, want 5 lines, got:\n%s", strings.Join(got, "\n"))
	}
}

func TestLogger_BadLevel(t *testing.T) {
	if _, _, err := newLogger(config.Log{Level: "loud"}, &syncbuf.Buffer{}); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("err = %v, want one naming log.level", err)
	}
}
