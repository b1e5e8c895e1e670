package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// ProblemKind says what is wrong with the first bad record.
type ProblemKind string

// Problem kinds reported by Verify.
const (
	ProblemModified     ProblemKind = "modified"      // content does not match its hash, or is not a record
	ProblemDeleted      ProblemKind = "deleted"       // records (or a checkpoint) missing from the chain
	ProblemInserted     ProblemKind = "inserted"      // a record that is not part of the chain
	ProblemReordered    ProblemKind = "reordered"     // records out of order
	ProblemTruncated    ProblemKind = "truncated"     // records cut from the end of a file or of the log
	ProblemBadSignature ProblemKind = "bad signature" // a checkpoint whose signature does not verify
	// ProblemUnsigned: records no checkpoint by a trusted key vouches for
	// where the writer always writes one: a log whose seq 1 is not the
	// signed genesis checkpoint, or a chain with no trusted checkpoint at
	// all. What a forger who holds no key produces.
	ProblemUnsigned ProblemKind = "unsigned"
)

// Problem names the first record that does not verify.
type Problem struct {
	Kind   ProblemKind
	File   string
	Line   int    // 1-based line in File
	Seq    uint64 // the record's seq as written, 0 if unreadable
	Detail string
}

func (p *Problem) Error() string {
	seq := ""
	if p.Seq > 0 {
		seq = fmt.Sprintf(" (seq %d)", p.Seq)
	}
	return fmt.Sprintf("%s: %s line %d%s: %s", p.Kind, p.File, p.Line, seq, p.Detail)
}

// TornTail is an incomplete last record, as a crash during a write leaves
// it: not evidence of tampering. Everything before it verifies.
type TornTail struct {
	File     string
	Offset   int64
	Bytes    int
	AfterSeq uint64
}

// Checkpoint describes a verified checkpoint.
type Checkpoint struct {
	Seq    uint64
	Time   time.Time
	Reason string
	KeyID  string
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Keys verify checkpoint signatures (LoadPublicKeys). Required: a log
	// whose signatures are not checked proves nothing against someone who
	// can rewrite the file.
	Keys []ed25519.PublicKey
	// RequireSealed makes a log that does not end with the checkpoint
	// written by Close a "truncated" problem. Use it for archived logs; a
	// running gateway's log is not sealed yet.
	RequireSealed bool
	// Progress, when set, is told how many more bytes were read, every
	// few thousand records (a progress bar's feed).
	Progress func(n int64)
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Files          []string // in chain order
	Records        int      // records that verified, checkpoints included
	FirstSeq       uint64
	LastSeq        uint64 // last record that verified
	StartsMidChain bool   // the first file does not start at seq 1 (older files not given)
	Checkpoints    int
	LastCheckpoint *Checkpoint
	Unsigned       int  // records after the last checkpoint
	Sealed         bool // ends with the checkpoint written by Close
	KeyIDs         []string
	Torn           *TornTail
	Problem        *Problem
}

// Intact reports whether every record verified and nothing is torn.
func (r *VerifyResult) Intact() bool { return r.Problem == nil && r.Torn == nil }

// ErrNoKey is returned by Verify without VerifyOptions.Keys.
var ErrNoKey = errors.New("audit verify: no public key")

// lookahead bounds how far Verify reads past a sequence anomaly to tell
// reordered records from deleted ones.
const lookahead = 4096

