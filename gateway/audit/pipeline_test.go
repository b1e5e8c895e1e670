package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"weak"

	"go.uber.org/zap"
)

// Tests of the pipelined group commit: batches written and fsyncing while
// an earlier batch's fsync runs. Each holds the fsync of a chosen batch at a
// gate (syncFaults), so that the batches behind it are really in flight
// together; the other fsyncs are real.

func pipelineLog(t *testing.T, faults *syncFaults, opts Options) (*Log, func(room string, extra ...zap.Field) error) {
	t.Helper()
	opts.RetryInterval = 10 * time.Millisecond
	faults.install(t, &opts)
	if opts.syncsInFlight == 0 {
		opts.syncsInFlight = 2
	}
	l := openTestLog(t, opts)
	t.Cleanup(faults.release) // before the log's Close
	rec := func(room string, extra ...zap.Field) error {
		fields := append([]zap.Field{zap.String(FieldRoom, room), zap.String(FieldActor, "a"), zap.String(FieldActorIssuer, "i")}, extra...)
		return l.Record(context.Background(), EventRoomLock, fields...)
	}
	return l, rec
}

func roomsIn(t *testing.T, files ...string) string {
	t.Helper()
	var rooms []string
	for _, e := range eventsOf(readAll(t, files...), EventRoomLock) {
		rooms = append(rooms, e.Str(FieldRoom))
	}
	return strings.Join(rooms, ",")
}

// recoveredLog waits until l has recovered from the fault a test injected,
// records "after" through rec, closes l and checks what every failure test
// promises: the log verifies sealed, holds exactly the rooms want (in
// order), and one audit.recovered record counts refused records.
func recoveredLog(t *testing.T, l *Log, rec func(string) error, want string, refused int) {
	t.Helper()
	for l.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := rec("after"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("log after recovery: problem=%v torn=%v", res.Problem, res.Torn)
	}
	if got := roomsIn(t, l.opts.Path); got != want {
		t.Fatalf("records in the log: %v, want %v: no failed record may be there, every acknowledged one must", got, want)
	}
	if r := eventsOf(readAll(t, l.opts.Path), EventRecovered); len(r) != 1 || r[0].Str(FieldRefusedRecords) != strconv.Itoa(refused) {
		t.Fatalf("audit.recovered: %v, want one with %d refused records", r, refused)
	}
}

func async(f func() error) chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// TestRecord_FailedFsyncFailsLaterBatchesInFlight: batch N's fsync fails
// while batch N+1 is written and its own fsync has already succeeded. N+1's
// caller must not be told "durable": its record extends a chain whose
// earlier record is lost. Both fail, and the log verifies after recovery
// without either record.
func TestRecord_FailedFsyncFailsLaterBatchesInFlight(t *testing.T) {
	var faults syncFaults
	l, rec := pipelineLog(t, &faults, Options{})
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}
	doomed := faults.on("doomed", true, syscall.EIO)
	next := faults.on("next", false, nil)
	errDoomed := async(func() error { return rec("doomed") })
	<-doomed.held
	errNext := async(func() error { return rec("next") })
	if err := <-next.synced; err != nil {
		t.Fatalf("the next batch's own fsync: %v", err)
	}
	// N+1 is written and fsynced while N's fsync is still under way.
	close(doomed.gate)
	for name, ch := range map[string]chan error{"doomed": errDoomed, "next": errNext} {
		if err := <-ch; !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: err = %v, want ErrUnavailable wrapping EIO", name, err)
		}
	}
	// Neither failed batch's record may be in the log.
	recoveredLog(t, l, func(r string) error { return rec(r) }, "before,after", 2)
	// The descriptor checks (syncFaults.install) saw the recovery's fsync.
	if n := faults.recoveries(); n != 1 {
		t.Fatalf("%d recovery fsyncs seen, want 1", n)
	}
}

