package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrUnavailable is wrapped by every error Record returns because the log
// could not be written (disk full, permissions, I/O error). Callers must fail
// closed: the event was not recorded.
var ErrUnavailable = errors.New("audit log unavailable")

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: log closed")

// maxPendingAsync bounds what SyncAsync callers may queue before they wait.
const maxPendingAsync = 8 << 20

// defaultSyncsInFlight is how many batches the committer keeps written and
// fsyncing at once (pipelined group commit). One fsync at a time caps
// durable records/s at (callers ÷ fsync time), since the callers waiting on
// the fsync under way cannot queue for the next one; with a second batch
// written and fsyncing while the first one's fsync runs, the disk overlaps
// the two. See docs/audit.md.
const defaultSyncsInFlight = 2

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	opts   Options
	fields *fieldEncoder
	pub    ed25519.PublicKey
	keyID  string
	logger *zap.Logger
	lock   *os.File

	mu      sync.Mutex
	head    chainState // after the last sequenced record
	durable chainState // after the last fsynced record
	// durableBytes is the size of the active file up to durable: what
	// recovery cuts the file back to.
	durableBytes int64
	pending      []byte
	batch        *batch
	lastCut      *batch // the newest batch handed to the committer's write
	failure      error  // non-nil while the log cannot be written
	refused      int    // records refused since the failure began
	closing      bool
	// gatherWant, when positive, is the number of caller records in the
	// pending batch at which the gathering committer wants to be woken
	// (on gathered).
	gatherWant int
	gathered   chan struct{}

	kick    chan struct{}
	closeCh chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
	mirror  *mirror

	// Owned by the committer goroutine (and by Open before it starts).
	f            file  // writes go here, in chain order
	fileBytes    int64 // written to the active file (durable or in flight)
	fileFirstSeq uint64
	fileStart    time.Time
	fileEvents   int
	rotating     bool // sealed; rename or create still to do
	renamed      bool
	lastRetry    time.Time
	lastBatch    int     // caller records in the last batch
	last         *flight // the newest batch in flight (or done)
	gatherTimer  *time.Timer

	// syncFiles holds the descriptors that fsync the active file, one per
	// batch in flight: a batch takes one before it is cut and gives it back
	// once it is acknowledged or failed, so at most cap(syncFiles) batches
	// are in flight. See flight for why each has its own descriptor.
	syncFiles chan file
	spares    chan []byte  // batch buffers to reuse
	lastSync  atomic.Int64 // how long the last batch's write and fsync took (ns)

	stats commitStats
}

// commitStats count the committer's work, for benchmarks: how many
// batches it wrote, how many caller records they held, and the time spent
// in write and fsync.
type commitStats struct {
	batches   atomic.Uint64
	records   atomic.Uint64
	syncNanos atomic.Int64
}

// chainState is the head of the chain and what the checkpoint rules need.
type chainState struct {
	seq             uint64
	hash            [hashLen]byte
	sinceCheckpoint int
	lastCheckpoint  time.Time
}

// flight is a batch written to the active file whose fsync is under way
// (or done) and whose callers are not yet answered.
//
// Each flight fsyncs through its own open file description (syncFiles), not
// the one it was written through: Linux reports a write-back error once per
// open file description (errseq: fsync reports an error that happened since
// that description last reported one). With two fsyncs in flight on one
// shared descriptor, whichever checks first would consume the error, and
// the other, possibly the one for the batch whose pages failed, would report
// success. With a description per fsync, every fsync that completes after
// the error reports it. The descriptors are reopened after a failure (so
// that none reports an error already acted on to the recovery's fsync) and
// at rotation (new file).
//
// A flight is acknowledged only after its own fsync and every earlier
// flight's succeeded: durable answers are given in chain order (no caller
// is told durable before every earlier caller is), and a failed flight
// fails every later one, so no record after a failed one is ever reported
// durable. Failures may be answered earlier: a batch whose write fails,
// and the records queued, fail at once while an earlier flight's fsync may
// still succeed.
type flight struct {
	b     *batch
	buf   []byte
	end   int64 // file size after buf
	wrote time.Duration
	sync  file
	prev  *flight // the flight before (nil if none since Open or recovery); finish drops it once answered
	// failed is set before done is closed: the error its callers got.
	failed error
	done   chan struct{}
}

