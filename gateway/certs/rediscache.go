package certs

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

// RedisCache keeps the ACME account key and certificates in Redis, so
// every replica behind one name shares them: one replica's order serves
// all, and the CA's rate limit is spent once. The values include private
// keys: the Redis must be as private as the session store already is.
type RedisCache struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedisCache stores entries under prefix (e.g. "meetguard:acme:").
func NewRedisCache(c redis.UniversalClient, prefix string) *RedisCache {
	return &RedisCache{c: c, prefix: prefix}
}

// Get implements autocert.Cache.
func (r *RedisCache) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, autocert.ErrCacheMiss
	}
	return b, err
}

// Put implements autocert.Cache.
func (r *RedisCache) Put(ctx context.Context, key string, data []byte) error {
	return r.c.Set(ctx, r.prefix+key, data, 0).Err()
}

// Delete implements autocert.Cache.
func (r *RedisCache) Delete(ctx context.Context, key string) error {
	return r.c.Del(ctx, r.prefix+key).Err()
}
