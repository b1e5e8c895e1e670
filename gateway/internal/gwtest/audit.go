package gwtest

import (
	"context"
	"slices"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/gateway/audit"
)

// MemoryAudit keeps audit event names in memory, for tests of which
// events the gateway records; the audit package's own tests cover
// durability and tamper evidence. Like a log opened with StrictSchema, it
// refuses a record whose members are not exactly its documented ones, so
// every gateway test also checks the schema. The zero value is ready to
// use.
type MemoryAudit struct {
	mu      sync.Mutex
	events  []string
	members []map[string]any
	fail    error
}

// Record implements Auditor: it keeps event, or fails with the error
// given to Fail.
func (a *MemoryAudit) Record(_ context.Context, event string, fields ...zap.Field) error {
	if err := audit.CheckFields(event, fields); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.events = append(a.events, event)
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	a.members = append(a.members, enc.Fields)
	return nil
}

// Records returns the members of every record of event, in order.
func (a *MemoryAudit) Records(event string) []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]any
	for i, e := range a.events {
		if e == event {
			out = append(out, a.members[i])
		}
	}
	return out
}

// Ready implements Auditor: it reports the error given to Fail.
func (a *MemoryAudit) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fail
}

// Fail makes every later Record and Ready fail with err, as a full disk
// would; nil heals it.
func (a *MemoryAudit) Fail(err error) {
	a.mu.Lock()
	a.fail = err
	a.mu.Unlock()
}

// Has reports whether event was recorded.
func (a *MemoryAudit) Has(event string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.events, event)
}

// Count is how many times event was recorded.
func (a *MemoryAudit) Count(event string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.events {
		if e == event {
			n++
		}
	}
	return n
}

type nopAudit struct{}

func (nopAudit) Record(context.Context, string, ...zap.Field) error { return nil }
func (nopAudit) Ready() error                                       { return nil }