// batch is the group of records that share one write and one fsync.
type batch struct {
	done    chan struct{}
	err     error
	end     chainState
	records int // caller records (not the log's own)
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

func (b *batch) finish(err error) {
	b.err = err
	close(b.done)
}

// Open opens (creating if needed) the log at opts.Path and continues its
// chain from the last good record: a torn tail left by a crash is cut off
// and reported in an "audit.opened" record. It fails with ErrCorrupt if the
// end of the existing log does not verify, with ErrLocked if another process
// has it open, and with the operating system's error if the file cannot be
// created or written. ctx bounds Open only; the log lives until Close.
func Open(ctx context.Context, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pub := opts.SigningKey.Public().(ed25519.PublicKey)
	l := &Log{
		opts:      opts,
		fields:    newFieldEncoder(opts.HashedFields),
		pub:       pub,
		keyID:     KeyID(pub),
		logger:    opts.Logger.With(zap.String("audit_log", opts.Path)),
		batch:     newBatch(),
		syncFiles: make(chan file, opts.syncsInFlight),
		spares:    make(chan []byte, opts.syncsInFlight+1),
		kick:      make(chan struct{}, 1),
		gathered:  make(chan struct{}, 1),
		closeCh:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if l.lock, err = lockPath(opts.Path + ".lock"); err != nil {
		return nil, err
	}
	if opts.Mirror != nil {
		l.mirror = newMirror(opts.Mirror, l.logger)
	}
	if err := l.open(); err != nil {
		if errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w\n(the gateway will not sign over a log it cannot verify: run `meetguard audit verify --key COPY_OF_TRUSTED.pub %s` "+
				"and inspect the records it names; keep the files as evidence, move them aside, and start again to begin a new log)",
				err, rotatedGlob(opts.Path))
		}
		if l.mirror != nil {
			l.mirror.close()
		}
		l.lock.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// open resumes the chain and writes the opening records synchronously, so
// that an unwritable log fails Open rather than the first admission.
func (l *Log) open() error {
	path := l.opts.Path
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("audit: %s is not a regular file", path)
	}
	keys := map[string]ed25519.PublicKey{l.keyID: l.pub}
	for _, k := range l.opts.TrustedKeys {
		keys[KeyID(k)] = k
	}
	t, err := readChainTail(path, keys)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err == nil && !t.empty && !t.hasCheckpoint {
		// No checkpoint in the active file: it must continue the rotated
		// file before it, whose rotation checkpoint then covers it.
		if err := coverFromRotated(path, &t, keys); err != nil {
			return err
		}
	}
	missing := errors.Is(err, os.ErrNotExist)
	now := l.opts.Clock()
	resumed := t
	if missing || t.empty {
		// A new active file: continue from the newest rotated file, if any.
		rotated, err := rotatedFiles(path)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		resumed = chainTail{empty: true}
		if len(rotated) > 0 {
			last := rotated[len(rotated)-1]
			if resumed, err = readChainTail(last, keys); err != nil {
				return err
			}
			if len(resumed.torn) > 0 || resumed.empty || !resumed.hasCheckpoint || resumed.sinceCheckpoint > 0 {
				return fmt.Errorf("%w: rotated file %s does not end with its rotation checkpoint", ErrCorrupt, last)
			}
		}
	}
	f, err := l.opts.openFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.f = f
	fail := func(err error) error {
		f.Close()
		l.closeSyncFiles()
		return err
	}
	if missing {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return fail(fmt.Errorf("audit: %w", err))
		}
	}
	syncs, err := l.openSyncFiles(f)
	if err != nil {
		return fail(fmt.Errorf("audit: %w", err))
	}
	l.useSyncFiles(syncs)
	if len(t.torn) > 0 {
		if err := f.Truncate(t.end); err != nil {
			return fail(fmt.Errorf("audit: cut torn tail: %w", err))
		}
		l.logger.Warn("audit log ended in an incomplete record (crash during a write); cut it off",
			zap.Int64("offset", t.end), zap.Int("bytes", len(t.torn)))
	}
	if !missing && !t.empty {
		l.fileBytes, l.fileFirstSeq, l.fileStart, l.fileEvents = t.end, t.firstSeq, parseTS(t.firstTS), 1
	} else {
		l.fileBytes, l.fileStart = 0, now
	}
	if err := WritePublicKey(path+".pub", l.pub); err != nil {
		return fail(err)
	}

	genesis := resumed.empty
	l.head = chainState{seq: resumed.seq, hash: resumed.head, sinceCheckpoint: resumed.sinceCheckpoint, lastCheckpoint: now}
	if resumed.checkpointTS != nil {
		l.head.lastCheckpoint = parseTS(resumed.checkpointTS)
	}
	if l.fileFirstSeq == 0 {
		l.fileFirstSeq = l.head.seq + 1
	}
	l.durable = l.head
	switch {
	case genesis:
		l.appendCheckpoint(now, reasonGenesis)
	case l.head.sinceCheckpoint > 0:
		// Sign what the previous run left unsigned: it links to a
		// checkpoint a trusted key signed, and was checked above.
		l.appendCheckpoint(now, reasonOpen)
	}
	members := []zap.Field{
		zap.Uint64("resumed_seq", resumed.seq),
		zap.Bool("clean_shutdown", genesis || resumed.lastReason == reasonClose),
		zap.String("key_id", l.keyID),
	}
	if len(t.torn) > 0 {
		members = append(members, zap.Int("torn_bytes", len(t.torn)), zap.String("torn_sha256", tornDigest(t.torn)))
	}
	enc, _, err := l.fields.encode(members)
	if err != nil {
		return fail(err)
	}
	l.appendLocked(now, EventOpened, enc)
	buf, b := l.pending, l.batch
	l.pending, l.batch = nil, newBatch()
	if err := l.writeSync(buf); err != nil {
		return fail(fmt.Errorf("%w: %s: %w", ErrUnavailable, path, err))
	}
	l.fileBytes += int64(len(buf))
	l.fileEvents += b.records + 1
	l.durable, l.durableBytes, l.lastCut = b.end, l.fileBytes, b
	if l.mirror != nil {
		l.mirror.send(buf)
	}
	return nil
}

// Record writes one event. In SyncDurable mode it returns nil only once
// the record is fsynced; any error means the event is not (reliably)
// recorded and the caller must fail closed. The error wraps ErrUnavailable
// when the log cannot be written, ErrClosed after Close, ctx.Err() when ctx
// ends first (the record may then still be written).
func (l *Log) Record(ctx context.Context, event string, fields ...zap.Field) error {
	return l.write(ctx, event, fields)
}

func (l *Log) write(ctx context.Context, event string, fields []zap.Field) error {
	if !validEventName(event) || strings.HasPrefix(event, "audit.") {
		return fmt.Errorf("%w: %q", ErrInvalidEvent, event)
	}
	if err := CheckFields(event, fields); err != nil {
		if l.opts.StrictSchema {
			return err
		}
		l.logger.Warn("audit record differs from its documented schema; written anyway", zap.Error(err))
	}
	members, redacted, err := l.fields.encode(fields)
	if err != nil {
		return err
	}
	if len(redacted) > 0 {
		l.logger.Warn("audit record had secret-looking members; wrote them redacted",
			zap.String("event", event), zap.Strings("keys", redacted))
	}
	l.mu.Lock()
	if l.failure != nil {
		l.refused++
		err := l.failure
		l.mu.Unlock()
		return err
	}
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	now := l.opts.Clock()
	l.appendLocked(now, event, members)
	l.batch.records++
	if l.gatherWant > 0 && l.batch.records >= l.gatherWant {
		l.gatherWant = 0
		select {
		case l.gathered <- struct{}{}:
		default:
		}
	}
	if l.head.sinceCheckpoint >= l.opts.CheckpointEvery {
		l.appendCheckpoint(now, reasonCount)
	}
	b := l.batch
	wait := l.opts.Sync == SyncDurable || len(l.pending) > maxPendingAsync
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	if !wait {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendLocked sequences one record into the pending batch. l.mu is held
// (or Open runs alone).
func (l *Log) appendLocked(now time.Time, event string, members []byte) {
	var sum [hashLen]byte
	l.pending, sum = appendRecord(l.pending, l.head.seq+1, now, event, l.opts.Node, &l.head.hash, members, nil)
	l.head.seq++
	l.head.hash = sum
	l.head.sinceCheckpoint++
	l.batch.end = l.head
}

func (l *Log) appendCheckpoint(now time.Time, reason string) {
	members := appendCheckpointMembers(nil, l.keyID, l.opts.CheckpointEvery, reason)
	var sum [hashLen]byte
	l.pending, sum = appendRecord(l.pending, l.head.seq+1, now, EventCheckpoint, l.opts.Node, &l.head.hash, members, l.opts.SigningKey)
	l.head = chainState{seq: l.head.seq + 1, hash: sum, lastCheckpoint: now}
	l.batch.end = l.head
}

// writeSync writes buf and fsyncs it, with nothing else in flight (Open,
// recovery).
func (l *Log) writeSync(buf []byte) error {
	if _, err := l.f.Write(buf); err != nil {
		return err
	}
	sf := <-l.syncFiles
	defer func() { l.syncFiles <- sf }()
	return l.opts.syncBatch(sf, buf)
}

// openSyncFiles opens one descriptor per batch in flight on the active
// file, for fsync only (see flight). They are opened by path, so each is
// checked to be the file written through w: if the path now names another
// file (a volume remounted, the file replaced), an fsync through them
// would make nothing written durable, and the log fails closed instead.
func (l *Log) openSyncFiles(w file) ([]file, error) {
	fs := make([]file, 0, cap(l.syncFiles))
	fail := func(err error) ([]file, error) {
		for _, f := range fs {
			f.Close()
		}
		return nil, err
	}
	wst, err := w.Stat()
	if err != nil {
		return fail(fmt.Errorf("%w: stat %s: %w", ErrUnavailable, l.opts.Path, err))
	}
	for range cap(l.syncFiles) {
		f, err := l.opts.openFile(l.opts.Path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fail(err)
		}
		fs = append(fs, f)
		st, err := f.Stat()
		if err != nil {
			return fail(fmt.Errorf("%w: stat %s: %w", ErrUnavailable, l.opts.Path, err))
		}
		if !os.SameFile(st, wst) {
			return fail(fmt.Errorf("%w: %s is no longer the file being written (replaced or remounted?); "+
				"refusing to fsync another file", ErrUnavailable, l.opts.Path))
		}
	}
	return fs, nil
}

// useSyncFiles replaces the fsync descriptors. Nothing may be in flight:
// every descriptor is back in syncFiles (or none was opened yet).
func (l *Log) useSyncFiles(fs []file) {
	l.closeSyncFiles()
	for _, f := range fs {
		l.syncFiles <- f
	}
}

func (l *Log) closeSyncFiles() {
	for len(l.syncFiles) > 0 {
		(<-l.syncFiles).Close()
	}
}

// Ready returns nil when the log can be written, else why not (the error
// wraps ErrUnavailable, or is ErrClosed). Use it for the readiness probe.
func (l *Log) Ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failure != nil {
		return l.failure
	}
	if l.closing {
		return ErrClosed
	}
	return nil
}

// QueueDepth is how many records (the log's own checkpoints included) are
// sequenced but not yet durable: those waiting for the next write, or in
// a batch in flight (written, fsync under way or not yet answered). A
// depth that keeps growing means the disk cannot keep up.
func (l *Log) QueueDepth() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head.seq < l.durable.seq {
		// A failure rolled head back while an earlier batch in flight
		// was still to become durable; recovery sets head again.
		return 0
	}
	return int(l.head.seq - l.durable.seq)
}

// PublicKey returns the key that verifies this log's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey { return l.pub }

// Sync waits until every record sequenced so far is durable. Once the
// log has failed it returns the failure at once, without waiting for the
// batches still in flight (none after the failure can become durable).
func (l *Log) Sync() error {
	l.mu.Lock()
	if l.failure != nil {
		defer l.mu.Unlock()
		return l.failure
	}
	// Batches are answered in chain order, so waiting for the newest one
	// waits for all: the one still pending, else the newest in flight.
	b, pending := l.lastCut, len(l.pending) > 0 && !l.closing
	if pending {
		b = l.batch
	}
	l.mu.Unlock()
	if b == nil {
		return nil
	}
	if pending {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	<-b.done
	return b.err
}

// Close writes a final checkpoint (marking a clean shutdown), makes
// everything durable and closes the file. Records after Close fail.
func (l *Log) Close() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	close(l.closeCh)
	<-l.done
	l.mu.Lock()
	err := l.failure
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit: close: %w", cerr)
	}
	l.closeSyncFiles()
	if l.mirror != nil {
		l.mirror.close()
	}
	l.lock.Close()
	return err
}

