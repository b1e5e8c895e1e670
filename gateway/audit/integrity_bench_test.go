package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchChain appends records in the log format directly (no fsync), a
// checkpoint every 1000, and can go on appending to the same chain.
type benchChain struct {
	path    string
	seq     uint64
	prev    [hashLen]byte
	ts      time.Time
	members []byte
	key     ed25519.PrivateKey
	keyID   string
}

func newBenchChain(b *testing.B) *benchChain {
	enc := newFieldEncoder(nil)
	members, _, _ := enc.encode(benchFields())
	key := testKey()
	return &benchChain{path: filepath.Join(b.TempDir(), "audit.log"), ts: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		members: members, key: key, keyID: KeyID(key.Public().(ed25519.PublicKey))}
}

func (c *benchChain) append(b *testing.B, n int) {
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	for range n {
		c.seq++
		buf = buf[:0]
		if c.seq%1000 == 1 {
			reason := reasonCount
			if c.seq == 1 {
				reason = reasonGenesis
			}
			buf, c.prev = appendRecord(buf, c.seq, c.ts, EventCheckpoint, "", &c.prev, appendCheckpointMembers(nil, c.keyID, 1000, reason), c.key)
		} else {
			buf, c.prev = appendRecord(buf, c.seq, c.ts, EventAdmissionDecision, "", &c.prev, c.members, nil)
		}
		w.Write(buf)
		c.ts = c.ts.Add(time.Millisecond)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// benchChainRecords is the log size, MEETGUARD_BENCH_CHAIN (default
// 200,000; the console's goal is 10,000,000).
func benchChainRecords() int {
	if n, err := strconv.Atoi(os.Getenv("MEETGUARD_BENCH_CHAIN")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// BenchmarkChainMonitor_Initial is the first pass over a log: what the
// integrity page shows progress for.
func BenchmarkChainMonitor_Initial(b *testing.B) {
	n := benchChainRecords()
	c := newBenchChain(b)
	c.append(b, n)
	st, _ := os.Stat(c.path)
	list := func() ([]string, error) { return []string{c.path}, nil }
	b.ReportAllocs()
	b.SetBytes(st.Size())
	for b.Loop() {
		m := newTestMonitor(b, ChainMonitorOptions{})
		rep, err := m.Update(context.Background(), list)
		if err != nil || rep.Chains[0].State != ChainVerified || rep.Chains[0].Records != n {
			b.Fatalf("err=%v %+v", err, rep.Chains[0].Problem)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkChainMonitor_Incremental is one page view's check after 1,000
// records were appended to a log already verified: the new records, every
// file's last chunk and the recheck budget (32 MiB) of older bytes.
func BenchmarkChainMonitor_Incremental(b *testing.B) {
	n := benchChainRecords()
	c := newBenchChain(b)
	c.append(b, n)
	list := func() ([]string, error) { return []string{c.path}, nil }
	m := newTestMonitor(b, ChainMonitorOptions{})
	if _, err := m.Update(context.Background(), list); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c.append(b, 1000)
		b.StartTimer()
		rep, err := m.Update(context.Background(), list)
		if err != nil || rep.Chains[0].State != ChainVerified {
			b.Fatalf("err=%v %+v", err, rep.Chains[0].Problem)
		}
	}
}