// TestRecord_AcksInChainOrder: batch N+1's fsync finishes first while N's
// is still under way. N+1's caller must wait for N: until then its record
// is not durable as part of the chain (a crash now would keep it and lose
// N, and recovery would cut it).
func TestRecord_AcksInChainOrder(t *testing.T) {
	var faults syncFaults
	l, rec := pipelineLog(t, &faults, Options{})
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}
	first := faults.on("first", true, nil)
	second := faults.on("second", false, nil)
	errFirst := async(func() error { return rec("first") })
	<-first.held
	errSecond := async(func() error { return rec("second") })
	if err := <-second.synced; err != nil {
		t.Fatalf("the second batch's fsync: %v", err)
	}
	// The second batch's fsync is done; give a wrong implementation time
	// to answer its caller (this wait only makes the test more sensitive:
	// a right one never answers before the first fsync is released).
	select {
	case err := <-errSecond:
		t.Fatalf("the second record was answered (err=%v) while the first batch's fsync was still under way", err)
	case <-time.After(200 * time.Millisecond):
	}
	if d := l.QueueDepth(); d != 2 {
		t.Fatalf("QueueDepth = %d while the first batch's fsync runs, want 2 (neither record durable)", d)
	}
	// Both fsyncs were under way at once: the descriptor checks
	// (syncFaults.install) saw them on two different descriptors.
	if n := faults.maxOverlap(); n < 2 {
		t.Fatalf("at most %d fsyncs were under way at once, want 2", n)
	}
	close(first.gate)
	if err := <-errFirst; err != nil {
		t.Fatal(err)
	}
	if err := <-errSecond; err != nil {
		t.Fatal(err)
	}
	if d := l.QueueDepth(); d != 0 {
		t.Fatalf("QueueDepth = %d after both answered", d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("problem=%v torn=%v", res.Problem, res.Torn)
	}
	if got := roomsIn(t, l.opts.Path); got != "before,first,second" {
		t.Fatalf("records in the log: %v", got)
	}
}