// run is the committer: it writes and fsyncs batches, adds time-based
// checkpoints, rotates files and retries after failures.
func (l *Log) run() {
	defer close(l.done)
	tick := min(l.opts.CheckpointInterval/2, l.opts.RetryInterval/2, time.Second)
	tick = max(tick, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		closing := false
		select {
		case <-l.kick:
		case <-t.C:
		case <-l.closeCh:
			closing = true
		}
		if l.Ready() != nil && !closing {
			l.drain()
			l.recover()
			continue
		}
		l.commit(closing)
		if closing {
			l.drain()
			return
		}
	}
}

// commit writes what is pending as one batch and starts its fsync; it
// returns without waiting for the fsync unless the batch seals the file
// for rotation. It first takes a free fsync descriptor, waiting while the
// most batches allowed are in flight; records keep queueing meanwhile.
func (l *Log) commit(closing bool) {
	sf := <-l.syncFiles
	l.gather(closing)
	l.mu.Lock()
	now := l.opts.Clock()
	rotate := false
	if l.failure == nil {
		if l.head.sinceCheckpoint > 0 && now.Sub(l.head.lastCheckpoint) >= l.opts.CheckpointInterval {
			l.appendCheckpoint(now, reasonInterval)
		}
		switch {
		case closing:
			l.closing = true
			l.appendCheckpoint(now, reasonClose)
		case l.rotationDue(now):
			l.appendCheckpoint(now, reasonRotate)
			rotate = true
		}
	} else if closing {
		l.closing = true
	}
	if len(l.pending) == 0 {
		l.mu.Unlock()
		l.syncFiles <- sf
		return
	}
	var spare []byte
	select {
	case spare = <-l.spares:
	default:
	}
	buf, b := l.pending, l.batch
	l.pending, l.batch, l.lastCut = spare[:0], newBatch(), b
	l.mu.Unlock()

	l.lastBatch = b.records
	start := time.Now()
	if _, err := l.f.Write(buf); err != nil {
		// Batches before it may still become durable: their bytes
		// precede these. Recovery cuts the file back to the last of them.
		l.syncFiles <- sf
		l.fail(b, err)
		return
	}
	l.fileBytes += int64(len(buf))
	l.fileEvents += b.records
	fl := &flight{b: b, buf: buf, end: l.fileBytes, wrote: time.Since(start), sync: sf, prev: l.last, done: make(chan struct{})}
	l.last = fl
	go l.finish(fl)
	if rotate {
		// The file is sealed: every batch must be durable before it is
		// renamed and the next one written to a new file.
		l.drain()
		if fl.failed != nil {
			return // recovery rewrites the tail; rotation comes again
		}
		l.rotating = true
		if err := l.rotate(now); err != nil {
			l.setFailure(fmt.Errorf("%w: rotate %s: %w", ErrUnavailable, l.opts.Path, err))
		}
	}
}