// Verify checks the chain and the checkpoint signatures across files (in
// any order: they are ordered by their first record). It returns an error
// only when it cannot read; a log that does not verify is described by
// VerifyResult.Problem.
func Verify(ctx context.Context, files []string, opts VerifyOptions) (*VerifyResult, error) {
	if len(opts.Keys) == 0 {
		return nil, ErrNoKey
	}
	v := &verifier{ctx: ctx, keys: map[string]ed25519.PublicKey{}, res: &VerifyResult{}}
	for _, k := range opts.Keys {
		id := KeyID(k)
		v.keys[id] = k
		v.res.KeyIDs = append(v.res.KeyIDs, id)
	}
	ordered, err := orderFiles(files)
	if err != nil {
		return nil, err
	}
	for _, of := range ordered {
		v.res.Files = append(v.res.Files, of.name)
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i].firstSeq == ordered[i-1].firstSeq && ordered[i].firstSeq != noRecord {
			v.res.Problem = &Problem{Kind: ProblemInserted, File: ordered[i].name, Line: 1, Seq: ordered[i].firstSeq,
				Detail: fmt.Sprintf("starts at the same seq as %s", ordered[i-1].name)}
			return v.res, nil
		}
	}
	for i, of := range ordered {
		var read int64
		if opts.Progress != nil {
			v.progress = func(off int64) {
				opts.Progress(off - read)
				read = off
			}
		}
		_, err := v.fileFrom(of.name, i == len(ordered)-1, filePos{})
		if err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			if fi, err := os.Stat(of.name); err == nil && fi.Size() > read {
				opts.Progress(fi.Size() - read) // the rest of the file, read or not
			}
		}
		if v.res.Problem != nil {
			return v.res, nil
		}
	}
	if v.started && v.res.Checkpoints == 0 {
		// Mid-chain start (seq 1 is checked on its own): the records
		// link, but nothing signed by a trusted key says they were ever
		// written by the gateway.
		v.res.Problem = &Problem{Kind: ProblemUnsigned, File: v.lastFile, Line: v.lastLine, Seq: v.seq,
			Detail: fmt.Sprintf("records seq %d–%d contain no checkpoint signed by a trusted key: nothing vouches for them "+
				"(give the previous rotated file too if this one was just started)", v.res.FirstSeq, v.seq)}
		return v.res, nil
	}
	if v.res.Torn == nil && !v.res.Sealed && opts.RequireSealed && v.started {
		v.res.Problem = &Problem{Kind: ProblemTruncated, File: v.lastFile, Line: v.lastLine, Seq: v.seq,
			Detail: fmt.Sprintf("log ends at seq %d without the checkpoint written on close; records after it may have been cut", v.seq)}
	}
	return v.res, nil
}

const noRecord = ^uint64(0)

type orderedFile struct {
	name     string
	firstSeq uint64 // noRecord for a file without a complete record
}

// orderFiles sorts files by the seq of their first record.
func orderFiles(files []string) ([]orderedFile, error) {
	seen := map[string]bool{}
	var out []orderedFile
	for _, name := range files {
		if seen[name] {
			continue
		}
		seen[name] = true
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		first, err := readFirstLine(f)
		f.Close()
		of := orderedFile{name: name, firstSeq: noRecord}
		if err == nil {
			if h, perr := parseHeader(first); perr == nil {
				of.firstSeq = h.seq
			} else {
				of.firstSeq = 0 // unreadable first record: verify it first, where it is reported
			}
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, errMalformed) {
			return nil, err
		}
		out = append(out, of)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].firstSeq < out[j].firstSeq })
	return out, nil
}

type verifier struct {
	ctx  context.Context
	keys map[string]ed25519.PublicKey
	res  *VerifyResult

	started         bool
	seq             uint64
	hash            [hashLen]byte
	every           int // from the last checkpoint, 0 before the first
	sinceCheckpoint int
	lastReason      string
	lastFile        string
	lastLine        int
	scratch         []byte
	// progress, when set, is told the offset reached in the current file
	// every few thousand lines.
	progress func(off int64)
}

// lineReader reads lines with their numbers and offsets.
type lineReader struct {
	r    *bufio.Reader
	line int
	off  int64
	// set for the last bytes of a file that do not end in a newline
	torn bool
}

func (lr *lineReader) next() ([]byte, error) {
	lr.torn = false
	b, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		full := bytes.Clone(b)
		for err == bufio.ErrBufferFull && len(full) <= MaxRecordBytes+1 {
			b, err = lr.r.ReadSlice('\n')
			full = append(full, b...)
		}
		b = full
		if err == bufio.ErrBufferFull {
			return nil, malformed("line longer than %d bytes", MaxRecordBytes)
		}
	}
	if err == io.EOF {
		if len(b) == 0 {
			return nil, io.EOF
		}
		lr.torn = true
	} else if err != nil {
		return nil, err
	}
	lr.line++
	lr.off += int64(len(b))
	if !lr.torn {
		b = b[:len(b)-1]
	}
	return b, nil
}

// filePos is a place in a file between two records: the byte offset and
// the number of lines before it.
type filePos struct {
	off  int64
	line int
}

