package liveconn

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/session"
)

// SessionIDs lists the sessions that hold live connections on this node.
func (r *Registry) SessionIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]struct{}{}
	var ids []string
	for c := range r.conns {
		id := c.meta.SessionID
		if _, ok := seen[id]; ok || id == "" {
			continue
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
	}
	return ids
}

// FollowEnded cuts, until ctx ends, this node's connections of every
// session a shared store announces as ended on any node (logout,
// revocation, failed refresh). Whenever the announcements may have been
// lost (the link to the store dropped), it asks the store about every
// session it holds connections for once the link is back, and cuts those
// that ended or that it cannot confirm: a logout made during an outage
// still closes the WebSockets, only later.
func (r *Registry) FollowEnded(ctx context.Context, w session.EndWatcher, st session.Store, log *zap.Logger) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := w.Ended(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		r.recheck(ctx, st, log)
		for id := range ch {
			if n := r.Close(func(m Meta) bool { return m.SessionID == id }); n > 0 {
				log.Info("closed live connections of a session ended on another node", zap.Int("connections", n))
			}
		}
	}
}

func (r *Registry) recheck(ctx context.Context, st session.Store, log *zap.Logger) {
	for _, id := range r.SessionIDs() {
		_, err := st.GetSession(ctx, id)
		if err == nil {
			continue
		}
		n := r.Close(func(m Meta) bool { return m.SessionID == id })
		if !errors.Is(err, session.ErrNotFound) {
			log.Warn("closed live connections of a session the store could not confirm", zap.Int("connections", n), zap.Error(err))
		}
	}
}