// finish fsyncs a flight, then answers its callers once every earlier
// flight is answered: durable if its fsync and all earlier ones succeeded,
// else failed with the first failure.
func (l *Log) finish(fl *flight) {
	start := time.Now()
	err := l.opts.syncBatch(fl.sync, fl.buf)
	took := fl.wrote + time.Since(start)
	var prevErr error
	if p := fl.prev; p != nil {
		<-p.done
		prevErr = p.failed
		// Drop the link once its verdict is taken: l.last must not keep
		// every flight since Open reachable through prev.
		fl.prev = nil
	}
	switch {
	case prevErr != nil:
		// Its own fsync may have succeeded, but it extends a chain
		// whose earlier records are not durable: refused like them.
		fl.failed = prevErr
		l.mu.Lock()
		l.refused += fl.b.records
		l.mu.Unlock()
		fl.b.finish(fl.failed)
	case err != nil:
		fl.failed = l.fail(fl.b, err)
	default:
		l.lastSync.Store(int64(took))
		l.stats.batches.Add(1)
		l.stats.records.Add(uint64(fl.b.records))
		l.stats.syncNanos.Add(int64(took))
		l.mu.Lock()
		l.durable, l.durableBytes = fl.b.end, fl.end
		l.mu.Unlock()
		fl.b.finish(nil)
		if l.mirror != nil {
			l.mirror.send(fl.buf)
		}
	}
	select {
	case l.spares <- fl.buf:
	default:
	}
	fl.buf = nil // l.last must not pin a buffer reused or dropped above
	l.syncFiles <- fl.sync
	close(fl.done)
}

