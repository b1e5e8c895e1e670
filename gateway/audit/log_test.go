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
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/syncbuf"
)

func TestRecord_ChainVerifiesAndIsSealedOnClose(t *testing.T) {
	l := openTestLog(t, Options{CheckpointEvery: 25})
	ctx := context.Background()
	for i := range 250 {
		if err := l.Record(ctx, EventAdmissionDecision, zap.String(FieldRoom, "r"), zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{RequireSealed: true})
	if !res.Intact() || !res.Sealed {
		t.Fatalf("want intact sealed log, got problem=%v torn=%v sealed=%v", res.Problem, res.Torn, res.Sealed)
	}
	// genesis checkpoint + audit.opened + 250 records + 10 count checkpoints + close
	if res.Records != 1+1+250+10+1 {
		t.Errorf("records = %d", res.Records)
	}
	es := readAll(t, l.opts.Path)
	if got := len(eventsOf(es, EventAdmissionDecision)); got != 250 {
		t.Errorf("admission records = %d", got)
	}
	if es[0].Event != EventCheckpoint || es[0].Str("reason") != reasonGenesis {
		t.Errorf("first record is %s %s, want genesis checkpoint", es[0].Event, es[0].Str("reason"))
	}
}

func TestRecord_ConcurrentWritersAllDurableAndChained(t *testing.T) {
	l := openTestLog(t, Options{CheckpointEvery: 50})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if err := l.Record(ctx, EventLobbyKnock, zap.String("id", fmt.Sprintf("%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{})
	if !res.Intact() {
		t.Fatalf("problem: %v", res.Problem)
	}
	seen := map[string]bool{}
	for _, e := range eventsOf(readAll(t, l.opts.Path), EventLobbyKnock) {
		seen[e.Str("id")] = true
	}
	if len(seen) != 16*200 {
		t.Fatalf("%d distinct records, want %d", len(seen), 16*200)
	}
}

// TestRecord_ManyWritersShareBatchesAcrossRotations: 128 writers, so that
// batches are shared and the committer gathers, with checkpoints every 50
// records and rotation every 32 KiB. Every acknowledged record must be in
// the log exactly once, and the files must verify as one chain. Run it
// with -race: it is the writer path's concurrency test.
func TestRecord_ManyWritersShareBatchesAcrossRotations(t *testing.T) {
	l := openTestLog(t, Options{CheckpointEvery: 50, MaxFileBytes: 32 << 10, StrictSchema: true})
	ctx := context.Background()
	const writers, each = 128, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Record(ctx, EventRoomLock, zap.String(FieldRoom, fmt.Sprintf("%d-%d", w, i)),
					zap.String(FieldActor, "a"), zap.String(FieldActorIssuer, "i")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	shared := l.stats.records.Load() > l.stats.batches.Load()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, l.opts.Path)
	if len(files) < 3 {
		t.Fatalf("%d files: the test should rotate several times", len(files))
	}
	res := verifyFiles(t, files, VerifyOptions{RequireSealed: true})
	if !res.Intact() {
		t.Fatalf("problem: %v", res.Problem)
	}
	count := map[string]int{}
	for _, e := range eventsOf(readAll(t, files...), EventRoomLock) {
		count[e.Str(FieldRoom)]++
	}
	for w := range writers {
		for i := range each {
			if id := fmt.Sprintf("%d-%d", w, i); count[id] != 1 {
				t.Fatalf("record %s is in the log %d times", id, count[id])
			}
		}
	}
	if !shared {
		t.Log("no batch was shared by two writers: the gathering path did not run")
	}
}

func TestOpen_ContinuesChainAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for run := range 3 {
		l := openTestLog(t, Options{Path: path, CheckpointEvery: 7})
		for i := range 10 {
			if err := l.Record(context.Background(), EventLogout, zap.Int("run", run), zap.Int("i", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	res := verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true})
	if !res.Intact() {
		t.Fatalf("problem: %v", res.Problem)
	}
	opened := eventsOf(readAll(t, path), EventOpened)
	if len(opened) != 3 {
		t.Fatalf("%d audit.opened records, want 3", len(opened))
	}
	for _, e := range opened[1:] {
		if e.Str("clean_shutdown") != "true" {
			t.Errorf("reopen after Close not marked clean: %s", e.Raw)
		}
	}
}

func TestOpen_CutsTornTailAndRecordsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path})
	if err := l.Record(context.Background(), EventLogout, zap.String(FieldSubject, "a")); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: no close checkpoint, and half a record at the end.
	simulateCrash(t, l)
	torn := []byte(`{"seq":99,"ts":"2026-01-01T00:00:00.00`)
	appendFile(t, path, torn)

	res := verifyFiles(t, []string{path}, VerifyOptions{})
	if res.Problem != nil || res.Torn == nil || res.Torn.Bytes != len(torn) {
		t.Fatalf("want torn tail of %d bytes, got problem=%v torn=%+v", len(torn), res.Problem, res.Torn)
	}
	l2 := openTestLog(t, Options{Path: path})
	l2.Close()
	res = verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true})
	if !res.Intact() {
		t.Fatalf("after reopen: problem=%v torn=%v", res.Problem, res.Torn)
	}
	opened := eventsOf(readAll(t, path), EventOpened)
	last := opened[len(opened)-1]
	if last.Str("torn_bytes") != fmt.Sprint(len(torn)) || last.Str("clean_shutdown") != "false" {
		t.Fatalf("audit.opened does not report the torn tail: %s", last.Raw)
	}
}

