package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

type countingRecorder struct {
	mu      sync.Mutex
	records []map[string]any
}

func (c *countingRecorder) Record(_ context.Context, event string, fields ...zap.Field) error {
	if err := audit.CheckFields(event, fields); err != nil {
		return err
	}
	m := map[string]any{}
	for _, f := range fields {
		switch {
		case f.String != "":
			m[f.Key] = f.String
		default:
			m[f.Key] = f.Integer
		}
	}
	c.mu.Lock()
	c.records = append(c.records, m)
	c.mu.Unlock()
	return nil
}

// TestAggregator_BoundedRecordsAndMemory: a million occurrences over more
// keys than the bound become at most MaxKeys+1 records, and every
// occurrence is counted in one of them.
func TestAggregator_BoundedRecordsAndMemory(t *testing.T) {
	rec := &countingRecorder{}
	overflow := []zap.Field{zap.String(audit.FieldReason, "*"), zap.String(audit.FieldClientIP, "*"),
		zap.String(audit.FieldIssuer, "*"), zap.String(audit.FieldKID, "*")}
	a := audit.NewAggregator(audit.AggregatorOptions{Audit: rec, Event: audit.EventAuthRejected, MaxKeys: 100, Overflow: overflow})
	const n = 1_000_000
	for i := range n {
		ip := fmt.Sprintf("192.0.2.%d", i%300)
		a.Add(ip, func() []zap.Field {
			return []zap.Field{zap.String(audit.FieldReason, "expired"), zap.String(audit.FieldClientIP, ip),
				zap.String(audit.FieldIssuer, ""), zap.String(audit.FieldKID, "")}
		})
	}
	a.Close(context.Background())
	if len(rec.records) != 101 {
		t.Fatalf("%d records, want 100 keys + 1 overflow", len(rec.records))
	}
	var total int64
	for _, r := range rec.records {
		total += r[audit.FieldCount].(int64)
	}
	if total != n {
		t.Fatalf("records count %d occurrences, want %d", total, n)
	}
	a.Add("late", func() []zap.Field { return nil })
	a.Close(context.Background())
	if len(rec.records) != 101 {
		t.Fatal("a closed aggregator wrote again")
	}
}

// BenchmarkAggregator_Add is the cost a flood of refusals adds per request
// once its key is counted (a map lookup under a mutex).
func BenchmarkAggregator_Add(b *testing.B) {
	a := audit.NewAggregator(audit.AggregatorOptions{Audit: &countingRecorder{}, Event: audit.EventAuthRejected})
	defer a.Close(context.Background())
	fields := func() []zap.Field {
		return []zap.Field{zap.String(audit.FieldReason, "bad_signature"), zap.String(audit.FieldClientIP, "192.0.2.1"),
			zap.String(audit.FieldIssuer, ""), zap.String(audit.FieldKID, "")}
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Add("192.0.2.1\x00bad_signature\x00\x00", fields)
	}
}
