package audit

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Members an aggregated record adds to its key's members.
const (
	FieldCount = "count" // occurrences in the window
	FieldFirst = "first" // time of the first one
	FieldLast  = "last"  // time of the last one
)

// Defaults for zero AggregatorOptions fields.
const (
	DefaultAggregateWindow  = time.Minute
	DefaultAggregateMaxKeys = 10000
)

// AggregatorOptions configure NewAggregator.
type AggregatorOptions struct {
	// Audit receives the records. Required.
	Audit Recorder
	// Event is the event of every record. Required.
	Event string
	// Window is how long occurrences are counted before their record is
	// written (default one minute).
	Window time.Duration
	// MaxKeys bounds memory: beyond it, new keys of the window are counted
	// in one overflow record (default 10000).
	MaxKeys int
	// Overflow are the members of the overflow record, the same keys as
	// every other record of Event (e.g. client_ip "*").
	Overflow []zap.Field
	// Clock stamps occurrences (default time.Now).
	Clock func() time.Time
	// Logger receives write failures (default none).
	Logger *zap.Logger
}

// Aggregator turns a flood of one event into at most one record per key
// per window, with how many there were and when the first and last came,
// so that an attacker who can cause the event cannot grow the log or slow
// the gateway by causing it often: a window writes at most MaxKeys+1
// records and holds at most MaxKeys+1 counters.
type Aggregator struct {
	o        AggregatorOptions
	mu       sync.Mutex
	buckets  map[string]*aggBucket
	overflow *aggBucket
	timer    *time.Timer
	closed   bool
}

type aggBucket struct {
	fields      []zap.Field
	count       int64
	first, last time.Time
}

// NewAggregator returns an Aggregator; Close writes what it still holds.
func NewAggregator(o AggregatorOptions) *Aggregator {
	if o.Window <= 0 {
		o.Window = DefaultAggregateWindow
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultAggregateMaxKeys
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Aggregator{o: o, buckets: map[string]*aggBucket{}}
}

// Add counts one occurrence of key. fields builds its members (without
// count, first, last); it is called only for the first occurrence of key
// in a window, so a flood costs a map lookup per occurrence.
func (a *Aggregator) Add(key string, fields func() []zap.Field) {
	now := a.o.Clock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	b := a.buckets[key]
	if b == nil {
		if len(a.buckets) >= a.o.MaxKeys {
			if a.overflow == nil {
				a.overflow = &aggBucket{fields: a.o.Overflow, first: now}
			}
			b = a.overflow
		} else {
			b = &aggBucket{fields: fields(), first: now}
			a.buckets[key] = b
		}
	}
	b.count++
	b.last = now
	if a.timer == nil {
		a.timer = time.AfterFunc(a.o.Window, func() { a.Flush(context.Background()) })
	}
}

// Flush writes one record per key counted since the last flush.
func (a *Aggregator) Flush(ctx context.Context) {
	a.mu.Lock()
	buckets, overflow := a.buckets, a.overflow
	a.buckets, a.overflow = map[string]*aggBucket{}, nil
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.mu.Unlock()
	write := func(b *aggBucket) {
		fields := append(append(make([]zap.Field, 0, len(b.fields)+3), b.fields...),
			zap.Int64(FieldCount, b.count), zap.Time(FieldFirst, b.first), zap.Time(FieldLast, b.last))
		if err := a.o.Audit.Record(ctx, a.o.Event, fields...); err != nil {
			a.o.Logger.Error("aggregated audit record not written", zap.String("event", a.o.Event), zap.Int64("count", b.count), zap.Error(err))
		}
	}
	for _, b := range buckets {
		write(b)
	}
	if overflow != nil {
		write(overflow)
	}
}

// Close writes what is still counted and stops counting.
func (a *Aggregator) Close(ctx context.Context) {
	a.Flush(ctx)
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
}
