package policy

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/policy/watch"
)

// ReloadEvent describes one reload attempt, accepted or refused.
type ReloadEvent struct {
	Time        time.Time     `json:"time"`
	Source      string        `json:"source"`
	Shadow      bool          `json:"shadow,omitempty"` // the shadow policy, not the live one
	Trigger     string        `json:"trigger"`          // "reload" (Reload, e.g. on SIGHUP) or "watch"
	OK          bool          `json:"ok"`
	Changed     bool          `json:"changed"`      // a new revision now serves
	OldRevision string        `json:"old_revision"` // serving before the attempt, and still serving if refused
	NewRevision string        `json:"new_revision,omitempty"`
	Error       string        `json:"error,omitempty"`
	Err         error         `json:"-"` // the *LoadError; errors.Is works on it
	Duration    time.Duration `json:"duration"`
}

// Reload reads the policy again and serves it if it passes every check the
// first load did, tests included. On failure the last good revision keeps
// serving and the error is returned, logged, reported to OnReload and shown
// in Status. The shadow policy, if any, is reloaded too; its failures are
// reported the same way but not returned.
func (e *Engine) Reload(ctx context.Context) error {
	return e.reload(ctx, "reload")
}

func (e *Engine) reload(ctx context.Context, trigger string) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	err := e.reloadOne(ctx, trigger, false)
	if e.opts.ShadowDir != "" {
		_ = e.reloadOne(ctx, trigger, true)
	}
	return err
}

func (e *Engine) reloadOne(ctx context.Context, trigger string, shadow bool) error {
	start := time.Now()
	target, dir, bundlePath, v := &e.live, e.opts.Dir, e.opts.Bundle, e.verify
	if shadow {
		target, dir, bundlePath, v = &e.shadow, e.opts.ShadowDir, "", nil
	}
	old := target.Load()
	ev := ReloadEvent{Time: start, Source: cmp.Or(bundlePath, dir), Shadow: shadow, Trigger: trigger}
	if old != nil {
		ev.OldRevision = old.hash
	}

	src, err := readSource(dir, bundlePath)
	if err == nil {
		ev.NewRevision = src.hash()
		if old == nil || ev.NewRevision != old.hash {
			var rev *revision
			if rev, err = e.buildRevision(ctx, src, v); err == nil {
				rev.trigger = trigger
				target.Store(rev)
				ev.Changed = true
			}
		}
	}
	ev.OK = err == nil
	ev.Err = err
	if err != nil {
		ev.Error = err.Error()
	}
	ev.Duration = time.Since(start)

	e.mu.Lock()
	if shadow {
		e.shadowErr = err
	} else {
		e.lastReload, e.lastErr = start, err
	}
	e.mu.Unlock()

	fields := []zap.Field{
		zap.String("source", ev.Source), zap.Bool("shadow", shadow), zap.String("trigger", trigger),
		zap.String("old_revision", ev.OldRevision), zap.String("new_revision", ev.NewRevision),
		zap.Duration("duration", ev.Duration),
	}
	switch {
	case err != nil:
		e.log.Error("policy.reload_rejected", append(fields, zap.Error(err))...)
	case ev.Changed:
		e.log.Info("policy.reloaded", fields...)
	default:
		e.log.Debug("policy.reload_unchanged", fields...)
	}
	if e.opts.OnReload != nil {
		e.opts.OnReload(ev)
	}
	return err
}

// Watch reloads when the policy directory (or bundle file, or shadow
// directory) changes, after Options.WatchDebounce of quiet so that a
// multi-file save reloads once. It returns nil when ctx is done, or an error
// if the watch cannot be set up. Editors that save by rename and Kubernetes
// ConfigMap volumes (which swap a symlink) are both seen.
func (e *Engine) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()

	var bundleFile string
	if e.opts.Bundle != "" {
		bundleFile = filepath.Clean(e.opts.Bundle)
		if err := w.Add(filepath.Dir(bundleFile)); err != nil {
			return err
		}
	} else if err := addTree(w, e.opts.Dir); err != nil {
		return err
	}
	if e.opts.ShadowDir != "" {
		if err := addTree(w, e.opts.ShadowDir); err != nil {
			return err
		}
	}

	watch.Debounce(ctx, w, watch.Options{
		Quiet: e.opts.WatchDebounce,
		Keep: func(ev fsnotify.Event) bool {
			if ev.Op == fsnotify.Chmod {
				return false
			}
			if bundleFile != "" && filepath.Clean(ev.Name) != bundleFile && !e.inShadowDir(ev.Name) {
				return false
			}
			if ev.Op.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(w, ev.Name)
				}
			}
			return true
		},
		OnError: func(err error) { e.log.Warn("policy.watch_error", zap.Error(err)) },
		// Errors are reported through the log, OnReload and Status.
		Fire: func() { _ = e.reload(ctx, "watch") },
	})
	return nil
}

func (e *Engine) inShadowDir(name string) bool {
	if e.opts.ShadowDir == "" {
		return false
	}
	rel, err := filepath.Rel(e.opts.ShadowDir, name)
	return err == nil && !strings.HasPrefix(rel, "..")
}

// addTree watches dir and its subdirectories (fsnotify is not recursive),
// except hidden ones, which the loader ignores too. A ConfigMap volume's
// update shows up in the top directory, where its ..data symlink is swapped.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		return w.Add(p)
	})
}
