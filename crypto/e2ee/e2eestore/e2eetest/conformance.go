// Package e2eetest is the conformance suite every e2eestore.Store passes: the memory store of one node and the
// Redis store shared by many. Tests that speak of nodes run against two stores from one Harness; for a shared
// store they are two clients of one backend, so "created on A, refused on B" is tested for real.
package e2eetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
)

// Harness makes two stores that share their state (two nodes), or the same store twice for a single-node
// implementation. Each call starts from an empty keyspace.
type Harness func(t *testing.T) (a, b e2eestore.Store)

// Run runs the whole conformance suite against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, e2eestore.Store, e2eestore.Store)
	}{
		{"Get_PutOnOneNodeReadsTheSameOnTheOther", testRoundTrip},
		{"Get_UnknownIsNotFound", testUnknown},
		{"Create_ExactlyOneWinsAcrossNodes", testCreateOnce},
		{"Take_AtMostOneGetsItAcrossNodes", testTakeOnce},
		{"TTL_ExpiredEntryIsGoneForEveryMethod", testExpiry},
		{"List_OnlyThePrefixSortedByKey", testList},
		{"DeletePrefix_GoneOnEveryNode", testDeletePrefix},
		{"Incr_AtomicAcrossNodes", testIncr},
		{"WaitAbove_WakesOnTheOtherNodesIncr", testWaitAbove},
		{"WaitAbove_ContextEndReturnsItsError", testWaitEnds},
		{"WaitAbove_DeletePrefixOnTheOtherNodeEndsTheWait", testWaitDeleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := h(t)
			tc.fn(t, a, b)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// binary is a value with every byte, so no implementation can get away with treating values as text.
func binary() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func testRoundTrip(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	if err := a.Put(ctx, "e2ee/r/i/cred/01", binary(), 0); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "e2ee/r/i/cred/01")
	if err != nil || !bytes.Equal(got, binary()) {
		t.Fatalf("Get on the other node = %x, %v", got, err)
	}
	if err := b.Put(ctx, "e2ee/r/i/cred/01", []byte("replaced"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, "e2ee/r/i/cred/01"); err != nil || string(got) != "replaced" {
		t.Fatalf("Get after Put replaced = %q, %v", got, err)
	}
	if err := a.Put(ctx, "e2ee/r/i/empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "e2ee/r/i/empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty value = %q, %v", got, err)
	}
}

func testUnknown(t *testing.T, a, _ e2eestore.Store) {
	ctx := ctxT(t)
	if _, err := a.Get(ctx, "e2ee/r/i/none"); !errors.Is(err, e2eestore.ErrNotFound) {
		t.Fatalf("Get of an unknown key: %v, want ErrNotFound", err)
	}
	if _, err := a.Take(ctx, "e2ee/r/i/none"); !errors.Is(err, e2eestore.ErrNotFound) {
		t.Fatalf("Take of an unknown key: %v, want ErrNotFound", err)
	}
	if n, err := a.Counter(ctx, "e2ee/r/i/version"); err != nil || n != 0 {
		t.Fatalf("Counter of an unknown key = %d, %v; want 0", n, err)
	}
	if l, err := a.List(ctx, "e2ee/r/"); err != nil || len(l) != 0 {
		t.Fatalf("List of an empty prefix = %v, %v", l, err)
	}
}

// race runs f on both nodes from n goroutines each, released together.
func race(n int, a, b e2eestore.Store, f func(e2eestore.Store) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2*n)
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(s)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func testCreateOnce(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	errs := race(16, a, b, func(s e2eestore.Store) error {
		return s.Create(ctx, "e2ee/r/i/roster/00000000000000000002", []byte("epoch 2"), 0)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, e2eestore.ErrExists):
			t.Fatalf("a losing Create: %v, want ErrExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d Creates of one key succeeded, want exactly 1", won)
	}
	if err := a.Create(ctx, "e2ee/r/i/roster/00000000000000000002", []byte("again"), 0); !errors.Is(err, e2eestore.ErrExists) {
		t.Fatalf("Create over a live key: %v, want ErrExists", err)
	}
	if got, _ := b.Get(ctx, "e2ee/r/i/roster/00000000000000000002"); string(got) != "epoch 2" {
		t.Fatalf("the winner's value was replaced: %q", got)
	}
}

func testTakeOnce(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	if err := a.Create(ctx, "e2ee/r/i/nonce/aa", []byte("alice"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	errs := race(16, a, b, func(s e2eestore.Store) error {
		v, err := s.Take(ctx, "e2ee/r/i/nonce/aa")
		if err == nil {
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
		}
		return err
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, e2eestore.ErrNotFound) {
			t.Fatalf("a losing Take: %v, want ErrNotFound", err)
		}
	}
	if len(got) != 1 || string(got[0]) != "alice" {
		t.Fatalf("Takes that got the nonce: %q, want exactly one \"alice\"", got)
	}
	if _, err := b.Get(ctx, "e2ee/r/i/nonce/aa"); !errors.Is(err, e2eestore.ErrNotFound) {
		t.Fatalf("Get after Take: %v, want ErrNotFound", err)
	}
}

// eventually polls f until it holds; the deadline only turns a hang into a failure, it measures nothing.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

func testExpiry(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	if err := a.Create(ctx, "e2ee/r/i/nonce/bb", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "e2ee/r/i/kp/bb", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A counter Put with a ttl keeps it through Incr.
	if err := a.Put(ctx, "e2ee/r/i/version", []byte("7"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Incr(ctx, "e2ee/r/i/version"); err != nil || n != 8 {
		t.Fatalf("Incr of a counter Put as 7 = %d, %v", n, err)
	}
	eventually(t, "the entries expire on the other node", func() bool {
		_, e1 := b.Get(ctx, "e2ee/r/i/nonce/bb")
		_, e2 := b.Get(ctx, "e2ee/r/i/kp/bb")
		n, e3 := b.Counter(ctx, "e2ee/r/i/version")
		return errors.Is(e1, e2eestore.ErrNotFound) && errors.Is(e2, e2eestore.ErrNotFound) && e3 == nil && n == 0
	})
	if _, err := b.Take(ctx, "e2ee/r/i/nonce/bb"); !errors.Is(err, e2eestore.ErrNotFound) {
		t.Fatalf("Take of an expired key: %v, want ErrNotFound", err)
	}
	if l, err := b.List(ctx, "e2ee/r/i/"); err != nil || len(l) != 0 {
		t.Fatalf("List shows expired entries: %v, %v", l, err)
	}
	if err := b.Create(ctx, "e2ee/r/i/nonce/bb", []byte("y"), time.Minute); err != nil {
		t.Fatalf("Create over an expired key: %v", err)
	}
}

func testList(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	keys := []string{"e2ee/r/i/sealed/2/b", "e2ee/r/i/sealed/2/a", "e2ee/r/i/sealed/10/a", "e2ee/r/i/sealed/2",
		"e2ee/r/i/sealed/20/a", "e2ee/r/i/sealeD/2/a", "e2ee/r/j/sealed/2/a", "e2ee/r/i/sealed/2/c"}
	for i, k := range keys {
		if err := a.Put(ctx, k, []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	l, err := b.List(ctx, "e2ee/r/i/sealed/2/")
	if err != nil {
		t.Fatal(err)
	}
	want := []e2eestore.Entry{{Key: "e2ee/r/i/sealed/2/a", Value: []byte("1")}, {Key: "e2ee/r/i/sealed/2/b", Value: []byte("0")},
		{Key: "e2ee/r/i/sealed/2/c", Value: []byte("7")}}
	if !slices.EqualFunc(l, want, func(x, y e2eestore.Entry) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }) {
		t.Fatalf("List = %q, want %q", l, want)
	}
}

func testDeletePrefix(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	for _, k := range []string{"e2ee/r/i/head", "e2ee/r/i/cred/1", "e2ee/r/i/sealed/1/a", "e2ee/r/i2/head", "e2ee/r/ix"} {
		if err := a.Put(ctx, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Incr(ctx, "e2ee/r/i/version"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeletePrefix(ctx, "e2ee/r/i/"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"e2ee/r/i/head", "e2ee/r/i/cred/1", "e2ee/r/i/sealed/1/a"} {
		if _, err := b.Get(ctx, k); !errors.Is(err, e2eestore.ErrNotFound) {
			t.Fatalf("Get(%s) on the other node after DeletePrefix: %v, want ErrNotFound", k, err)
		}
	}
	for _, k := range []string{"e2ee/r/i2/head", "e2ee/r/ix"} {
		if got, err := b.Get(ctx, k); err != nil || string(got) != k {
			t.Fatalf("DeletePrefix took %s beyond its prefix: %q, %v", k, got, err)
		}
	}
	if err := b.Create(ctx, "e2ee/r/i/head", []byte("new"), 0); err != nil {
		t.Fatalf("Create after DeletePrefix: %v", err)
	}
	if l, err := b.List(ctx, "e2ee/r/i/"); err != nil || len(l) != 1 {
		t.Fatalf("List after DeletePrefix and one Create = %q, %v", l, err)
	}
}

func testIncr(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	errs := race(25, a, b, func(s e2eestore.Store) error {
		n, err := s.Incr(ctx, "e2ee/r/i/version")
		mu.Lock()
		defer mu.Unlock()
		if seen[n] {
			return fmt.Errorf("value %d returned twice", n)
		}
		seen[n] = true
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Counter(ctx, "e2ee/r/i/version"); err != nil || n != 50 {
		t.Fatalf("Counter after 50 Incrs on two nodes = %d, %v", n, err)
	}
}

func testWaitAbove(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	v, err := a.Incr(ctx, "e2ee/r/i/version")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.WaitAbove(ctx, "e2ee/r/i/version", v-1); err != nil || got != v {
		t.Fatalf("WaitAbove below the counter = %d, %v; want %d at once", got, err, v)
	}
	done := make(chan uint64, 1)
	go func() {
		got, _ := b.WaitAbove(ctx, "e2ee/r/i/version", v)
		done <- got
	}()
	// Other keys' changes do not end the wait.
	if _, err := a.Incr(ctx, "e2ee/r/other/version"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		t.Fatalf("WaitAbove returned %d on another key's Incr", got)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := a.Incr(ctx, "e2ee/r/i/version"); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != v+1 {
		t.Fatalf("WaitAbove woke with %d, want %d", got, v+1)
	}
}

func testWaitEnds(t *testing.T, a, _ e2eestore.Store) {
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Incr(ctx, "e2ee/r/i/version"); err != nil {
		t.Fatal(err)
	}
	got, err := a.WaitAbove(ctx, "e2ee/r/i/version", 1)
	if !errors.Is(err, context.DeadlineExceeded) || got != 1 {
		t.Fatalf("WaitAbove past its context = %d, %v; want 1, DeadlineExceeded", got, err)
	}
}

func testWaitDeleted(t *testing.T, a, b e2eestore.Store) {
	ctx := ctxT(t)
	v, err := a.Incr(ctx, "e2ee/r/i/version")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		got, err := b.WaitAbove(ctx, "e2ee/r/i/version", v)
		if err == nil && got != 0 {
			err = fmt.Errorf("woke with %d, want 0", got)
		}
		done <- err
	}()
	if err := a.DeletePrefix(ctx, "e2ee/r/i/"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitAbove of a deleted counter: %v", err)
	}
	// Asked after the delete, it answers at once too.
	if got, err := b.WaitAbove(ctx, "e2ee/r/i/version", v); err != nil || got != 0 {
		t.Fatalf("WaitAbove after the delete = %d, %v; want 0 at once", got, err)
	}
}
