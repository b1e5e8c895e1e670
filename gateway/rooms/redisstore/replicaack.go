package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// MaxReplicaAckTimeout bounds Options.ReplicaAckTimeout: WAIT blocks its
// connection, and the client's read timeout is 1 s.
const MaxReplicaAckTimeout = 500 * time.Millisecond

// errNotReplicated: the script ran on the primary but no replica
// acknowledged its write within the timeout. It wraps
// rooms.ErrStoreUnavailable, so the join fails closed (503).
var errNotReplicated = fmt.Errorf("%w: no replica acknowledged the admission in time", rooms.ErrStoreUnavailable)

// runAcked is run, then, with Options.ReplicaAckTimeout set, WAIT 1 on the
// same connection (one pipeline: WAIT counts the replicas that have this
// connection's writes). Replication is asynchronous, so without it a
// Sentinel failover right after the reply can lose an admission the client
// was told about; with it, a reply means a replica has the write. A status
// the script refused with (room full, banned, ...) wrote nothing and needs
// no replica.
func (s *Store) runAcked(ctx context.Context, op string, sc *redis.Script, room string, args ...any) ([]any, error) {
	if s.ackTimeout <= 0 {
		return s.run(ctx, op, sc, room, args...)
	}
	keys, argv := s.roomKeys(room), s.roomArgs(room, args...)
	exec := func(full bool) (cmd, wait *redis.Cmd) {
		pipe := s.client.Pipeline()
		if full {
			cmd = sc.Eval(ctx, pipe, keys, argv...)
		} else {
			cmd = sc.EvalSha(ctx, pipe, keys, argv...)
		}
		// WAIT is not on the Pipeliner interface; its timeout is in ms.
		wait = pipe.Do(ctx, "WAIT", 1, s.ackTimeout.Milliseconds())
		_, _ = pipe.Exec(ctx) // each command keeps its own error
		return cmd, wait
	}
	cmd, wait := exec(false)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") { // not in the script cache: nothing ran
		cmd, wait = exec(true)
	}
	v, err := cmd.Slice()
	if err != nil {
		return nil, s.unavailable(op, err)
	}
	if len(v) == 0 {
		return nil, s.unavailable(op, errors.New("empty reply"))
	}
	v, err = s.status(op, v)
	if err != nil {
		return nil, err
	}
	if n, err := wait.Int64(); err != nil || n < 1 {
		return v, fmt.Errorf("%w (%s, waited %v: %d replicas, %v)", errNotReplicated, op, s.ackTimeout, n, err)
	}
	return v, nil
}
