package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

// runWithStderrFile runs the CLI with stderr a regular file, as when it is
// redirected (2>file) or piped: not a terminal.
func runWithStderrFile(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	code := run(context.Background(), args, &out, f)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), string(b)
}

// TestProgress_OnlyOnATerminal: `audit verify` and `policy replay` print
// the same bytes as before the progress bar when stderr is a file (not a
// terminal), while on a terminal the bar is drawn on stderr and cleared,
// and stdout is unchanged.
func TestProgress_OnlyOnATerminal(t *testing.T) {
	// Enough records for the bar to move: verify reports every 4096.
	path := filepath.Join(t.TempDir(), "audit.log")
	key, err := audit.LoadOrCreateKey(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), audit.Options{Path: path, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		if err := l.Record(context.Background(), audit.EventRoomLock, zap.String("room", "standup"), zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	candidate := policyCmdCopy(t)
	data, err := os.ReadFile("../../policy/testdata/replay/candidate-data.json")
	if err != nil {
		t.Fatal(err)
	}
	policyCmdWrite(t, filepath.Join(candidate, "data.json"), string(data))
	replayLog := "../../policy/testdata/replay/audit.jsonl"

	for _, tc := range []struct {
		name, what string
		args       []string
		wantOut    string
	}{
		{"verify", "verifying", []string{"audit", "verify", "--sealed", "--key", path + ".pub", path}, "OK"},
		{"replay", "replaying", []string{"policy", "replay", "--audit", replayLog, "--candidate", candidate}, "2 people would be treated differently"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not a terminal: a buffer, and a file.
			code, out, errs := runCLI(tc.args...)
			fcode, fout, ferrs := runWithStderrFile(t, tc.args...)
			if code != fcode || out != fout || errs != ferrs || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("stderr a file: exit %d %q %q, stderr a buffer: exit %d %q %q", fcode, fout, ferrs, code, out, errs)
			}
			if strings.Contains(errs, "\r") || strings.Contains(errs, tc.what) {
				t.Fatalf("a bar on a stderr that is not a terminal: %q", errs)
			}
			// A terminal.
			isTerminal = func(io.Writer) bool { return true }
			defer func() { isTerminal = defaultIsTerminal }()
			tcode, tout, terrs := runCLI(tc.args...)
			if tcode != code || tout != out {
				t.Errorf("stdout differs on a terminal: exit %d %q", tcode, tout)
			}
			if !strings.Contains(terrs, tc.what) || !strings.HasSuffix(terrs, "\r") && !strings.Contains(terrs, errs) {
				t.Errorf("no bar on a terminal's stderr: %q", terrs)
			}
		})
	}
}
