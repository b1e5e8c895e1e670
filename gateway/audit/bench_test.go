package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// benchFields is a typical admission decision (8 members, about 420
// bytes), with exactly the members the schema documents, as the gateway
// writes it.
func benchFields() []zap.Field {
	return []zap.Field{
		zap.String(FieldRoom, "standup"), zap.String(FieldSubject, "alice@example.com"),
		zap.String(FieldIssuer, "https://id.example.com"),
		zap.String(FieldDecision, DecisionAllow), zap.String(FieldRole, "participant"),
		zap.Strings(FieldReasons, []string{"org_member"}), zap.String(FieldPolicyRevision, "rev-7c1e"),
		zap.String(FieldDecisionID, "d-0001"), zap.String(FieldClientIP, "198.51.100.7"),
		zap.String(FieldVia, "api"),
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecord_Parallel: exactly `writers` goroutines calling Record,
// each waiting for its record to be fsynced (group commit) or not (async).
// Besides records/s it reports the process's CPU per record (run with
// -cpu 1 to see what one record costs), the caller records per batch and
// the mean time of one batch's write and fsync.
func BenchmarkRecord_Parallel(b *testing.B) {
	for _, mode := range []SyncMode{SyncDurable, SyncAsync} {
		for _, writers := range []int{1, 16, 128, 512, 1024, 2048} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				benchRecords(b, Options{Sync: mode, StrictSchema: true}, writers)
			})
		}
	}
}

// BenchmarkRecord_InFlight: durable records with 1 (no pipelining), 2 or 3
// batches written and fsyncing at once, to choose defaultSyncsInFlight.
func BenchmarkRecord_InFlight(b *testing.B) {
	for _, writers := range []int{128, 512, 2048} {
		for _, n := range []int{1, 2, 3, 4} {
			b.Run(fmt.Sprintf("writers=%d/inflight=%d", writers, n), func(b *testing.B) {
				benchRecords(b, Options{StrictSchema: true, syncsInFlight: n}, writers)
			})
		}
	}
}

func benchRecords(b *testing.B, opts Options, writers int) {
	l := openTestLog(b, opts)
	fields := benchFields()
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	batches, records, syncNanos := l.stats.batches.Load(), l.stats.records.Load(), l.stats.syncNanos.Load()
	cpu := processCPU(b)
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := l.Record(context.Background(), EventAdmissionDecision, fields...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu = processCPU(b) - cpu
	reportRate(b)
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/record")
	if n := l.stats.batches.Load() - batches; n > 0 {
		b.ReportMetric(float64(l.stats.records.Load()-records)/float64(n), "records/batch")
		b.ReportMetric(float64(l.stats.syncNanos.Load()-syncNanos)/1e3/float64(n), "fsync-µs")
	}
}

// BenchmarkRecord_AdmissionDecisionParallel: records carrying the policy
// input and result objects, as the gateway writes them.
func BenchmarkRecord_AdmissionDecisionParallel(b *testing.B) {
	l := openTestLog(b, Options{})
	fields := decision("standup", "alice@example.com", DecisionAllow, "participant", []string{"org_member"}, "d-0001")
	b.ReportAllocs()
	b.SetParallelism(128 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Record(context.Background(), EventAdmissionDecision, fields...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b)
}

// BenchmarkRecord_Latency: one caller, one record at a time; ns/op is
// what one admission waits for its durable record.
func BenchmarkRecord_Latency(b *testing.B) {
	l := openTestLog(b, Options{})
	fields := benchFields()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := l.Record(context.Background(), EventAdmissionDecision, fields...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode: the caller-side CPU cost of one record (fields,
// redaction checks), without I/O.
func BenchmarkEncode(b *testing.B) {
	enc := newFieldEncoder([]string{"email"})
	fields := benchFields()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := enc.encode(fields); err != nil {
			b.Fatal(err)
		}
	}
}

// writeBenchLog writes n records in the log format directly (no fsync),
// with a checkpoint every 1000, and returns the path and size.
func writeBenchLog(b *testing.B, n int) (string, int64) {
	path := filepath.Join(b.TempDir(), "audit.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := newFieldEncoder(nil)
	members, _, _ := enc.encode(benchFields())
	key := testKey()
	keyID := KeyID(key.Public().(ed25519.PublicKey))
	var prev [hashLen]byte
	var buf []byte
	ts := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		buf = buf[:0]
		if seq%1000 == 1 {
			buf, prev = appendRecord(buf, seq, ts, EventCheckpoint, "", &prev, appendCheckpointMembers(nil, keyID, 1000, reasonCount), key)
		} else {
			buf, prev = appendRecord(buf, seq, ts, EventAdmissionDecision, "", &prev, members, nil)
		}
		w.Write(buf)
		ts = ts.Add(time.Millisecond)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	return path, st.Size()
}

// BenchmarkVerify_1M verifies a 1,000,000-record log (generated outside
// the timer).
func BenchmarkVerify_1M(b *testing.B) {
	const n = 1_000_000
	path, size := writeBenchLog(b, n)
	pub := testKey().Public().(ed25519.PublicKey)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		res, err := Verify(context.Background(), []string{path}, VerifyOptions{Keys: []ed25519.PublicKey{pub}})
		if err != nil || !res.Intact() || res.Records != n {
			b.Fatalf("err=%v problem=%v records=%d", err, res.Problem, res.Records)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(0, "ns/op")
}
