package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// switchFile is the active file, but writes can be pointed at another
// real file (/dev/full) to make the kernel fail them, as a full disk would.
// Only the redirection is simulated; the errors come from real syscalls.
type switchFile struct {
	mu     sync.Mutex
	real   *os.File
	target *os.File
}

func (s *switchFile) to(f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = f
}

func (s *switchFile) cur() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.target != nil {
		return s.target
	}
	return s.real
}

func (s *switchFile) Write(p []byte) (int, error) { return s.cur().Write(p) }
func (s *switchFile) Sync() error                 { return s.cur().Sync() }
func (s *switchFile) Truncate(n int64) error      { return s.cur().Truncate(n) }
func (s *switchFile) Close() error                { return s.real.Close() }
func (s *switchFile) Stat() (os.FileInfo, error)  { return s.real.Stat() }

func TestRecord_DiskFullFailsClosedAndRecovers(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full on this system: %v", err)
	}
	defer full.Close()
	var sf *switchFile
	opts := Options{RetryInterval: 10 * time.Millisecond}
	opts.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || flag&os.O_CREATE == 0 {
			return f, err // a descriptor that only fsyncs
		}
		sf = &switchFile{real: f}
		return sf, nil
	}
	l := openTestLog(t, opts)
	ctx := context.Background()
	if err := l.Record(ctx, EventAdmissionDecision, zap.String(FieldSubject, "before")); err != nil {
		t.Fatal(err)
	}

	sf.to(full) // the disk fills up
	err = l.Record(ctx, EventAdmissionDecision, zap.String(FieldSubject, "during-1"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Record on a full disk: err = %v, want ErrUnavailable wrapping ENOSPC", err)
	}
	ready := l.Ready()
	if ready == nil || !strings.Contains(ready.Error(), "no space left on device") {
		t.Fatalf("Ready() = %v, want the reason", ready)
	}
	// Stays closed while the disk is full, retries included.
	time.Sleep(50 * time.Millisecond)
	if err := l.Record(ctx, EventAdmissionDecision, zap.String(FieldSubject, "during-2")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second Record on a full disk: err = %v", err)
	}

	sf.to(nil) // space freed
	deadline := time.Now().Add(5 * time.Second)
	for l.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("not ready after the disk has space again: %v", err)
	}
	if err := l.Record(ctx, EventAdmissionDecision, zap.String(FieldSubject, "after")); err != nil {
		t.Fatal(err)
	}
	l.Close()

	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("log after recovery: problem=%v torn=%v", res.Problem, res.Torn)
	}
	es := readAll(t, l.opts.Path)
	var subjects []string
	for _, e := range eventsOf(es, EventAdmissionDecision) {
		subjects = append(subjects, e.Str(FieldSubject))
	}
	if strings.Join(subjects, ",") != "before,after" {
		t.Fatalf("admissions in the log: %v; refused ones must not be there", subjects)
	}
	rec := eventsOf(es, EventRecovered)
	if len(rec) != 1 || !strings.Contains(rec[0].Str("reason"), "no space left") || rec[0].Str("refused_records") != "2" {
		t.Fatalf("audit.recovered records: %s", rec[0].Raw)
	}
}

