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
		// move on to the live one.
		if err := fl.drain(fn); err != nil {
			return err
		}
		if err := fl.catchUp(fn); err != nil {
			return err
		}
	}
}

// catchUp moves from the finished file open to the live log, reading every
// file rotated in between first: a busy log can rotate several times
// between two polls, and again while this runs. The live file is opened
// before the rotated ones are listed, so every file rotated before it is
// in the list; if it was itself rotated meanwhile, it is read through its
// open descriptor and the next poll moves on from it.
func (fl *follower) catchUp(emit func(*Entry) error) error {
	live, err := os.Open(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // between rename and create: the next poll retries
	}
	if err != nil {
		return err
	}
	liveSt, err := live.Stat()
	if err != nil {
		live.Close()
		return err
	}
	missed, err := fl.rotatedSince()
	if err != nil {
		live.Close()
		return err
	}
	for _, name := range missed {
		if st, err := os.Stat(name); err == nil && os.SameFile(st, liveSt) {
			break
		}
		f, err := os.Open(name)
		if err != nil {
			live.Close()
			return err
		}
		fl.use(name, f)
		if err := fl.drain(emit); err != nil {
			live.Close()
			return err
		}
	}
	fl.use(fl.path, live)
	return fl.drain(emit)
}

// rotatedSince lists, oldest first, the rotated files written after the
// one open. If the open file is no longer among them (removed by
// retention), it cannot tell which came after and lists none.
func (fl *follower) rotatedSince() ([]string, error) {
	cur, err := fl.f.Stat()
	if err != nil {
		return nil, err
	}
	files, err := rotatedFiles(fl.path)
	if err != nil {
		return nil, err
	}
	for i, name := range files {
		if st, err := os.Stat(name); err == nil && os.SameFile(cur, st) {
			return files[i+1:], nil
		}
	}
	return nil, nil
}

type follower struct {
	path      string // the live log
	name      string // the file open: path, or a rotated file caught up on
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
	fl.use(fl.path, f)
	return nil
}

// use makes f, named name, the file read from its start, closing the one
// read before.
func (fl *follower) use(name string, f *os.File) {
	if fl.f != nil {
		fl.f.Close()
	}
	fl.name = name
	fl.f, fl.r, fl.partial, fl.off, fl.lineStart, fl.line = f, bufio.NewReaderSize(f, 256<<10), nil, 0, 0, 0
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
				return malformed("%s: line at offset %d longer than %d bytes", fl.name, fl.lineStart, MaxRecordBytes)
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
		e.File, e.Line = fl.name, fl.line
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
