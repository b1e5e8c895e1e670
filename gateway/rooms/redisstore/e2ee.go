package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
)

// E2EE is the shared e2eestore.Store: the end-to-end key Authority's state
// (roster chain, credentials, key packages, sealed secrets, nonces) and the
// gateway's admission bindings live in the same Redis as the rooms, so any
// node serves any member of any room, and a kick handled on one node cuts
// the keys of members connected to another.
//
// Each entry is one Redis string under the store's prefix; a sorted set of
// entry names (all scores 0) lets List and DeletePrefix find a prefix with
// ZRANGEBYLEX instead of SCAN. Every write is one script, so an entry and
// its index entry never disagree. Counter changes are published on the
// relay's e2ee channel; WaitAbove also re-reads the counter every second,
// so a lost announcement delays a long-poll by at most that. The values are
// the protocol's signed or sealed messages: nothing here is secret to the
// gateway, and nothing is a media key.
type E2EE struct {
	st    *Store
	ns    string // entry name -> Redis key
	index string
}

var _ e2eestore.Store = (*E2EE)(nil)

// E2EE returns the e2ee store sharing this store's client and event relay.
func (s *Store) E2EE() *E2EE {
	return &E2EE{st: s, ns: s.prefix + "e2ee:", index: s.prefix + "e2ee-index"}
}

var (
	e2eeSetScript          = redis.NewScript(luaSource("e2ee_set"))
	e2eeTakeScript         = redis.NewScript(luaSource("e2ee_take"))
	e2eeListScript         = redis.NewScript(luaSource("e2ee_list"))
	e2eeDeletePrefixScript = redis.NewScript(luaSource("e2ee_delete_prefix"))
	e2eeIncrScript         = redis.NewScript(luaSource("e2ee_incr"))
)

func e2eeUnavailable(op string, err error) error {
	return fmt.Errorf("%w: redisstore e2ee %s: %w", e2eestore.ErrUnavailable, op, err)
}

// ttlMillis rounds a positive ttl up to whole milliseconds; zero is none.
func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(1, (ttl + time.Millisecond - 1).Milliseconds())
}

func (x *E2EE) set(ctx context.Context, op, key string, value []byte, ttl time.Duration, mode string) (bool, error) {
	n, err := e2eeSetScript.Run(ctx, x.st.client, []string{x.ns + key, x.index}, value, ttlMillis(ttl), key, mode).Int()
	if err != nil {
		return false, e2eeUnavailable(op, err)
	}
	return n == 1, nil
}

// Create implements e2eestore.Store with SET NX.
func (x *E2EE) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ok, err := x.set(ctx, "create", key, value, ttl, "NX")
	if err != nil {
		return err
	}
	if !ok {
		return e2eestore.ErrExists
	}
	return nil
}

// Put implements e2eestore.Store.
func (x *E2EE) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := x.set(ctx, "put", key, value, ttl, "")
	return err
}

// Get implements e2eestore.Store.
func (x *E2EE) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := x.st.client.Get(ctx, x.ns+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, e2eestore.ErrNotFound
	}
	if err != nil {
		return nil, e2eeUnavailable("get", err)
	}
	return b, nil
}

// Take implements e2eestore.Store: GET and DEL in one script.
func (x *E2EE) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := e2eeTakeScript.Run(ctx, x.st.client, []string{x.ns + key, x.index}, key).Text()
	if errors.Is(err, redis.Nil) {
		return nil, e2eestore.ErrNotFound
	}
	if err != nil {
		return nil, e2eeUnavailable("take", err)
	}
	return []byte(v), nil
}

// List implements e2eestore.Store.
func (x *E2EE) List(ctx context.Context, prefix string) ([]e2eestore.Entry, error) {
	flat, err := e2eeListScript.Run(ctx, x.st.client, []string{x.index}, x.ns, prefix).StringSlice()
	if err != nil {
		return nil, e2eeUnavailable("list", err)
	}
	out := make([]e2eestore.Entry, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		out = append(out, e2eestore.Entry{Key: flat[i], Value: []byte(flat[i+1])})
	}
	return out, nil
}

// DeletePrefix implements e2eestore.Store.
func (x *E2EE) DeletePrefix(ctx context.Context, prefix string) error {
	if err := e2eeDeletePrefixScript.Run(ctx, x.st.client, []string{x.index}, x.ns, prefix, x.st.e2eeChannel).Err(); err != nil {
		return e2eeUnavailable("delete prefix", err)
	}
	return nil
}

// Incr implements e2eestore.Store: INCR and the announcement to every node
// are one script.
func (x *E2EE) Incr(ctx context.Context, key string) (uint64, error) {
	n, err := e2eeIncrScript.Run(ctx, x.st.client, []string{x.ns + key, x.index}, key, x.st.e2eeChannel).Uint64()
	if err != nil {
		return 0, e2eeUnavailable("incr", err)
	}
	return n, nil
}

// Counter implements e2eestore.Store.
func (x *E2EE) Counter(ctx context.Context, key string) (uint64, error) {
	n, _, err := x.counter(ctx, key)
	return n, err
}

func (x *E2EE) counter(ctx context.Context, key string) (n uint64, exists bool, _ error) {
	s, err := x.st.client.Get(ctx, x.ns+key).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, e2eeUnavailable("counter", err)
	}
	if n, err = strconv.ParseUint(s, 10, 64); err != nil {
		return 0, false, e2eeUnavailable("counter", err)
	}
	return n, true, nil
}

// counterRecheck bounds how long a lost announcement can delay WaitAbove.
const counterRecheck = time.Second

// WaitAbove implements e2eestore.Store. It watches the key before each read,
// so an Incr between the read and the wait still wakes it.
func (x *E2EE) WaitAbove(ctx context.Context, key string, after uint64) (uint64, error) {
	t := time.NewTimer(counterRecheck)
	defer t.Stop()
	for {
		changed := x.st.counters.watch(key)
		v, exists, err := x.counter(ctx, key)
		if err != nil {
			return after, err
		}
		if v > after || (!exists && after > 0) {
			return v, nil
		}
		t.Reset(counterRecheck)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}

// counterHub wakes this node's WaitAbove calls when the relay hears that a
// counter changed on any node.
type counterHub struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// watch returns a channel closed on the next announcement of key (or when
// announcements may have been lost).
func (h *counterHub) watch(key string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiters == nil {
		h.waiters = map[string]chan struct{}{}
	}
	ch, ok := h.waiters[key]
	if !ok {
		ch = make(chan struct{})
		h.waiters[key] = ch
	}
	return ch
}

// publish wakes the waiters of what an announcement names: "k" and a
// counter's name (Incr), or "p" and a prefix (DeletePrefix).
func (h *counterHub) publish(msg string) {
	kind, name := msg[:min(1, len(msg))], msg[min(1, len(msg)):]
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, ch := range h.waiters {
		if (kind == "k" && key == name) || (kind == "p" && strings.HasPrefix(key, name)) {
			close(ch)
			delete(h.waiters, key)
		}
	}
}

// drop wakes every waiter: they read their counters again.
func (h *counterHub) drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, ch := range h.waiters {
		close(ch)
		delete(h.waiters, key)
	}
}
