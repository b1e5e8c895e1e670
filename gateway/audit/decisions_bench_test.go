package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchLog writes a log of n admission decisions (one refusal in ten,
// 500 rooms, 20,000 people) once per benchmark run.
func benchLog(b *testing.B, n int) []string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "audit.log")
	clock := newFakeClock("2026-03-02T09:00:00Z", 10*time.Millisecond)
	l := openTestLog(b, Options{Path: path, Sync: SyncAsync, Clock: clock.Now, MaxFileBytes: 256 << 20})
	ctx := context.Background()
	for i := range n {
		d, reasons := DecisionAllow, []string{"staff_domain"}
		if i%10 == 0 {
			d, reasons = DecisionDeny, []string{"guests_not_allowed"}
		}
		p := i % 20000
		if err := l.Record(ctx, EventAdmissionDecision, personDecision("room-"+strconv.Itoa(i%500), fmt.Sprintf("u-%05d", p), fmt.Sprintf("Person %05d", p),
			fmt.Sprintf("p%05d@example.com", p), d, reasons, "192.0.2."+strconv.Itoa(i%250))...); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	files, err := LogFiles(path)
	if err != nil {
		b.Fatal(err)
	}
	return files
}

// BenchmarkDecisionIndex is the security console's decisions page on a
// log of MEETGUARD_BENCH_DECISIONS decisions (default 100,000; the note's
// figure uses 1,000,000): the initial index build, then the first page of
// the unfiltered list and of one room's refusals.
func BenchmarkDecisionIndex(b *testing.B) {
	n := 100_000
	if s := os.Getenv("MEETGUARD_BENCH_DECISIONS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	files := benchLog(b, n)
	ctx := context.Background()
	var x *DecisionIndex
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x = NewDecisionIndex()
			if err := x.Update(ctx, files); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(x.Len()), "decisions")
	})
	b.Run("first_page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p := x.Query(DecisionQuery{}); len(p.Decisions) != 50 {
				b.Fatal(len(p.Decisions))
			}
		}
	})
	b.Run("room_refusals", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.Query(DecisionQuery{Room: "room-7", Outcome: DecisionDeny})
		}
	})
	b.Run("update_nothing_new", func(b *testing.B) {
		for b.Loop() {
			if err := x.Update(ctx, files); err != nil {
				b.Fatal(err)
			}
		}
	})
}