// drain waits until every flight is answered. Only the committer calls it.
func (l *Log) drain() {
	if l.last != nil {
		<-l.last.done
	}
}

// gather delays a commit briefly when the last batch was shared by several
// callers and fewer have queued since: the callers it just released are
// about to queue their next records, and letting them share this fsync
// (instead of sending the first one alone) roughly doubles throughput under
// load. It waits until as many records are queued as the last batch held,
// or for a quarter of the last fsync and at most 500µs, whichever comes
// first. A lone caller never waits.
//
// While another batch's fsync is under way, a new batch starts alongside it
// only once as many records are queued as the last batch held; otherwise
// it waits for that fsync to end, then gathers as above. Small batches in
// parallel would only add fsyncs (each costs this kind of machine a few
// hundred µs of system CPU) without moving more records.
//
// Once woken, it yields before the batch is cut: the writer whose record
// woke it made the committer the next goroutine to run, ahead of writers
// already runnable with their records ready. Without the yield, with one
// CPU (GOMAXPROCS=1) every batch was cut at exactly the last one's size,
// and a small batch stayed small (12–35 records at 1 024–2 048 writers).
func (l *Log) gather(closing bool) {
	if closing || l.opts.Sync != SyncDurable || l.lastBatch < 2 {
		return
	}
	select { // a wake-up left over from an earlier gather
	case <-l.gathered:
	default:
	}
	l.mu.Lock()
	queued := l.batch.records
	if queued == 0 || queued >= l.lastBatch {
		l.mu.Unlock()
		return
	}
	l.gatherWant = l.lastBatch
	l.mu.Unlock()
	if l.last != nil {
		select {
		case <-l.last.done:
		default:
			select {
			case <-l.gathered:
				l.mu.Lock()
				l.gatherWant = 0
				l.mu.Unlock()
				runtime.Gosched()
				return
			case <-l.last.done:
			case <-l.closeCh:
			}
			l.mu.Lock()
			queued := l.batch.records
			if queued == 0 || queued >= l.lastBatch {
				l.gatherWant = 0
				l.mu.Unlock()
				return
			}
			l.gatherWant = l.lastBatch
			l.mu.Unlock()
		}
	}
	if l.gatherTimer == nil {
		l.gatherTimer = time.NewTimer(time.Hour)
	}
	l.gatherTimer.Reset(min(time.Duration(l.lastSync.Load())/4, 500*time.Microsecond))
	select {
	case <-l.gathered:
	case <-l.gatherTimer.C:
	case <-l.closeCh:
	}
	l.gatherTimer.Stop()
	l.mu.Lock()
	l.gatherWant = 0
	l.mu.Unlock()
	runtime.Gosched()
}

