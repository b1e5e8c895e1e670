package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// RecentOptions bound a ReadRecent.
type RecentOptions struct {
	// Limit is the most records returned. Default 50.
	Limit int
	// MaxBytes is the most log bytes read, newest first, before giving up
	// on finding Limit matches: a busy log's far past is not worth a
	// page load. Default 16 MiB.
	MaxBytes int64
}

// ReadRecent returns the newest records of files that match f, newest
// first. files are in chain order (oldest first, as ReadEntries takes
// them); each is read backwards from its last complete record, so the cost
// is what is read, not the log's size. It does not verify the chain: it
// is for showing people what happened lately (the host console), not for
// proving it. Lines that are not records are skipped.
func ReadRecent(ctx context.Context, files []string, f Filter, o RecentOptions) ([]*Entry, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	var out []*Entry
	budget := o.MaxBytes
	for _, name := range slices.Backward(files) {
		done, err := readFileBackward(ctx, name, f, o.Limit, &budget, &out)
		if err != nil {
			return out, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// readFileBackward appends name's matching records to out, newest first,
// until out holds limit records or budget bytes were read (done).
func readFileBackward(ctx context.Context, name string, f Filter, limit int, budget *int64, out *[]*Entry) (bool, error) {
	fh, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		// Rotated away between listing and opening.
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return false, err
	}
	// A record being written is not a record yet.
	end, err := lastNewline(fh, st.Size())
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	bl := newBackLines(fh, end)
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return true, err
			}
		}
		line, _, err := bl.prev()
		if err == io.EOF {
			return false, nil
		}
		if errors.Is(err, errMalformed) {
			// An overlong line: nothing before it can be found cheaply.
			return false, nil
		}
		if err != nil {
			return true, fmt.Errorf("%s: %w", name, err)
		}
		*budget -= int64(len(line)) + 1
		if len(bytes.TrimSpace(line)) > 0 {
			if e, err := ParseEntry(bytes.Clone(line)); err == nil && f.Match(e) {
				e.File = name
				*out = append(*out, e)
				if len(*out) >= limit {
					return true, nil
				}
			}
		}
		if *budget <= 0 {
			return true, nil
		}
	}
}

// Recent is ReadRecent over this log's files: the active one and the
// rotated ones beside it.
func (l *Log) Recent(ctx context.Context, f Filter, o RecentOptions) ([]*Entry, error) {
	files, err := rotatedFiles(l.opts.Path)
	if err != nil {
		return nil, fmt.Errorf("audit: list log files: %w", err)
	}
	return ReadRecent(ctx, append(files, l.opts.Path), f, o)
}
