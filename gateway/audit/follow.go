package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// FollowOptions configure Follow.
type FollowOptions struct {
	// Backlog is how many of the last matching records already in the
	// file to print first (like tail -n). Negative prints them all.
	Backlog int
	// Poll is how often to look for new records (default 200ms).
	Poll time.Duration
}

// Follow calls fn for the records appended to the log at path that pass f,
// until ctx ends (returning nil) or fn fails. It follows rotation: when the
// file is moved aside it finishes reading it and continues with the new one.
// A record still being written is read once its newline arrives.
func Follow(ctx context.Context, path string, f Filter, opts FollowOptions, fn func(*Entry) error) error {
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	fl := &follower{path: path, filter: f, fn: fn}
	if err := fl.open(); err != nil {
		return err
	}
	defer func() { fl.f.Close() }()
	// The backlog: everything up to the current end, keeping the last N.
	var backlog []*Entry
	if err := fl.drain(func(e *Entry) error {
		if opts.Backlog == 0 {
			return nil
		}
		backlog = append(backlog, e)
		if opts.Backlog > 0 && len(backlog) > opts.Backlog {
			backlog = backlog[1:]
		}
		return nil
	}); err != nil {
		return err
	}
	for _, e := range backlog {
		if err := fn(e); err != nil {
			return err
		}
	}
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := fl.drain(fn); err != nil {
			return err
		}
		rotated, err := fl.rotated()
		if err != nil || !rotated {
			continue
		}
		// Finish the old file (it ends with its rotation seal), then
		// start on the new one from its beginning.
		if err := fl.drain(fn); err != nil {
			return err
		}
		fl.f.Close()
		if err := fl.open(); err != nil {
			return err
		}
		if err := fl.drain(fn); err != nil {
			return err
		}
	}
}

type follower struct {
	path      string
	filter    Filter
	fn        func(*Entry) error
	f         *os.File
	r         *bufio.Reader
	partial   []byte
	off       int64 // bytes consumed from f
	lineStart int64 // offset of partial
	line      int
}

func (fl *follower) open() error {
	f, err := os.Open(fl.path)
	if err != nil {
		return err
	}
	fl.f, fl.r, fl.partial, fl.off, fl.lineStart, fl.line = f, bufio.NewReaderSize(f, 256<<10), nil, 0, 0, 0
	return nil
}

// drain reads complete lines up to the current end of the file.
func (fl *follower) drain(emit func(*Entry) error) error {
	if st, err := fl.f.Stat(); err == nil && st.Size() < fl.off {
		// The writer cut a torn tail on restart: reread from the start
		// of the line we were assembling.
		if _, err := fl.f.Seek(fl.lineStart, io.SeekStart); err != nil {
			return err
		}
		fl.r.Reset(fl.f)
		fl.off, fl.partial = fl.lineStart, nil
	}
	for {
		b, err := fl.r.ReadSlice('\n')
		fl.off += int64(len(b))
		if err == bufio.ErrBufferFull || err == io.EOF {
			fl.partial = append(fl.partial, b...)
			if err == io.EOF {
				return nil
			}
			if len(fl.partial) > MaxRecordBytes+1 {
				return malformed("%s: line at offset %d longer than %d bytes", fl.path, fl.lineStart, MaxRecordBytes)
			}
			continue
		}
		if err != nil {
			return err
		}
		line := append(fl.partial, b[:len(b)-1]...)
		fl.partial = nil
		fl.lineStart = fl.off
		fl.line++
		e, perr := ParseEntry(bytes.Clone(line))
		if perr != nil {
			continue // not a record; verify reports it
		}
		e.File, e.Line = fl.path, fl.line
		if fl.filter.Match(e) {
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

// rotated reports whether path now names another file than the one open.
func (fl *follower) rotated() (bool, error) {
	cur, err := fl.f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // between rename and create
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(cur, now), nil
}
