package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

func newTestMonitor(t testing.TB, o ChainMonitorOptions) *ChainMonitor {
	t.Helper()
	o.Keys = []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}
	m, err := NewChainMonitor(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func monitorUpdate(t testing.TB, m *ChainMonitor, files []string) ChainStatus {
	t.Helper()
	rep, err := m.Update(context.Background(), func() ([]string, error) { return files, nil })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if len(rep.Chains) != 1 {
		t.Fatalf("%d chains, want 1", len(rep.Chains))
	}
	return rep.Chains[0]
}

// TestChainMonitor_VerifiesOnlyWhatIsNewAcrossRotation: each Update reads
// only the bytes appended since the last one, follows the active file
// through rotation (renamed, a new one started), and ends where a full
// Verify of the same files ends.
func TestChainMonitor_VerifiesOnlyWhatIsNewAcrossRotation(t *testing.T) {
	opts := Options{Path: filepath.Join(t.TempDir(), "audit.log"), MaxFileBytes: 6 << 10, CheckpointEvery: 25}
	m := newTestMonitor(t, ChainMonitorOptions{RecheckChunk: 1 << 10, RecheckBudget: 2 << 10})
	// Each round is one gateway run, so that no rotation is under way
	// while the monitor reads.
	write := func(from, to int) {
		l := openTestLog(t, opts)
		for i := from; i < to; i++ {
			if err := l.Record(context.Background(), EventRoomLock, zapInt("i", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	size := func(files []string) int64 {
		var n int64
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
		return n
	}
	write(0, 100)
	files := logFiles(t, opts.Path)
	st := monitorUpdate(t, m, files)
	if m.Progress().Total != size(files) {
		t.Errorf("first pass read %d bytes, want the whole log %d", m.Progress().Total, size(files))
	}
	before := size(files)
	for round := range 4 {
		write(100+round*150, 100+(round+1)*150)
		files = logFiles(t, opts.Path)
		st = monitorUpdate(t, m, files)
		if got, want := m.Progress().Total, size(files)-before; got != want {
			t.Errorf("round %d: verified %d bytes, want only the %d appended", round, got, want)
		}
		before = size(files)
		full := verifyFiles(t, files, VerifyOptions{})
		if st.State != ChainVerified || st.Records != full.Records || st.LastSeq != full.LastSeq || st.LastCheckpoint.Seq != full.LastCheckpoint.Seq {
			t.Fatalf("round %d: monitor %+v (problem %v), full verify records %d last seq %d", round, st, st.Problem, full.Records, full.LastSeq)
		}
	}
	if len(files) < 4 {
		t.Fatalf("only %d files: the log did not rotate", len(files))
	}
}

// TestChainMonitor_FindsARewriteOfVerifiedBytes: a record in the middle of
// an already verified file is rewritten in place (same length); the next
// Update reports the chain tampered at that record's line, not verified.
func TestChainMonitor_FindsARewriteOfVerifiedBytes(t *testing.T) {
	path := writeRotatedLog(t, 400)
	files := logFiles(t, path)
	m := newTestMonitor(t, ChainMonitorOptions{RecheckChunk: 512, RecheckBudget: 1 << 20})
	if st := monitorUpdate(t, m, files); st.State != ChainVerified {
		t.Fatalf("pristine log: %s %v", st.State, st.Problem)
	}
	victim := files[1]
	lines := readLines(t, victim)
	mid := len(lines) / 2
	i := bytes.Index(lines[mid], []byte(`"i":`))
	if i < 0 {
		t.Fatalf("line %d has no i: %s", mid+1, lines[mid])
	}
	d := lines[mid][i+4]
	lines[mid][i+4] = "1234567890"[(d-'0')%10] // another digit: same length
	writeLines(t, victim, lines)

	st := monitorUpdate(t, m, files)
	if st.State != ChainTampered || st.Problem == nil || st.Problem.File != victim || st.Problem.Line != mid+1 || st.Problem.Kind != ProblemModified {
		t.Fatalf("after rewriting %s line %d: %s %v", victim, mid+1, st.State, st.Problem)
	}
	// It stays tampered.
	if st := monitorUpdate(t, m, files); st.State != ChainTampered {
		t.Errorf("second update after the rewrite: %s", st.State)
	}
}

// TestChainMonitor_TornTailIsTornNotTampered: an incomplete last record (a
// crash mid-write) is shown as torn, every record before it verified; once
// the writer completes the log again it verifies on.
func TestChainMonitor_TornTailIsTornNotTampered(t *testing.T) {
	l := openTestLog(t, Options{CheckpointEvery: 25})
	for i := range 60 {
		if err := l.Record(context.Background(), EventRoomLock, zapInt("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	path := l.opts.Path
	m := newTestMonitor(t, ChainMonitorOptions{})
	st := monitorUpdate(t, m, []string{path})
	if st.State != ChainVerified {
		t.Fatalf("before the tear: %s %v", st.State, st.Problem)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":999,"ts":"2026-03-02T09:00:00Z","event":"room.lo`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for range 2 {
		st = monitorUpdate(t, m, []string{path})
		if st.State != ChainTorn || st.Torn == nil || st.Problem != nil || st.LastSeq != st.Torn.AfterSeq {
			t.Fatalf("torn tail: %s torn=%+v problem=%v", st.State, st.Torn, st.Problem)
		}
	}
}
