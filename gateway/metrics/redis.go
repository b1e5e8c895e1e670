package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisHook times every Redis command and pipeline of a client and counts
// the failed ones (client.AddHook). A missing key (redis.Nil) is an
// answer, not an error.
func (s *Set) RedisHook() redis.Hook { return redisHook{s} }

type redisHook struct{ s *Set }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && h.s != nil {
			h.s.redisErrors.Inc()
		}
		return c, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(start, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe(start, err)
		return err
	}
}

func (h redisHook) observe(start time.Time, err error) {
	if h.s == nil {
		return
	}
	h.s.redisLatency.Observe(time.Since(start).Seconds())
	// NOSCRIPT is go-redis asking for a script the server has not
	// cached yet; it sends the script at once.
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		h.s.redisErrors.Inc()
	}
}
