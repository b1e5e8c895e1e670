package redisstore

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions name the Redis every node shares: one server (Addr), or
// the primary a set of Sentinels elect (SentinelMaster and SentinelAddrs).
type ClientOptions struct {
	Addr     string
	Password string
	DB       int
	// SentinelMaster is the name the Sentinels monitor; with it the
	// client asks SentinelAddrs for the current primary and follows a
	// failover without a restart.
	SentinelMaster   string
	SentinelAddrs    []string
	SentinelPassword string
}

// NewClient returns a client with short timeouts, so that a dead Redis (or
// one in the middle of a failover) fails requests in milliseconds to about
// two seconds, and every node fails closed instead of queueing.
func NewClient(o ClientOptions) (redis.UniversalClient, error) {
	const timeout = time.Second
	if o.SentinelMaster != "" {
		if len(o.SentinelAddrs) == 0 {
			return nil, errors.New("store.redis.sentinel.addrs: required with sentinel.master")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.SentinelMaster, SentinelAddrs: o.SentinelAddrs, SentinelPassword: o.SentinelPassword,
			Password: o.Password, DB: o.DB,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
			MaxRetries: 1, DialerRetries: 1,
		}), nil
	}
	if o.Addr == "" {
		return nil, errors.New("store.redis.addr: required")
	}
	return redis.NewClient(&redis.Options{
		Addr: o.Addr, Password: o.Password, DB: o.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
		MaxRetries: 1, DialerRetries: 1,
	}), nil
}
