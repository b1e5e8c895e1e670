// Package watch folds bursts of file-system events into one call: the debounced fsnotify loop that the policy
// engine's hot reload and the gateway's TLS certificate reload share. It is a leaf: it imports nothing of
// meetguard, so policy/ and gateway/ may both use it.
package watch

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options says what Debounce does with w's events.
type Options struct {
	// Quiet is how long no kept event must arrive before Fire is called.
	Quiet time.Duration
	// Keep, when set, returns false for an event that must not schedule a call (for example a chmod, or a
	// file beside the one watched). It may also add watches, as for a new subdirectory.
	Keep func(fsnotify.Event) bool
	// OnError sees the watcher's errors; the loop carries on.
	OnError func(error)
	// Fire is called once after each burst of kept events.
	Fire func()
}

// Debounce runs until ctx ends or w is closed, calling o.Fire once after every burst of kept events.
func Debounce(ctx context.Context, w *fsnotify.Watcher, o Options) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if o.Keep != nil && !o.Keep(ev) {
				continue
			}
			timer.Reset(o.Quiet)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if o.OnError != nil {
				o.OnError(err)
			}
		case <-timer.C:
			o.Fire()
		}
	}
}