func (l *Log) rotationDue(now time.Time) bool {
	if l.fileEvents+l.batch.records == 0 {
		return false
	}
	size := l.fileBytes + int64(len(l.pending))
	return l.opts.MaxFileBytes > 0 && size >= l.opts.MaxFileBytes ||
		l.opts.MaxFileAge > 0 && now.Sub(l.fileStart) >= l.opts.MaxFileAge
}

// rotate moves the sealed active file aside and starts a new one. It can
// be retried: each step remembers that it is done.
func (l *Log) rotate(now time.Time) error {
	path := l.opts.Path
	if !l.renamed {
		to := rotatedName(path, l.fileFirstSeq)
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("%s already exists", to)
		}
		if err := os.Rename(path, to); err != nil {
			return err
		}
		l.renamed = true
		if err := syncDir(filepath.Dir(path)); err != nil {
			return err
		}
	}
	nf, err := l.opts.openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	syncs, err := l.openSyncFiles(nf)
	if err == nil {
		if err = syncDir(filepath.Dir(path)); err != nil {
			for _, f := range syncs {
				f.Close()
			}
		}
	}
	if err != nil {
		nf.Close()
		os.Remove(path)
		return err
	}
	if err := l.f.Close(); err != nil {
		l.logger.Warn("closing rotated audit file", zap.Error(err))
	}
	l.useSyncFiles(syncs) // nothing is in flight: commit drained
	l.mu.Lock()
	seq := l.durable.seq
	l.durableBytes = 0
	l.mu.Unlock()
	l.f, l.fileBytes, l.fileFirstSeq, l.fileStart, l.fileEvents = nf, 0, seq+1, now, 0
	l.rotating, l.renamed = false, false
	l.logger.Info("rotated audit log", zap.Uint64("next_seq", seq+1))
	return nil
}