// simulateCrash stops l the way a crash would: what is durable stays, and
// no closing checkpoint is written.
func simulateCrash(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.failure = errors.New("simulated crash")
	l.mu.Unlock()
	l.Close()
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesToExtendARewrittenTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path})
	for _, s := range []string{"alice", "bob"} {
		if err := l.Record(context.Background(), EventLoginSuccess, zap.String(FieldSubject, s)); err != nil {
			t.Fatal(err)
		}
	}
	simulateCrash(t, l) // leaves bob's record unsigned
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte(`"bob"`), []byte(`"eve"`), 1)
	os.WriteFile(path, b, 0o600)
	_, err := Open(context.Background(), Options{Path: path, SigningKey: testKey()})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a rewritten log: err = %v, want ErrCorrupt", err)
	}
}

func TestOpen_SecondWriterIsRefused(t *testing.T) {
	l := openTestLog(t, Options{})
	_, err := Open(context.Background(), Options{Path: l.opts.Path, SigningKey: testKey()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
}

func TestRotation_KeepsTheChainAcrossFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path, MaxFileBytes: 8 << 10, CheckpointEvery: 40})
	for i := range 600 {
		if err := l.Record(context.Background(), EventRoomLock, zap.String(FieldRoom, "r"), zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, path)
	if len(files) < 5 {
		t.Fatalf("only %d files after rotation", len(files))
	}
	reversed := make([]string, len(files))
	for i, f := range files {
		reversed[len(files)-1-i] = f
	}
	res := verifyFiles(t, reversed, VerifyOptions{RequireSealed: true})
	if !res.Intact() || res.FirstSeq != 1 {
		t.Fatalf("rotated log: problem=%v torn=%v first=%d", res.Problem, res.Torn, res.FirstSeq)
	}
	if got := len(eventsOf(readAll(t, files...), EventRoomLock)); got != 600 {
		t.Fatalf("%d records across files, want 600", got)
	}

	// A missing middle file is a gap in the chain.
	withoutMiddle := append(append([]string{}, files[:2]...), files[3:]...)
	res = verifyFiles(t, withoutMiddle, VerifyOptions{})
	if res.Problem == nil || res.Problem.Kind != ProblemDeleted {
		t.Fatalf("missing middle file: problem = %v, want deleted", res.Problem)
	}
	// Older files removed by retention: the rest still verifies.
	res = verifyFiles(t, files[2:], VerifyOptions{})
	if !res.Intact() || !res.StartsMidChain {
		t.Fatalf("tail of rotated files: problem=%v mid=%v", res.Problem, res.StartsMidChain)
	}
	// Reopen continues after the newest file.
	l2 := openTestLog(t, Options{Path: path, MaxFileBytes: 8 << 10})
	l2.Close()
	if res := verifyFiles(t, logFiles(t, path), VerifyOptions{}); !res.Intact() {
		t.Fatalf("after reopen: %v", res.Problem)
	}
}

