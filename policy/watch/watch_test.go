package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestDebounce_FiresAfterKeptEventsAndStopsWithCtx: a burst of writes to a watched directory fires; events Keep
// refuses do not count; the loop ends when ctx does.
func TestDebounce_FiresAfterKeptEventsAndStopsWithCtx(t *testing.T) {
	dir := t.TempDir()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fired := make(chan struct{}, 16)
	ignored := filepath.Join(dir, "ignored")
	done := make(chan struct{})
	go func() {
		defer close(done)
		Debounce(ctx, w, Options{
			Quiet: 20 * time.Millisecond,
			Keep:  func(ev fsnotify.Event) bool { return filepath.Clean(ev.Name) != ignored },
			Fire:  func() { fired <- struct{}{} },
		})
	}()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte{byte(i)}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-fired:
	case <-time.After(30 * time.Second):
		t.Fatal("a burst of writes never fired")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Debounce did not return when ctx ended")
	}
}
