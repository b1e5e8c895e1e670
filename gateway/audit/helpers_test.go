package audit

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// testKey is fixed so that fixture logs, and the golden files made from
// them, are byte-for-byte reproducible.
func testKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte("meetguard audit test key 32byte!"))
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newFakeClock(start string, step time.Duration) *fakeClock {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		panic(err)
	}
	return &fakeClock{now: t, step: step}
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func openTestLog(t testing.TB, opts Options) *Log {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "audit.log")
	}
	if opts.SigningKey == nil {
		opts.SigningKey = testKey()
	}
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// logFiles returns the active file and its rotated siblings.
func logFiles(t testing.TB, path string) []string {
	t.Helper()
	rotated, err := rotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		rotated = append(rotated, path)
	}
	return rotated
}

func verifyFiles(t testing.TB, files []string, opts VerifyOptions) *VerifyResult {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}
	}
	res, err := Verify(context.Background(), files, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

func readAll(t testing.TB, files ...string) []*Entry {
	t.Helper()
	var out []*Entry
	st, err := ReadEntries(context.Background(), files, func(e *Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Skipped) > 0 {
		t.Fatalf("skipped lines: %s", strings.Join(st.Skipped, "; "))
	}
	return out
}

func eventsOf(es []*Entry, event string) []*Entry {
	var out []*Entry
	for _, e := range es {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

func zapInt(k string, v int) zap.Field { return zap.Int(k, v) }
