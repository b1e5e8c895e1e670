package audit

import (
	"context"
	"fmt"
	"os"
	"slices"
)

// LastDecisions calls fn with the records of the n newest admission
// decisions (rate-limit trips are not decisions), oldest first, as stored:
// their file, line and raw line. maxBytes bounds what is read in total;
// past it LastDecisions stops with an error. It returns how many it
// handed fn. raw is valid only during fn. The security console's what-if replays them under a
// candidate policy.
func (x *DecisionIndex) LastDecisions(ctx context.Context, n int, maxBytes int64, fn func(file string, line int, raw []byte) error) (int, error) {
	type at struct {
		line   int32
		length int32
		offset int64
		name   string
	}
	x.mu.RLock()
	limited := x.str.ids[OutcomeRateLimited]
	var picked []at
	for i := len(x.rows) - 1; i >= 0 && len(picked) < n; i-- {
		r := &x.rows[i]
		if limited != 0 && r.outcome == limited {
			continue
		}
		picked = append(picked, at{line: r.Line, offset: r.offset, length: r.length, name: x.files[r.file].name})
	}
	x.mu.RUnlock()

	open := map[string]*os.File{}
	defer func() {
		for _, f := range open {
			_ = f.Close()
		}
	}()
	var total int64
	buf := make([]byte, 0, 4096)
	for i := len(picked) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return len(picked) - 1 - i, err
		}
		p := picked[i]
		if total += int64(p.length); total > maxBytes {
			return len(picked) - 1 - i, fmt.Errorf("audit index: the last %d decisions are more than %d bytes", len(picked), maxBytes)
		}
		f := open[p.name]
		if f == nil {
			var err error
			if f, err = os.Open(p.name); err != nil {
				return len(picked) - 1 - i, err
			}
			open[p.name] = f
		}
		buf = slices.Grow(buf[:0], int(p.length))[:p.length]
		if _, err := f.ReadAt(buf, p.offset); err != nil {
			return len(picked) - 1 - i, fmt.Errorf("audit index: %s:%d: %w", p.name, p.line, err)
		}
		if err := fn(p.name, int(p.line), buf); err != nil {
			return len(picked) - i, err
		}
	}
	return len(picked), nil
}
