package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ChainMonitor keeps the hash chains of a set of audit log files (every
// node's) verified as they grow, for the security console's integrity
// page. It verifies each byte once: it remembers, per file, how far the
// chain verified and the chain's state there, and an Update verifies only
// what was appended since, so a view of a log of ten million records costs
// what was written since the last view.
//
// Bytes already verified could be rewritten in place afterwards. Each
// Update therefore also re-reads part of what it verified before and
// compares it with SHA-256 digests it took of every RecheckChunk bytes
// when it first verified them: the last chunk of every file each time, and
// RecheckBudget bytes more in turn, so that the whole verified log is
// re-read once every size/RecheckBudget updates. A rewrite is found on the
// update whose turn reaches it; then the chain is verified again from the
// start (Verify) to say which record changed. A file shorter than what was
// verified, or a changed first record, is found on the next update.
type ChainMonitor struct {
	keys   []ed25519.PublicKey
	chunk  int64
	budget int64

	mu     sync.Mutex // one Update at a time
	chains map[string]*monitoredChain

	running     atomic.Bool
	done, total atomic.Int64
	last        atomic.Pointer[IntegrityReport]
}

// ChainMonitorOptions configure a ChainMonitor.
type ChainMonitorOptions struct {
	// Keys verify checkpoint signatures (every node's). Required.
	Keys []ed25519.PublicKey
	// RecheckChunk is the size of the blocks whose digests are kept;
	// default 1 MiB.
	RecheckChunk int64
	// RecheckBudget is how many already-verified bytes each Update re-reads
	// besides every file's last chunk; default 32 MiB.
	RecheckBudget int64
}

// IntegrityReport is the state of every chain after an Update.
type IntegrityReport struct {
	Time   time.Time
	Chains []ChainStatus
}

// Chain states.
const (
	ChainVerified = "verified" // every complete record verifies
	ChainTorn     = "torn"     // everything verifies but the last record is incomplete (a crash)
	ChainTampered = "tampered" // Problem says what and where
	ChainEmpty    = "empty"    // no complete record yet
)

// ChainStatus is one node's chain.
type ChainStatus struct {
	Node           string
	State          string
	Records        int
	FirstSeq       uint64
	LastSeq        uint64 // last record that verified
	LastCheckpoint *Checkpoint
	Unsigned       int // records after the last checkpoint
	Torn           *TornTail
	Problem        *Problem
	Files          []FileStatus
}

// FileStatus is how far one file verified.
type FileStatus struct {
	Name     string
	Size     int64
	Verified int64 // bytes verified from the start
	Lines    int
}

// IntegrityProgress is an Update under way.
type IntegrityProgress struct {
	Running     bool
	Done, Total int64 // bytes
}

// NewChainMonitor returns a monitor that has verified nothing yet.
func NewChainMonitor(o ChainMonitorOptions) (*ChainMonitor, error) {
	if len(o.Keys) == 0 {
		return nil, ErrNoKey
	}
	return &ChainMonitor{keys: o.Keys, chunk: cmp.Or(o.RecheckChunk, 1<<20), budget: cmp.Or(o.RecheckBudget, 32<<20),
		chains: map[string]*monitoredChain{}}, nil
}

// Report is the result of the last finished Update, nil before the first.
func (m *ChainMonitor) Report() *IntegrityReport { return m.last.Load() }

// Progress says whether an Update runs and how far it got.
func (m *ChainMonitor) Progress() IntegrityProgress {
	return IntegrityProgress{Running: m.running.Load(), Done: m.done.Load(), Total: m.total.Load()}
}

type monitoredChain struct {
	node  string
	v     *verifier
	files []*monitoredFile
	// round-robin recheck cursor
	turnFile  int
	turnChunk int
}

type monitoredFile struct {
	name  string
	id    [sha256.Size]byte // SHA-256 of the first line: the file across renames
	pos   filePos           // verified through
	done  bool              // verified to its end with later files after it
	sums  [][sha256.Size]byte
	lines int
}

// Update brings every chain of the files list names up to date and
// returns the report. It returns an error only when it cannot read; what
// is wrong with a log is in the report. A file that vanishes during the
// pass (the writer rotating it) makes it list the files again.
func (m *ChainMonitor) Update(ctx context.Context, list func() ([]string, error)) (*IntegrityReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running.Store(true)
	defer m.running.Store(false)
	for try := 0; ; try++ {
		files, err := list()
		if err != nil {
			return nil, err
		}
		rep, err := m.update(ctx, files)
		if errors.Is(err, fs.ErrNotExist) && try < 3 {
			continue
		}
		return rep, err
	}
}

func (m *ChainMonitor) update(ctx context.Context, files []string) (*IntegrityReport, error) {
	m.done.Store(0)
	m.total.Store(0)

	nodes, err := GroupByNode(files)
	if err != nil {
		return nil, err
	}
	type work struct {
		nl      NodeLog
		ordered []orderedFile
		ids     [][sha256.Size]byte
		sizes   []int64
	}
	var todo []work
	var total int64
	for _, nl := range nodes {
		w := work{nl: nl}
		if w.ordered, err = orderFiles(nl.Files); err != nil {
			return nil, err
		}
		for _, of := range w.ordered {
			id, size, err := fileIdentity(of.name)
			if err != nil {
				return nil, err
			}
			w.ids, w.sizes = append(w.ids, id), append(w.sizes, size)
		}
		ch := m.chains[nl.Node]
		if ch == nil || !ch.follows(w.ordered, w.ids) {
			// New, or not the files it verified (files removed by
			// retention, a log restarted): verify from the start.
			ch = m.newChain(ctx, nl.Node)
			m.chains[nl.Node] = ch
		}
		for i, size := range w.sizes {
			if i < len(ch.files) {
				size -= ch.files[i].pos.off
			}
			total += max(size, 0)
		}
		todo = append(todo, w)
	}
	m.total.Store(total)

	rep := &IntegrityReport{}
	for _, w := range todo {
		ch := m.chains[w.nl.Node]
		ch.v.ctx = ctx
		if err := m.advance(ctx, ch, w.nl, w.ordered, w.ids, w.sizes); err != nil {
			return nil, err
		}
		rep.Chains = append(rep.Chains, ch.status(w.sizes))
	}
	for node := range m.chains {
		if !containsNode(nodes, node) {
			delete(m.chains, node)
		}
	}
	rep.Time = time.Now()
	m.last.Store(rep)
	return rep, nil
}

func containsNode(nodes []NodeLog, node string) bool {
	for _, nl := range nodes {
		if nl.Node == node {
			return true
		}
	}
	return false
}

func (m *ChainMonitor) newChain(ctx context.Context, node string) *monitoredChain {
	v := &verifier{ctx: ctx, keys: map[string]ed25519.PublicKey{}, res: &VerifyResult{}}
	for _, k := range m.keys {
		id := KeyID(k)
		v.keys[id] = k
		v.res.KeyIDs = append(v.res.KeyIDs, id)
	}
	return &monitoredChain{node: node, v: v}
}

// follows reports whether the files the chain verified are, in order, the
// first of ordered (renamed files are followed by their first line).
func (ch *monitoredChain) follows(ordered []orderedFile, ids [][sha256.Size]byte) bool {
	if len(ch.files) > len(ordered) {
		return false
	}
	for i, mf := range ch.files {
		if mf.id == ([sha256.Size]byte{}) && mf.pos.off == 0 {
			mf.id = ids[i] // the file had no complete first line yet
		}
		if mf.id != ids[i] {
			return false
		}
		mf.name = ordered[i].name // rotation renames the active file
	}
	return true
}

// advance rechecks what was verified before and verifies what is new.
func (m *ChainMonitor) advance(ctx context.Context, ch *monitoredChain, nl NodeLog, ordered []orderedFile, ids [][sha256.Size]byte, sizes []int64) error {
	v := ch.v
	if v.res.Problem != nil {
		return nil // tampered stays tampered
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i].firstSeq == ordered[i-1].firstSeq && ordered[i].firstSeq != noRecord {
			v.res.Problem = &Problem{Kind: ProblemInserted, File: ordered[i].name, Line: 1, Seq: ordered[i].firstSeq,
				Detail: fmt.Sprintf("starts at the same seq as %s", ordered[i-1].name)}
			return nil
		}
	}
	changed, err := m.recheck(ch, sizes)
	if err != nil {
		return err
	}
	if changed != "" {
		return m.locate(ctx, ch, nl, changed)
	}

	v.res.Torn = nil
	var before int64 // progress of the files done in this pass
	for i, of := range ordered {
		if i == len(ch.files) {
			ch.files = append(ch.files, &monitoredFile{name: of.name, id: ids[i]})
		}
		mf := ch.files[i]
		last := i == len(ordered)-1
		if mf.done {
			continue
		}
		from := mf.pos
		base := m.done.Load()
		v.progress = func(off int64) { m.done.Store(base + off - from.off) }
		pos, err := v.fileFrom(of.name, last, from)
		v.progress = nil
		if err != nil {
			return err
		}
		mf.pos, mf.lines = pos, pos.line
		before += sizes[i] - from.off
		m.done.Store(before)
		if err := m.digest(mf, from.off); err != nil {
			return err
		}
		if v.res.Problem != nil {
			return nil
		}
		if !last {
			mf.done = true
		}
	}
	if len(ordered) > 0 {
		v.res.Files = v.res.Files[:0]
		for _, of := range ordered {
			v.res.Files = append(v.res.Files, of.name)
		}
	}
	return nil
}

