package app

import (
	"context"

	"errors"
	"fmt"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/redis/go-redis/v9"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/session"
)

// openSessionStore keeps sessions where the rooms are: in Redis with
// store.kind redis, so every node reads every session and a logout on one
// node cuts the session's live connections on all of them; in this
// process's memory otherwise (meetguard dev, one node).
func openSessionStore(ctx context.Context, cfg *config.Config, roomStore rooms.Store) (session.Store, error) {
	rs, ok := roomStore.(*redisstore.Store)
	if !ok {
		return session.NewMemory(ctx, session.MemoryOptions{}), nil
	}
	sealer, err := session.NewSealer([]byte(cfg.Session.Secret))
	if err != nil {
		return nil, fmt.Errorf("session.secret: %w", err)
	}
	return rs.Sessions(sealer), nil
}

// openRoomStore builds the room state store from store.kind and seeds the
// permanent rooms. A Redis that is down at start does not stop the node:
// rooms fail closed (503) until it is back, and seeding is retried until
// ctx ends.
func openRoomStore(ctx context.Context, cfg *config.Config, log *zap.Logger, sec *metrics.Set) (rooms.Store, error) {
	var st rooms.Store
	switch cfg.Store.Kind {
	case "redis":
		r := cfg.Store.Redis
		rs, err := redisstore.New(ctx, redisstore.Options{Server: &redisstore.ClientOptions{
			Addr: r.Addr, Password: r.Password, DB: r.DB,
			SentinelMaster: r.Sentinel.Master, SentinelAddrs: r.Sentinel.Addrs, SentinelPassword: r.Sentinel.Password,
		}, Rooms: cfg.Rooms.State(), Logger: log, Hooks: []redis.Hook{sec.RedisHook()}})
		if err != nil {
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = rs.CheckServer(cctx)
		cancel()
		if err != nil {
			_ = rs.Close()
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		st = rs
	default:
		ms, err := memstore.New(ctx, memstore.Options{Rooms: cfg.Rooms.State(), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("rooms: %w", err)
		}
		st = ms
	}
	seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
	err := rooms.Seed(ctx, st, seeds)
	switch {
	case err == nil:
	case errors.Is(err, rooms.ErrStoreUnavailable):
		log.Warn("room store unavailable at start; permanent rooms will be seeded when it is back", zap.Error(err))
		go func() {
			for ctx.Err() == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				if err := rooms.Seed(ctx, st, seeds); err == nil {
					log.Info("permanent rooms seeded")
					return
				}
			}
		}()
	default:
		_ = st.Close()
		return nil, fmt.Errorf("rooms.permanent: %w", err)
	}
	return st, nil
}

// e2eeStore keeps the end-to-end key exchange's state where the rooms are:
// in Redis with store.kind redis, so any node serves any member and a kick
// on one node cuts keys on all of them; in this process's memory otherwise.
func e2eeStore(roomStore rooms.Store) e2eestore.Store {
	if rs, ok := roomStore.(*redisstore.Store); ok {
		return rs.E2EE()
	}
	return e2eestore.NewMemory(nil)
}
