package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// rotatedName is where the active file goes when rotated: audit.log whose
// first record is seq 1001 becomes audit.000000001001.log.
func rotatedName(path string, firstSeq uint64) string {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	return filepath.Join(dir, fmt.Sprintf("%s.%012d%s", stem, firstSeq, ext))
}

// rotatedGlob is a shell pattern for the active file and its rotated
// siblings, for messages to the operator.
func rotatedGlob(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "*" + ext
}

// rotatedFiles lists the rotated siblings of path, oldest first.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type rf struct {
		name string
		seq  uint64
	}
	var out []rf
	for _, e := range ents {
		n := e.Name()
		mid, ok := strings.CutPrefix(n, stem+".")
		if !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, ext); !ok || len(mid) < 12 {
			continue
		}
		seq, err := strconv.ParseUint(mid, 10, 64)
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		out = append(out, rf{filepath.Join(dir, n), seq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	names := make([]string, len(out))
	for i, r := range out {
		names[i] = r.name
	}
	return names, nil
}

// backLines yields the complete lines of r before end, last first. Returned
// slices stay valid: the buffer is only ever replaced, never overwritten.
type backLines struct {
	r        io.ReaderAt
	bufStart int64
	buf      []byte // r[bufStart:cur], ending with the newline of the next line to return
}

func newBackLines(r io.ReaderAt, end int64) *backLines {
	return &backLines{r: r, bufStart: end}
}

// prev returns the previous line (without newline) and its offset, or
// io.EOF at the start of the file.
func (b *backLines) prev() ([]byte, int64, error) {
	for {
		if len(b.buf) > 0 {
			if i := bytes.LastIndexByte(b.buf[:len(b.buf)-1], '\n'); i >= 0 {
				line := b.buf[i+1 : len(b.buf)-1]
				b.buf = b.buf[:i+1]
				return line, b.bufStart + int64(i) + 1, nil
			}
			if b.bufStart == 0 {
				line := b.buf[:len(b.buf)-1]
				b.buf = nil
				return line, 0, nil
			}
			if len(b.buf) > MaxRecordBytes+1 {
				return nil, 0, malformed("line before offset %d is longer than %d bytes", b.bufStart+int64(len(b.buf)), MaxRecordBytes)
			}
		} else if b.bufStart == 0 {
			return nil, 0, io.EOF
		}
		n := min(int64(64<<10), b.bufStart)
		chunk := make([]byte, n, n+int64(len(b.buf)))
		if _, err := b.r.ReadAt(chunk, b.bufStart-n); err != nil {
			return nil, 0, err
		}
		b.buf = append(chunk, b.buf...)
		b.bufStart -= n
	}
}

// lastNewline returns the offset just after the last '\n' of r (size
// bytes), 0 if there is none.
func lastNewline(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := r.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// chainTail is the state of a log file's end, found by reading backward to
// its last checkpoint and checking every record from there.
type chainTail struct {
	end             int64 // offset after the last complete record
	torn            []byte
	empty           bool // no complete record
	firstSeq        uint64
	firstTS         []byte
	head            [hashLen]byte
	seq             uint64
	sinceCheckpoint int
	checkpointTS    []byte // of the last checkpoint, nil if none in this file
	lastReason      string // checkpoint reason if the last record is one
	// hasCheckpoint: the file has a checkpoint, signed by a trusted key,
	// and every record after it was checked against it. Without one,
	// sinceCheckpoint counts every record of the file and firstPrev is the
	// first record's prev, which must link to the rotated file before.
	hasCheckpoint bool
	every         int // of the last checkpoint
	firstPrev     [hashLen]byte
}

// ErrCorrupt is returned by Open when the end of an existing log does not
// verify: it was modified while the gateway was down. Open refuses to
// extend (and sign) such a chain; run `meetguard audit verify`.
var ErrCorrupt = errors.New("audit: existing log does not verify")

// readChainTail checks the end of the log file at path: the records back
// to the last checkpoint, which must be signed by one of keys (a checkpoint
// by any other key is refused: it is how a re-rooted log looks).
func readChainTail(path string, keys map[string]ed25519.PublicKey) (chainTail, error) {
	var t chainTail
	f, err := os.Open(path)
	if err != nil {
		return t, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return t, err
	}
	if !st.Mode().IsRegular() {
		return t, fmt.Errorf("audit: %s is not a regular file", path)
	}
	t.end, err = lastNewline(f, st.Size())
	if err != nil {
		return t, err
	}
	if torn := st.Size() - t.end; torn > 0 {
		t.torn = make([]byte, torn)
		if _, err := f.ReadAt(t.torn, t.end); err != nil {
			return t, err
		}
	}
	if t.end == 0 {
		t.empty = true
		return t, nil
	}
	corrupt := func(off int64, format string, args ...any) error {
		return fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, path, off, fmt.Sprintf(format, args...))
	}
	type rec struct {
		h   header
		off int64
	}
	var recs []rec // last first
	bl := newBackLines(f, t.end)
	for {
		line, off, err := bl.prev()
		if err == io.EOF {
			break
		}
		if err != nil {
			return t, corrupt(off, "%v", err)
		}
		h, err := parseHeader(line)
		if err != nil {
			return t, corrupt(off, "%v", err)
		}
		recs = append(recs, rec{h, off})
		if h.isCheckpoint() {
			break
		}
	}
	var scratch []byte
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		var sum [hashLen]byte
		sum, scratch = hashOf(&r.h, scratch)
		if sum != r.h.hash {
			return t, corrupt(r.off, "record seq %d does not match its hash", r.h.seq)
		}
		if i < len(recs)-1 && (r.h.seq != t.seq+1 || r.h.prev != t.head) {
			return t, corrupt(r.off, "record seq %d does not follow seq %d", r.h.seq, t.seq)
		}
		if r.h.isCheckpoint() {
			cp, err := parseCheckpointMembers(r.h.hashed)
			if err != nil {
				return t, corrupt(r.off, "%v", err)
			}
			pub, ok := keys[cp.KeyID]
			if !ok {
				return t, corrupt(r.off, "checkpoint seq %d is signed by key %s, which is not a trusted key (the log was re-rooted, "+
					"or the audit key was changed without listing the old public key as trusted)", r.h.seq, cp.KeyID)
			}
			if !checkSignature(&r.h, pub) {
				return t, corrupt(r.off, "checkpoint seq %d: bad signature", r.h.seq)
			}
			t.hasCheckpoint, t.every = true, cp.Every
			t.sinceCheckpoint = 0
			t.checkpointTS = r.h.ts
			t.lastReason = cp.Reason
		} else {
			t.sinceCheckpoint++
			t.lastReason = ""
		}
		if i == len(recs)-1 {
			t.firstPrev = r.h.prev // the file's first record unless a checkpoint stopped the walk
		}
		t.seq, t.head = r.h.seq, r.h.hash
	}
	if t.hasCheckpoint && t.sinceCheckpoint > t.every {
		return t, corrupt(recs[0].off, "%d records after the last checkpoint, but the log writes one every %d: records were added", t.sinceCheckpoint, t.every)
	}
	// The first record names the file (rotation) and starts its age.
	first, err := readFirstLine(f)
	if err != nil {
		return t, corrupt(0, "%v", err)
	}
	fh, err := parseHeader(first)
	if err != nil {
		return t, corrupt(0, "%v", err)
	}
	t.firstSeq, t.firstTS = fh.seq, fh.ts
	return t, nil
}

