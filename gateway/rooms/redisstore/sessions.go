package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetguard/meetguard/gateway/session"
)

// Sessions is the shared session.Store: browser sessions, logins in
// progress and claimed login states live in the same Redis as the rooms,
// so a login started on one node completes on any other, and a logout or
// revocation on one node ends the session on all of them at once.
//
// Every record is sealed (session.Sealer) before it leaves the node; the
// key names only the hash of the cookie handle (session.IDFromHandle), and
// logins and claims are keyed by a hash of their state. There is no local
// copy: every read goes to Redis, and when Redis cannot be reached every
// call fails with an error wrapping session.ErrUnavailable.
type Sessions struct {
	st     *Store
	sealer *session.Sealer
}

var (
	_ session.Store      = (*Sessions)(nil)
	_ session.EndWatcher = (*Sessions)(nil)
)

// Sessions returns the session store that shares this store's client and
// event relay. Deletes are announced on the relay's session channel.
func (s *Store) Sessions(sealer *session.Sealer) *Sessions {
	return &Sessions{st: s, sealer: sealer}
}

func (x *Sessions) sessionKey(id string) string { return x.st.prefix + "sess:" + id }

func (x *Sessions) stateKey(kind, state string) string {
	sum := sha256.Sum256([]byte(state))
	return x.st.prefix + kind + ":" + hex.EncodeToString(sum[:16])
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redisstore %s: %w", session.ErrUnavailable, op, err)
}

// GetSession implements session.Store.
func (x *Sessions) GetSession(ctx context.Context, id string) (session.Session, error) {
	raw, err := x.st.client.Get(ctx, x.sessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, unavailable("get session", err)
	}
	s, err := x.sealer.OpenSession(id, raw)
	if err != nil {
		// Not ours, tampered with, or sealed under another secret: no
		// session, and the operator must hear of it.
		x.st.log.Error("redisstore.session_record_bad")
		return session.Session{}, session.ErrNotFound
	}
	if !time.Now().Before(s.Expires) {
		return session.Session{}, session.ErrNotFound
	}
	return s, nil
}

// PutSession implements session.Store. The record expires in Redis at
// the session's hard end.
func (x *Sessions) PutSession(ctx context.Context, s session.Session) error {
	raw, err := x.sealer.SealSession(s)
	if err != nil {
		return err
	}
	if err := x.st.client.SetArgs(ctx, x.sessionKey(s.ID), raw, redis.SetArgs{ExpireAt: s.Expires}).Err(); err != nil {
		return unavailable("put session", err)
	}
	return nil
}

// DeleteSession implements session.Store: the delete and its announcement
// to every node are one MULTI, so a session never ends without the nodes
// holding its live connections being told.
func (x *Sessions) DeleteSession(ctx context.Context, id string) error {
	_, err := x.st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, x.sessionKey(id))
		p.Publish(ctx, x.st.sessChannel, id)
		return nil
	})
	if err != nil {
		return unavailable("delete session", err)
	}
	return nil
}

// PutLogin implements session.Store.
func (x *Sessions) PutLogin(ctx context.Context, l session.Login) error {
	raw, err := x.sealer.SealLogin(l)
	if err != nil {
		return err
	}
	if err := x.st.client.SetArgs(ctx, x.stateKey("login", l.State), raw, redis.SetArgs{ExpireAt: l.Expires}).Err(); err != nil {
		return unavailable("put login", err)
	}
	return nil
}

// TakeLogin implements session.Store with GETDEL: of concurrent takes on
// any nodes, exactly one gets the login.
func (x *Sessions) TakeLogin(ctx context.Context, state string) (session.Login, error) {
	raw, err := x.st.client.GetDel(ctx, x.stateKey("login", state)).Bytes()
	if errors.Is(err, redis.Nil) {
		return session.Login{}, session.ErrNotFound
	}
	if err != nil {
		return session.Login{}, unavailable("take login", err)
	}
	l, err := x.sealer.OpenLogin(state, raw)
	if err != nil || !time.Now().Before(l.Expires) {
		return session.Login{}, session.ErrNotFound
	}
	return l, nil
}

// ClaimState implements session.Store with SET NX: the first claim on any
// node wins until until.
func (x *Sessions) ClaimState(ctx context.Context, state string, until time.Time) (bool, error) {
	if !time.Now().Before(until) {
		return false, nil
	}
	err := x.st.client.SetArgs(ctx, x.stateKey("claim", state), "1", redis.SetArgs{Mode: "NX", ExpireAt: until}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("claim state", err)
	}
	return true, nil
}

// Ended implements session.EndWatcher. Like Subscribe, it returns only
// once the node's subscription is confirmed, and the channel closes when
// the subscription drops (announcements may have been lost).
func (x *Sessions) Ended(ctx context.Context) (<-chan string, error) {
	var ch <-chan string
	err := x.st.whenSubscribed(ctx, "session", session.ErrUnavailable, func() { ch = x.st.ended.subscribe(ctx) })
	return ch, err
}

// endHub fans session-ended announcements out to this node's watchers. A
// watcher that falls behind is cut off (its channel closed), so it knows to
// re-check rather than miss a logout.
type endHub struct {
	mu   sync.Mutex
	subs map[chan string]func() bool
}

const endBuffer = 1024

func (h *endHub) subscribe(ctx context.Context) <-chan string {
	ch := make(chan string, endBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan string]func() bool{}
	}
	h.subs[ch] = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.removeLocked(ch)
	})
	return ch
}

func (h *endHub) publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- id:
		default:
			h.removeLocked(ch)
		}
	}
}

func (h *endHub) drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		h.removeLocked(ch)
	}
}

func (h *endHub) removeLocked(ch chan string) {
	stop, ok := h.subs[ch]
	if !ok {
		return
	}
	delete(h.subs, ch)
	stop()
	close(ch)
}