// fileFrom verifies name from pos on, the verifier's chain state being
// that of the record just before pos (ChainMonitor resumes where its last
// pass stopped). It returns the position after the last record that
// verified.
func (v *verifier) fileFrom(name string, last bool, pos filePos) (filePos, error) {
	end := pos
	f, err := os.Open(name)
	if err != nil {
		return end, err
	}
	defer f.Close()
	if pos.off > 0 {
		if _, err := f.Seek(pos.off, io.SeekStart); err != nil {
			return end, err
		}
	}
	lr := &lineReader{r: bufio.NewReaderSize(f, 1<<20), off: pos.off, line: pos.line}
	// at is the line of the record being checked: telling an insertion
	// from a rewrite reads lines ahead, which must not move the report.
	at := lr.line
	problem := func(kind ProblemKind, seq uint64, format string, args ...any) {
		v.res.Problem = &Problem{Kind: kind, File: name, Line: at, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	fileRecords := 0
	for {
		if lr.line%4096 == 0 {
			if err := v.ctx.Err(); err != nil {
				return end, err
			}
			if v.progress != nil {
				v.progress(lr.off)
			}
		}
		start := lr.off
		line, err := lr.next()
		at = lr.line
		if err == io.EOF {
			break
		}
		if errors.Is(err, errMalformed) {
			problem(ProblemModified, 0, "%v", err)
			return end, nil
		}
		if err != nil {
			return end, err
		}
		if lr.torn {
			if last {
				v.res.Torn = &TornTail{File: name, Offset: start, Bytes: len(line), AfterSeq: v.seq}
				return end, nil
			}
			problem(ProblemTruncated, 0, "file ends in an incomplete record, but later files follow")
			return end, nil
		}
		h, perr := parseHeader(line)
		if perr == nil && h.isCheckpoint() {
			if msg := v.checkSignature(&h); msg != "" {
				problem(ProblemBadSignature, h.seq, "%s", msg)
				return end, nil
			}
		}
		if perr == nil {
			var sum [hashLen]byte
			sum, v.scratch = hashOf(&h, v.scratch)
			if sum != h.hash {
				perr = errors.New("content does not match its hash")
			}
		}
		if perr != nil {
			// A line that is not part of the chain but whose successor
			// links to the last good record was inserted.
			if v.started && v.nextLinks(lr) {
				problem(ProblemInserted, h.seq, "not part of the chain (%v); the next record follows seq %d", perr, v.seq)
			} else {
				problem(ProblemModified, h.seq, "%v", perr)
			}
			return end, nil
		}
		switch {
		case !v.started:
			if h.seq == 1 && h.prev != zeroHash {
				problem(ProblemModified, h.seq, "first record of the log must have an all-zero prev")
				return end, nil
			}
			if h.seq == 1 && !isGenesis(&h) {
				// The writer's first record is always the genesis
				// checkpoint; without it anyone can start a chain.
				problem(ProblemUnsigned, h.seq, "record seq 1 is not the genesis checkpoint signed by a trusted key: the log was forged or re-rooted")
				return end, nil
			}
			v.res.FirstSeq = h.seq
			v.res.StartsMidChain = h.seq != 1
		case h.seq > v.seq+1:
			if at := v.findAhead(lr, v.seq+1); at > 0 {
				problem(ProblemReordered, h.seq, "seq %d comes before seq %d (found %d lines later)", h.seq, v.seq+1, at)
			} else if h.prev == v.hash {
				problem(ProblemDeleted, h.seq, "records seq %d–%d are missing and the chain was re-linked over them", v.seq+1, h.seq-1)
			} else {
				problem(ProblemDeleted, h.seq, "records seq %d–%d are missing (seq jumps from %d to %d)", v.seq+1, h.seq-1, v.seq, h.seq)
			}
			return end, nil
		case h.seq <= v.seq:
			problem(ProblemInserted, h.seq, "seq %d appears again after seq %d: a record was inserted at or before this line", h.seq, v.seq)
			return end, nil
		case h.prev != v.hash:
			if v.nextLinks(lr) {
				problem(ProblemInserted, h.seq, "does not link to seq %d, but the next record does", v.seq)
			} else {
				problem(ProblemModified, h.seq, "prev does not match the hash of seq %d: one of the two records was rewritten", v.seq)
			}
			return end, nil
		}
		if h.isCheckpoint() {
			cp, _ := parseCheckpointMembers(h.hashed) // checked by checkSignature
			if v.every == 0 && v.sinceCheckpoint > cp.Every {
				// A mid-chain start: the records before the first
				// checkpoint are covered by its signature, but the
				// writer never lets more than every of them pass.
				problem(ProblemInserted, h.seq, "%d records before the first checkpoint (seq %d), but the log writes one every %d",
					v.sinceCheckpoint, h.seq, cp.Every)
				return end, nil
			}
			v.every, v.sinceCheckpoint, v.lastReason = cp.Every, 0, cp.Reason
			v.res.Checkpoints++
			v.res.LastCheckpoint = &Checkpoint{Seq: h.seq, Time: parseTS(h.ts), Reason: cp.Reason, KeyID: cp.KeyID}
		} else {
			v.sinceCheckpoint++
			v.lastReason = ""
			if v.every > 0 && v.sinceCheckpoint > v.every {
				// The writer never lets more than every records pass
				// without a checkpoint. If one still follows, records
				// were added before it; if none does, it was removed.
				if v.checkpointAhead(lr) {
					problem(ProblemInserted, h.seq, "%d records since the checkpoint at seq %d, but the log writes one every %d: records were inserted",
						v.sinceCheckpoint, v.res.LastCheckpoint.Seq, v.every)
				} else {
					problem(ProblemDeleted, h.seq, "%d records since the checkpoint at seq %d, but the log writes one every %d: a checkpoint was removed",
						v.sinceCheckpoint, v.res.LastCheckpoint.Seq, v.every)
				}
				return end, nil
			}
		}
		v.started = true
		v.seq, v.hash = h.seq, h.hash
		v.res.Records++
		v.res.LastSeq = h.seq
		v.res.Unsigned = v.sinceCheckpoint
		v.res.Sealed = v.lastReason == reasonClose
		v.lastFile, v.lastLine = name, lr.line
		fileRecords++
		end = filePos{off: lr.off, line: lr.line}
	}
	if !last && (fileRecords > 0 || pos.off > 0) && v.lastReason != reasonRotate {
		problem(ProblemTruncated, v.seq, "rotated file ends at seq %d without its rotation checkpoint: records were cut from its end", v.seq)
	}
	return end, nil
}

// isGenesis reports whether h is a checkpoint written as the first record
// of a log. Its signature is checked separately.
func isGenesis(h *header) bool {
	if !h.isCheckpoint() {
		return false
	}
	cp, err := parseCheckpointMembers(h.hashed)
	return err == nil && cp.Reason == reasonGenesis
}

// checkSignature returns what is wrong with a checkpoint's signature, or "".
func (v *verifier) checkSignature(h *header) string {
	cp, err := parseCheckpointMembers(h.hashed)
	if err != nil {
		return err.Error()
	}
	pub, ok := v.keys[cp.KeyID]
	if !ok {
		return fmt.Sprintf("checkpoint signed by key %s, which is not among the trusted keys", cp.KeyID)
	}
	if !checkSignature(h, pub) {
		return fmt.Sprintf("checkpoint signature does not verify with key %s: the records it covers or the checkpoint itself were rewritten", cp.KeyID)
	}
	return ""
}

// nextLinks reports whether the next line is a good record that follows
// the last verified one. It consumes the reader: call it only once a
// problem is certain.
func (v *verifier) nextLinks(lr *lineReader) bool {
	line, err := lr.next()
	if err != nil || lr.torn {
		return false
	}
	h, err := parseHeader(line)
	if err != nil {
		return false
	}
	sum, _ := hashOf(&h, nil)
	return sum == h.hash && h.seq == v.seq+1 && h.prev == v.hash
}

// findAhead looks for seq in the next lines and returns how many lines
// ahead it is, 0 if not found. It consumes the reader.
func (v *verifier) findAhead(lr *lineReader, seq uint64) int {
	for i := 1; i <= lookahead; i++ {
		line, err := lr.next()
		if err != nil || lr.torn {
			return 0
		}
		if h, err := parseHeader(line); err == nil && h.seq == seq {
			return i
		}
	}
	return 0
}

// checkpointAhead reports whether a checkpoint follows within lookahead
// lines. It consumes the reader.
func (v *verifier) checkpointAhead(lr *lineReader) bool {
	for range lookahead {
		line, err := lr.next()
		if err != nil || lr.torn {
			return false
		}
		if h, err := parseHeader(line); err == nil && h.isCheckpoint() {
			return true
		}
	}
	return false
}