// coverFromRotated checks that t, an active file without a checkpoint,
// continues the newest rotated file, whose last record (its rotation
// checkpoint, by a trusted key) then vouches for the chain t extends. A
// file that starts at seq 1 must start with the genesis checkpoint, so it
// cannot be covered this way.
func coverFromRotated(path string, t *chainTail, keys map[string]ed25519.PublicKey) error {
	if t.firstSeq == 1 {
		return fmt.Errorf("%w: %s: record seq 1 is not the genesis checkpoint and no checkpoint by a trusted key follows: "+
			"the log was not written by this gateway", ErrCorrupt, path)
	}
	rotated, err := rotatedFiles(path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(rotated) == 0 {
		return fmt.Errorf("%w: %s starts at seq %d, contains no checkpoint by a trusted key, and no rotated file precedes it: "+
			"nothing vouches for its %d records", ErrCorrupt, path, t.firstSeq, t.sinceCheckpoint)
	}
	last := rotated[len(rotated)-1]
	prev, err := readChainTail(last, keys)
	if err != nil {
		return err
	}
	switch {
	case len(prev.torn) > 0 || prev.empty || !prev.hasCheckpoint || prev.sinceCheckpoint > 0:
		return fmt.Errorf("%w: rotated file %s does not end with its rotation checkpoint", ErrCorrupt, last)
	case prev.seq+1 != t.firstSeq || prev.head != t.firstPrev:
		return fmt.Errorf("%w: %s (first seq %d) does not continue %s (last seq %d)", ErrCorrupt, path, t.firstSeq, last, prev.seq)
	case t.sinceCheckpoint > prev.every:
		return fmt.Errorf("%w: %s: %d records without a checkpoint, but the log writes one every %d: records were added",
			ErrCorrupt, path, t.sinceCheckpoint, prev.every)
	}
	t.checkpointTS = prev.checkpointTS
	return nil
}

func readFirstLine(r io.ReaderAt) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	var off int64
	for {
		chunk := make([]byte, 64<<10)
		n, err := r.ReadAt(chunk, off)
		if i := bytes.IndexByte(chunk[:n], '\n'); i >= 0 {
			return append(buf, chunk[:i]...), nil
		}
		buf = append(buf, chunk[:n]...)
		off += int64(n)
		if err != nil {
			return nil, err
		}
		if len(buf) > MaxRecordBytes {
			return nil, malformed("first line is longer than %d bytes", MaxRecordBytes)
		}
	}
}

func parseCheckpointMembers(hashed []byte) (checkpointMembers, error) {
	var cp checkpointMembers
	if err := jsonUnmarshalObject(hashed, &cp); err != nil {
		return cp, malformed("checkpoint members: %v", err)
	}
	if len(cp.KeyID) != 16 || cp.Every <= 0 || cp.Reason == "" {
		return cp, malformed("checkpoint needs key_id, every and reason")
	}
	return cp, nil
}

// tornDigest names discarded bytes in the audit.opened record.
func tornDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum)
}