func TestOpen_UnwritableLocationFails(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	os.Mkdir(filepath.Join(dir, "isdir"), 0o700)
	cases := []struct {
		name string
		path string
		want error
	}{
		// Tests run as root, so permission bits stop nothing: these are
		// locations the kernel refuses to anyone.
		{"parent is a regular file", filepath.Join(notDir, "audit.log"), syscall.ENOTDIR},
		{"path is a directory", filepath.Join(dir, "isdir"), nil},
		{"parent is under a file", filepath.Join(notDir, "sub", "audit.log"), syscall.ENOTDIR},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(context.Background(), Options{Path: tc.path, SigningKey: testKey()})
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecord_DirectoryGoneFailsClosed(t *testing.T) {
	// The directory is replaced by a regular file while the gateway runs
	// (an unmounted volume, a botched cleanup). Writes to the open file
	// still succeed, but the next rotation cannot create a file: the log
	// must stop acknowledging and say why.
	base := t.TempDir()
	dir := filepath.Join(base, "audit")
	l := openTestLog(t, Options{Path: filepath.Join(dir, "audit.log"), MaxFileBytes: 4 << 10, RetryInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if err := l.Record(ctx, EventRoomLock); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir, []byte("not a directory"), 0o600)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = l.Record(ctx, EventRoomLock, zap.Int("i", i))
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping ENOTDIR", err)
	}
	if r := l.Ready(); r == nil || !strings.Contains(r.Error(), "rotate") {
		t.Fatalf("Ready() = %v", r)
	}
	// Everything acknowledged is in the moved files, and verifies.
	files := logFiles(t, filepath.Join(dir+".gone", "audit.log"))
	if res := verifyFiles(t, files, VerifyOptions{}); res.Problem != nil {
		t.Fatal(res.Problem)
	}
}

// syncFaults replaces the verdict of the fsync of chosen batches, the
// ones whose bytes hold a marker (a room name), with a fault a real file
// cannot be made to show on demand: fsync reporting an I/O error after the
// write went through (a failing disk). The writes reach the real file and
// every other fsync is real. A rule can also hold the fsync at a gate, so
// that the test knows which batches are in flight together.
//
// Installed with install, it also checks on every fsync the design that
// makes a failing fsync reliable (see flight): never through the write
// descriptor, always on the file at the log's Path (the active file, also
// after rotation), never two at once on one descriptor, and the recovery's
// fsync on a descriptor that never fsynced before. Violations fail the
// test when it ends.
type syncFaults struct {
	mu       sync.Mutex
	rules    []*syncRule
	path     string
	writers  map[file]bool // descriptors opened to write (O_CREATE)
	seen     map[file]bool // descriptors fsynced so far
	busy     map[file]bool // descriptors fsyncing now
	inflight int           // fsyncs under way now
	overlap  int           // most fsyncs seen under way at once
	recovery int           // fsyncs of batches holding audit.recovered
	bad      []string
}

type syncRule struct {
	marker string
	gate   chan struct{} // when non-nil, a matching fsync waits for it to close
	fail   error         // when non-nil, returned instead of fsyncing
	held   chan struct{} // a value each time a matching fsync waits at the gate
	synced chan error    // a matching fsync's verdict, once it returned
}

// install makes opts fsync through s and tell s which descriptors are
// opened to write; the checks are reported when t ends (after the log's
// Close, when the log is opened after install).
func (s *syncFaults) install(t *testing.T, opts *Options) {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "audit.log")
	}
	s.path = opts.Path
	s.writers, s.seen, s.busy = map[file]bool{}, map[file]bool{}, map[file]bool{}
	open := opts.openFile
	if open == nil {
		open = func(name string, flag int, perm os.FileMode) (file, error) { return os.OpenFile(name, flag, perm) }
	}
	opts.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		f, err := open(name, flag, perm)
		if err == nil && flag&os.O_CREATE != 0 {
			s.mu.Lock()
			s.writers[f] = true
			s.mu.Unlock()
		}
		return f, err
	}
	opts.syncBatch = s.sync
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, b := range s.bad {
			t.Error(b)
		}
	})
}

// on adds a rule for batches holding room; gated rules hold the fsync
// until the returned rule's gate is closed.
func (s *syncFaults) on(room string, gated bool, fail error) *syncRule {
	r := &syncRule{marker: fmt.Sprintf("%q", room), fail: fail, held: make(chan struct{}, 100), synced: make(chan error, 100)}
	if gated {
		r.gate = make(chan struct{})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, r)
	return r
}

// release opens every gate still closed, so that a test that stopped
// early does not leave the log's Close waiting for a held fsync.
func (s *syncFaults) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.gate == nil {
			continue
		}
		select {
		case <-r.gate:
		default:
			close(r.gate)
		}
	}
}

// maxOverlap is the most fsyncs that were under way at once.
func (s *syncFaults) maxOverlap() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlap
}

// recoveries is how many recovery batches were fsynced.
func (s *syncFaults) recoveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovery
}

// checkDescriptor records what is wrong with fsyncing batch through f
// now, and marks f busy. l.mu is not held: the log may be anywhere.
func (s *syncFaults) checkDescriptor(f file, batch []byte) {
	if s.writers == nil {
		return // not installed
	}
	bad := func(format string, args ...any) { s.bad = append(s.bad, fmt.Sprintf(format, args...)) }
	if s.writers[f] {
		bad("a batch was fsynced through the write descriptor: two fsyncs in flight could share its write-back error")
	}
	if s.busy[f] {
		bad("two fsyncs under way at once on one descriptor")
	}
	if bytes.Contains(batch, []byte(fmt.Sprintf("%q", EventRecovered))) {
		s.recovery++
		if s.seen[f] {
			bad("the recovery's fsync used a descriptor that fsynced before the failure")
		}
	}
	s.seen[f], s.busy[f] = true, true
	s.inflight++
	s.overlap = max(s.overlap, s.inflight)
	st, ok := f.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		bad("fsync descriptor %T cannot be checked: no Stat", f)
		return
	}
	got, err := st.Stat()
	if err != nil {
		bad("stat of the fsync descriptor: %v", err)
		return
	}
	want, err := os.Stat(s.path)
	if err != nil || !os.SameFile(got, want) {
		bad("a batch was fsynced on a file other than the one at %s (err=%v): its records were never made durable", s.path, err)
	}
}