// TestClose_WaitsForBatchesInFlight: Close while two batches are in flight
// (one fsync held, one done) loses neither: both callers are told durable,
// Close's checkpoint follows them, and the log verifies sealed. Three may
// be in flight, so that Close's own batch is written at once too.
func TestClose_WaitsForBatchesInFlight(t *testing.T) {
	var faults syncFaults
	l, rec := pipelineLog(t, &faults, Options{syncsInFlight: 3})
	first := faults.on("first", true, nil)
	second := faults.on("second", false, nil)
	errFirst := async(func() error { return rec("first") })
	<-first.held
	errSecond := async(func() error { return rec("second") })
	<-second.synced
	errClose := async(l.Close)
	// As in TestRecord_AcksInChainOrder, the wait only gives a wrong
	// implementation time to show itself.
	select {
	case err := <-errClose:
		t.Fatalf("Close returned (err=%v) while a batch's fsync was still under way", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(first.gate)
	for name, ch := range map[string]chan error{"first": errFirst, "second": errSecond, "Close": errClose} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("problem=%v torn=%v", res.Problem, res.Torn)
	}
	if got := roomsIn(t, l.opts.Path); got != "first,second" {
		t.Fatalf("records in the log: %v", got)
	}
}

// TestRotation_WaitsForBatchesInFlight: the batch that seals the file for
// rotation is written while an earlier batch's fsync is still under way.
// The file may only be renamed and the next one started once both are
// durable; every record is in exactly one file, in order, and all files
// verify sealed.
func TestRotation_WaitsForBatchesInFlight(t *testing.T) {
	var faults syncFaults
	l, rec := pipelineLog(t, &faults, Options{MaxFileBytes: 4 << 10})
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}
	first := faults.on("first", true, nil)
	big := faults.on("big", false, nil)
	errFirst := async(func() error { return rec("first") })
	<-first.held
	// Its size takes the file past MaxFileBytes: its batch carries the
	// rotation checkpoint.
	errBig := async(func() error { return rec("big", zap.String("note", strings.Repeat("x", 4<<10))) })
	<-big.synced
	// The file must not be renamed while the first fsync is under way
	// (polling only gives a wrong implementation time to show itself).
	for range 40 {
		if rotated, _ := rotatedFiles(l.opts.Path); len(rotated) > 0 {
			t.Fatalf("rotated to %v while a batch's fsync was still under way", rotated)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(first.gate)
	for name, ch := range map[string]chan error{"first": errFirst, "big": errBig} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := rec("after"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, l.opts.Path)
	if len(files) != 2 {
		t.Fatalf("files: %v, want the rotated one and the active one", files)
	}
	if res := verifyFiles(t, files, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("problem=%v torn=%v", res.Problem, res.Torn)
	}
	if got := roomsIn(t, files[0]); got != "before,first,big" {
		t.Fatalf("records in the rotated file: %v", got)
	}
	if got := roomsIn(t, files[1]); got != "after" {
		t.Fatalf("records in the active file: %v", got)
	}
}

// TestRecord_ManyWritersFailMidPipeline: 64 writers keep several batches in
// flight when one fsync fails. Every record acknowledged is in the log
// after recovery, no refused one is, and the log verifies: whatever the
// interleaving, "durable" is never said of a record after a failed one.
func TestRecord_ManyWritersFailMidPipeline(t *testing.T) {
	var faults syncFaults
	l, _ := pipelineLog(t, &faults, Options{syncsInFlight: 3, CheckpointEvery: 50})
	faults.on("w7-i5", false, syscall.EIO).marker = `"w7-i5"` // writer 7's sixth record
	type result struct {
		room string
		err  error
	}
	const writers, each = 64, 20
	results := make(chan result, writers*each)
	for w := range writers {
		go func() {
			for i := range each {
				room := fmt.Sprintf("w%d-i%d", w, i)
				results <- result{room, l.Record(context.Background(), EventRoomLock,
					zap.String(FieldRoom, room), zap.String(FieldActor, "a"), zap.String(FieldActorIssuer, "i"))}
			}
		}()
	}
	acked := map[string]bool{}
	failed := 0
	for range writers * each {
		r := <-results
		switch {
		case r.err == nil:
			acked[r.room] = true
		case errors.Is(r.err, ErrUnavailable):
			failed++
		default:
			t.Fatalf("%s: %v", r.room, r.err)
		}
	}
	if failed == 0 {
		t.Fatal("no record failed: the fault was not injected")
	}
	for l.Ready() != nil { // Close reports a failure not yet recovered
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("problem=%v torn=%v", res.Problem, res.Torn)
	}
	inLog := map[string]bool{}
	for _, room := range strings.Split(roomsIn(t, l.opts.Path), ",") {
		if room == "" {
			continue
		}
		if inLog[room] {
			t.Fatalf("%s written twice", room)
		}
		inLog[room] = true
	}
	for room := range acked {
		if !inLog[room] {
			t.Errorf("%s was acknowledged but is not in the log", room)
		}
	}
	for room := range inLog {
		if !acked[room] {
			t.Errorf("%s is in the log but its caller was told it failed", room)
		}
	}
	if inLog["w7-i5"] {
		t.Error("the record whose fsync failed is in the log")
	}
	t.Logf("%d acknowledged, %d refused", len(acked), failed)
}

// TestRecord_AnsweredFlightsAreCollected: a long-running log must not keep
// every batch since Open reachable. Each flight links to the one before
// until it is answered; after that, an early flight (its batch, channels
// and buffer) must be garbage once newer ones are answered.
func TestRecord_AnsweredFlightsAreCollected(t *testing.T) {
	var faults syncFaults
	l, rec := pipelineLog(t, &faults, Options{})
	if err := rec("first"); err != nil {
		t.Fatal(err)
	}
	// Record returned after its flight was cut: l.last is that flight.
	first := weak.Make(l.last)
	for i := range 300 {
		if err := rec(fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
	if first.Value() != nil {
		t.Fatal("the first flight is still reachable after 300 more were answered: answered flights leak")
	}
}

// TestRecord_WriteFailsBehindFlight: batch N+1's write fails (disk full)
// while batch N's fsync is still under way. N+1's caller fails at once,
// and the chain rolls back to the last durable record — but N then
// becomes durable. Recovery must continue the chain from N (not from
// where it stood when N+1 failed) and cut the file after N: the log must
// hold before, first, after and verify sealed.
func TestRecord_WriteFailsBehindFlight(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full on this system: %v", err)
	}
	defer full.Close()
	var sw *switchFile
	var faults syncFaults
	var opts Options
	opts.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || flag&os.O_CREATE == 0 {
			return f, err // a descriptor that only fsyncs
		}
		sw = &switchFile{real: f}
		return sw, nil
	}
	l, rec := pipelineLog(t, &faults, opts)
	if err := rec("before"); err != nil {
		t.Fatal(err)
	}
	first := faults.on("first", true, nil)
	errFirst := async(func() error { return rec("first") })
	<-first.held
	sw.to(full) // the disk fills up while the first batch's fsync runs
	if err := rec("second"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second: err = %v, want ErrUnavailable wrapping ENOSPC", err)
	}
	sw.to(nil)
	close(first.gate)
	// Written before the failure and fsynced: durable.
	if err := <-errFirst; err != nil {
		t.Fatalf("first: %v", err)
	}
	recoveredLog(t, l, func(r string) error { return rec(r) }, "before,first,after", 1)
}