// fail handles a failed write or fsync: nothing in it, nor anything
// sequenced after it, is acknowledged (later flights fail when they see it
// failed); the chain rolls back to the last durable record. It returns the
// error its callers got.
func (l *Log) fail(b *batch, cause error) error {
	err := fmt.Errorf("%w: write %s: %w", ErrUnavailable, l.opts.Path, cause)
	l.mu.Lock()
	l.refused += b.records
	l.mu.Unlock()
	// Not ready before any caller hears of the failure.
	l.setFailure(err)
	b.finish(err)
	return err
}

// setFailure stops the log: records not yet written are refused and the
// chain rolls back to the last durable record. The first failure stays the
// reason Ready reports until recovery.
func (l *Log) setFailure(err error) {
	l.mu.Lock()
	later := l.batch
	l.refused += later.records
	l.pending, l.batch = l.pending[:0], newBatch()
	l.head = l.durable
	first := l.failure == nil
	if first {
		l.failure = err
	}
	l.mu.Unlock()
	later.finish(err)
	if first {
		l.logger.Error("audit log cannot be written; refusing records until it can", zap.Error(err))
	}
}

// recover retries a failed log every RetryInterval: it cuts whatever a
// failed write left after the last durable record, finishes a pending
// rotation, and writes an audit.recovered record. Only when that record is
// durable does the log accept records again. Nothing is in flight: run
// drained it.
func (l *Log) recover() {
	now := time.Now()
	if now.Sub(l.lastRetry) < l.opts.RetryInterval {
		return
	}
	l.lastRetry = now
	// Ready keeps reporting the first cause; retries only log theirs.
	if l.rotating {
		if err := l.rotate(l.opts.Clock()); err != nil {
			l.logger.Warn("audit log retry failed", zap.String("step", "rotate"), zap.Error(err))
			return
		}
	}
	// Fresh fsync descriptors: one that did not run an fsync since the
	// failure would report its write-back error (already acted on, and
	// about bytes cut below) to the recovery's fsync.
	syncs, err := l.openSyncFiles(l.f)
	if err != nil {
		l.logger.Warn("audit log retry failed", zap.String("step", "open"), zap.Error(err))
		return
	}
	l.useSyncFiles(syncs)
	l.last = nil // the failed flights are answered; the chain starts again
	l.mu.Lock()
	good := l.durableBytes
	// A failure rolls head back at once, but batches in flight before
	// the failed one could still become durable after it.
	l.head = l.durable
	l.mu.Unlock()
	if err := l.f.Truncate(good); err != nil {
		l.logger.Warn("audit log retry failed", zap.String("step", "truncate"), zap.Error(err))
		return
	}
	l.fileBytes = good
	l.mu.Lock()
	reason, refused := l.failure.Error(), l.refused
	members, _, err := l.fields.encode([]zap.Field{zap.String("reason", reason), zap.Int("refused_records", refused)})
	if err != nil {
		l.mu.Unlock()
		return
	}
	l.appendLocked(l.opts.Clock(), EventRecovered, members)
	buf, b := l.pending, l.batch
	l.pending, l.batch = nil, newBatch()
	l.mu.Unlock()
	if err := l.writeSync(buf); err != nil {
		l.mu.Lock()
		l.head = l.durable
		l.mu.Unlock()
		b.finish(err)
		l.logger.Warn("audit log retry failed", zap.String("step", "write"), zap.Error(err))
		return
	}
	l.fileBytes += int64(len(buf))
	l.mu.Lock()
	l.durable, l.durableBytes, l.lastCut = b.end, l.fileBytes, b
	l.failure, l.refused = nil, 0
	l.mu.Unlock()
	b.finish(nil)
	if l.mirror != nil {
		l.mirror.send(buf)
	}
	l.logger.Info("audit log writable again", zap.String("after", reason), zap.Int("refused_records", refused))
}