func (s *syncFaults) sync(f file, batch []byte) error {
	s.mu.Lock()
	s.checkDescriptor(f, batch)
	var r *syncRule
	for _, x := range s.rules {
		if bytes.Contains(batch, []byte(x.marker)) {
			r = x
			break
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.writers != nil {
			delete(s.busy, f)
			s.inflight--
		}
		s.mu.Unlock()
	}()
	if r == nil {
		return f.Sync()
	}
	if r.gate != nil {
		r.held <- struct{}{}
		<-r.gate
	}
	err := r.fail
	if err == nil {
		err = f.Sync()
	}
	r.synced <- err
	return err
}

// TestRecord_FailedFsyncFailsTheWholeGroup: a batch shared by many
// writers whose fsync fails must fail every one of them, and every writer
// queued behind it; none of their records may stay in the log (the chain
// rolls back to the last durable record), and the log verifies after it
// recovers.
//
// With batches in flight together (pipelined group commit), the group may
// be split over several batches: every batch holding a group record fails.
func TestRecord_FailedFsyncFailsTheWholeGroup(t *testing.T) {
	var faults syncFaults
	opts := Options{RetryInterval: 10 * time.Millisecond, CheckpointEvery: 1000}
	faults.install(t, &opts)
	l := openTestLog(t, opts)
	t.Cleanup(faults.release) // before the log's Close
	ctx := context.Background()
	rec := func(id string) error {
		return l.Record(ctx, EventRoomLock, zap.String(FieldRoom, id), zap.String(FieldActor, "a"), zap.String(FieldActorIssuer, "i"))
	}
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}

	// Hold the fsync of one good record, so that the group queues behind it.
	held := faults.on("held", true, nil)
	// The group's fsyncs fail, after holding them until more writers queue.
	failing := faults.on("group-", true, syscall.EIO)
	failing.marker = `"group-` // any group member
	errFirst := make(chan error, 1)
	go func() { errFirst <- rec("held") }()
	<-held.held
	const group, behind = 40, 25
	waitDepth := func(want int) {
		t.Helper()
		for l.QueueDepth() < want {
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, group+behind)
	for i := range group {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- rec(fmt.Sprintf("group-%d", i)) }()
	}
	waitDepth(1 + group)
	close(held.gate)
	if err := <-errFirst; err != nil {
		t.Fatalf("the held record: %v", err)
	}
	<-failing.held
	for i := range behind {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- rec(fmt.Sprintf("behind-%d", i)) }()
	}
	waitDepth(group + behind)
	close(failing.gate)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
			t.Errorf("writer %d: err = %v, want ErrUnavailable wrapping EIO", n, err)
		}
	}
	if n != group+behind {
		t.Fatalf("%d writers answered, want %d", n, group+behind)
	}

	// None of the failed group's records may be in the log.
	recoveredLog(t, l, rec, "before,held,after", group+behind)
}

// TestRecover_PathReplacedFailsClosed: while the log is failed, the file
// at its Path is replaced (the volume lazily unmounted and remounted, a
// cleanup moving the file aside). Recovery reopens its fsync descriptors by
// path; they would name the new file while writes still go to the old
// one, so every later fsync would make nothing durable. The log must stay
// failed instead of acknowledging records again.
func TestRecover_PathReplacedFailsClosed(t *testing.T) {
	var faults syncFaults
	core, logs := observer.New(zap.WarnLevel)
	l, rec := pipelineLog(t, &faults, Options{Logger: zap.New(core)})
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}
	doomed := faults.on("doomed", true, syscall.EIO)
	errDoomed := async(func() error { return rec("doomed") })
	<-doomed.held
	// Replace the file while the log is about to fail.
	if err := os.Rename(l.opts.Path, l.opts.Path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.opts.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	close(doomed.gate)
	if err := <-errDoomed; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("doomed: %v", err)
	}
	// Wait for three recovery attempts to give up at reopening, or for a
	// wrong implementation to recover.
	for logs.FilterMessage("audit log retry failed").FilterField(zap.String("step", "open")).Len() < 3 {
		if l.Ready() == nil {
			t.Fatal("the log recovered with its fsync descriptors on another file than the one it writes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := rec("after"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a record after the path was replaced: err = %v, want ErrUnavailable", err)
	}
	attempt := logs.FilterMessage("audit log retry failed").FilterField(zap.String("step", "open")).All()[0]
	if e, _ := attempt.ContextMap()["error"].(string); !strings.Contains(e, "no longer the file being written") {
		t.Fatalf("retry error: %v", attempt.ContextMap())
	}
}

// TestOpen_FsyncDescriptorOnAnotherFileFails: if the descriptors opened by
// path for fsync are not the file Open writes (the path swapped between
// the two opens), Open fails rather than acknowledge records it never
// fsyncs.
func TestOpen_FsyncDescriptorOnAnotherFileFails(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.log")
	opts := Options{Path: filepath.Join(dir, "audit.log"), SigningKey: testKey()}
	opts.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		if flag&os.O_CREATE == 0 {
			// The path now names another file.
			return os.OpenFile(other, flag|os.O_CREATE, 0o600)
		}
		return os.OpenFile(name, flag, perm)
	}
	l, err := Open(context.Background(), opts)
	if err == nil {
		l.Close()
		t.Fatal("Open succeeded with its fsync descriptors on another file")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}