// digest takes the SHA-256 of every chunk of mf from the one holding from
// to what is verified now.
func (m *ChainMonitor) digest(mf *monitoredFile, from int64) error {
	k := int(from / m.chunk)
	mf.sums = mf.sums[:min(k, len(mf.sums))]
	if mf.pos.off <= int64(k)*m.chunk {
		return nil
	}
	f, err := os.Open(mf.name)
	if err != nil {
		return err
	}
	defer f.Close()
	for off := int64(len(mf.sums)) * m.chunk; off < mf.pos.off; off += m.chunk {
		sum, err := chunkSum(f, off, min(m.chunk, mf.pos.off-off))
		if err != nil {
			return err
		}
		mf.sums = append(mf.sums, sum)
	}
	return nil
}

func chunkSum(f *os.File, off, n int64) ([sha256.Size]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		return [sha256.Size]byte{}, err
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

// recheck re-reads every file's last verified chunk and, in turn, budget
// bytes of the rest, and returns a description of the first that changed
// since it was verified ("" if none did).
func (m *ChainMonitor) recheck(ch *monitoredChain, sizes []int64) (string, error) {
	check := func(i, k int) (string, error) {
		mf := ch.files[i]
		f, err := os.Open(mf.name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		off := int64(k) * m.chunk
		sum, err := chunkSum(f, off, min(m.chunk, mf.pos.off-off))
		if err != nil {
			return "", err
		}
		if sum != mf.sums[k] {
			return fmt.Sprintf("%s bytes %d–%d changed after they were verified", mf.name, off, min(off+m.chunk, mf.pos.off)), nil
		}
		return "", nil
	}
	for i, mf := range ch.files {
		if i < len(sizes) && sizes[i] < mf.pos.off {
			return fmt.Sprintf("%s is %d bytes, shorter than the %d bytes verified before", mf.name, sizes[i], mf.pos.off), nil
		}
		if n := len(mf.sums); n > 0 {
			if d, err := check(i, n-1); d != "" || err != nil {
				return d, err
			}
		}
	}
	var spent int64
	for range len(ch.files) + 1 {
		if ch.turnFile >= len(ch.files) {
			ch.turnFile, ch.turnChunk = 0, 0
		}
		if len(ch.files) == 0 {
			break
		}
		mf := ch.files[ch.turnFile]
		for ch.turnChunk < len(mf.sums)-1 && spent < m.budget {
			if d, err := check(ch.turnFile, ch.turnChunk); d != "" || err != nil {
				return d, err
			}
			spent += m.chunk
			ch.turnChunk++
		}
		if spent >= m.budget {
			break
		}
		ch.turnFile, ch.turnChunk = ch.turnFile+1, 0
	}
	return "", nil
}

// locate verifies the whole chain again to say which record changed.
func (m *ChainMonitor) locate(ctx context.Context, ch *monitoredChain, nl NodeLog, changed string) error {
	res, err := Verify(ctx, nl.Files, VerifyOptions{Keys: m.keys})
	if err != nil {
		return err
	}
	v := m.newChain(ctx, ch.node).v
	*ch = monitoredChain{node: ch.node, v: v}
	v.res = res
	if res.Problem == nil {
		// The change is not in a record any more (it was undone) or not
		// where Verify looks; report what the digests saw.
		res.Problem = &Problem{Kind: ProblemModified, File: nl.Files[0], Detail: changed}
	} else {
		res.Problem.Detail += " (" + changed + ")"
	}
	return nil
}

func (ch *monitoredChain) status(sizes []int64) ChainStatus {
	r := ch.v.res
	st := ChainStatus{Node: ch.node, Records: r.Records, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, LastCheckpoint: r.LastCheckpoint,
		Unsigned: r.Unsigned, Torn: r.Torn, Problem: r.Problem}
	for i, mf := range ch.files {
		fs := FileStatus{Name: mf.name, Verified: mf.pos.off, Lines: mf.lines}
		if i < len(sizes) {
			fs.Size = sizes[i]
		}
		st.Files = append(st.Files, fs)
	}
	if st.Problem == nil && ch.v.started && r.Checkpoints == 0 {
		st.Problem = &Problem{Kind: ProblemUnsigned, File: ch.v.lastFile, Line: ch.v.lastLine, Seq: ch.v.seq,
			Detail: fmt.Sprintf("records seq %d–%d contain no checkpoint signed by a trusted key", r.FirstSeq, ch.v.seq)}
	}
	switch {
	case st.Problem != nil:
		st.State = ChainTampered
	case st.Torn != nil:
		st.State = ChainTorn
	case r.Records == 0:
		st.State = ChainEmpty
	default:
		st.State = ChainVerified
	}
	return st
}

// fileIdentity is the SHA-256 of a file's first line (zero for a file
// without one yet) and its size.
func fileIdentity(name string) ([sha256.Size]byte, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return [sha256.Size]byte{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return [sha256.Size]byte{}, 0, err
	}
	line, err := readFirstLine(f)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errMalformed):
		return [sha256.Size]byte{}, fi.Size(), nil
	case err != nil:
		return [sha256.Size]byte{}, 0, err
	}
	return sha256.Sum256(bytes.TrimSuffix(line, []byte("\n"))), fi.Size(), nil
}
