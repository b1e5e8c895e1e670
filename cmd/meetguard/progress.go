package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on stderr for a long operation (verify, or
// replay of a big log), shown only when stderr is a terminal: piped or
// redirected output stays byte for byte what it was without one.
type progress struct {
	bar *progressbar.ProgressBar
}

// isTerminal reports whether w is a terminal; a variable so that a test can
// stand in a terminal without a pseudo-terminal.
var isTerminal = defaultIsTerminal

func defaultIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar over total bytes of files, or a progress that
// does nothing when stderr is not a terminal.
func newProgress(stderr io.Writer, what string, files []string) *progress {
	if !isTerminal(stderr) {
		return &progress{}
	}
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

// add is the feed for audit.VerifyOptions.Progress and
// policy.ReplayFilesProgress; nil without a bar.
func (p *progress) add() func(n int64) {
	if p.bar == nil {
		return nil
	}
	return func(n int64) { _ = p.bar.Add64(n) }
}

// done clears the bar before the result is printed.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