func TestRotation_ByAge(t *testing.T) {
	clock := newFakeClock("2026-03-01T10:00:00Z", time.Minute)
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path, MaxFileAge: time.Hour, Clock: clock.Now})
	for i := range 130 {
		if err := l.Record(context.Background(), EventRoomLock, zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files := logFiles(t, path)
	if len(files) < 2 {
		t.Fatalf("no rotation after 130 simulated minutes with MaxFileAge 1h: %v", files)
	}
	if res := verifyFiles(t, files, VerifyOptions{}); !res.Intact() {
		t.Fatal(res.Problem)
	}
}

func TestCheckpoint_WrittenAfterInterval(t *testing.T) {
	l := openTestLog(t, Options{CheckpointInterval: 20 * time.Millisecond})
	if err := l.Record(context.Background(), EventRoomLock); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range eventsOf(readAll(t, l.opts.Path), EventCheckpoint) {
			if e.Str("reason") == reasonInterval {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no interval checkpoint within 5s")
}

func TestRecord_RejectsForgedOrReservedNames(t *testing.T) {
	l := openTestLog(t, Options{})
	cases := []struct {
		name   string
		event  string
		fields []zap.Field
		want   error
	}{
		{"checkpoint forged by a caller", EventCheckpoint, nil, ErrInvalidEvent},
		{"any audit. event", "audit.recovered", nil, ErrInvalidEvent},
		{"empty event", "", nil, ErrInvalidEvent},
		{"event with quote", `room.lock","x":"`, nil, ErrInvalidEvent},
		{"upper case", "Room.Lock", nil, ErrInvalidEvent},
		{"seq member", EventRoomLock, []zap.Field{zap.Int("seq", 1)}, ErrReservedKey},
		{"hash member", EventRoomLock, []zap.Field{zap.String("hash", "00")}, ErrReservedKey},
		{"prev member any case", EventRoomLock, []zap.Field{zap.String("PREV", "00")}, ErrReservedKey},
		{"sig member inline", EventRoomLock, []zap.Field{zap.Inline(inlineObj{"sig": "x"})}, ErrReservedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Record(context.Background(), tc.event, tc.fields...); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecord_AfterCloseFails(t *testing.T) {
	l := openTestLog(t, Options{})
	l.Close()
	if err := l.Record(context.Background(), EventRoomLock); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if err := l.Ready(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready = %v, want ErrClosed", err)
	}
}

func TestLogger_EntriesGoThroughTheChain(t *testing.T) {
	l := openTestLog(t, Options{})
	lg := l.Logger().With(zap.String(FieldRoom, "standup"))
	lg.Info(EventRoomLock, zap.String(FieldActor, "alice"))
	lg.Warn(EventRoomUnlock, zap.String(FieldActor, "alice"), zap.String("cookie", "s3cr3t"))
	if err := lg.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	es := readAll(t, l.opts.Path)
	lock, unlock := eventsOf(es, EventRoomLock), eventsOf(es, EventRoomUnlock)
	if len(lock) != 1 || len(unlock) != 1 || lock[0].Str(FieldRoom) != "standup" || unlock[0].Str("cookie") != Redacted {
		t.Fatalf("logger records: %v / %v", lock, unlock)
	}
	if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{}); !res.Intact() {
		t.Fatal(res.Problem)
	}
}

func TestMirror_ReceivesEveryDurableRecord(t *testing.T) {
	var buf syncbuf.Buffer
	l := openTestLog(t, Options{Mirror: &buf})
	for i := range 20 {
		if err := l.Record(context.Background(), EventRoomLock, zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	file, _ := os.ReadFile(l.opts.Path)
	if mirror := buf.Bytes(); !bytes.Equal(mirror, file) {
		t.Fatalf("mirror (%d bytes) differs from the file (%d bytes)", len(mirror), len(file))
	}
}

func TestOpen_WritesPublicKeyBeside(t *testing.T) {
	l := openTestLog(t, Options{})
	keys, err := LoadPublicKeys(l.opts.Path + ".pub")
	if err != nil || len(keys) != 1 || !keys[0].Equal(l.PublicKey()) {
		t.Fatalf("keys=%v err=%v", keys, err)
	}
	if !strings.Contains(string(l.keyID), KeyID(keys[0])) {
		t.Fatal("key id mismatch")
	}
}
