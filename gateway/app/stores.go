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

	"github.com/meetguard/meetguard/gateway/audit"
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
// rooms fail closed (503) until it is back, and seeded is false so that
// keepPermanentRooms seeds them then.
func openRoomStore(ctx context.Context, cfg *config.Config, log *zap.Logger, sec *metrics.Set) (_ rooms.Store, seeded bool, err error) {
	var st rooms.Store
	switch cfg.Store.Kind {
	case "redis":
		r := cfg.Store.Redis
		rs, err := redisstore.New(ctx, redisstore.Options{Server: &redisstore.ClientOptions{
			Addr: r.Addr, Password: r.Password, DB: r.DB,
			SentinelMaster: r.Sentinel.Master, SentinelAddrs: r.Sentinel.Addrs, SentinelPassword: r.Sentinel.Password,
		}, Rooms: cfg.Rooms.State(), Logger: log, Hooks: []redis.Hook{sec.RedisHook()}, ReplicaAckTimeout: r.ReplicaAckTimeout})
		if err != nil {
			return nil, false, fmt.Errorf("store.redis: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = rs.CheckServer(cctx)
		cancel()
		if err != nil {
			_ = rs.Close()
			return nil, false, fmt.Errorf("store.redis: %w", err)
		}
		st = rs
	default:
		ms, err := memstore.New(ctx, memstore.Options{Rooms: cfg.Rooms.State(), Logger: log})
		if err != nil {
			return nil, false, fmt.Errorf("rooms: %w", err)
		}
		st = ms
	}
	seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
	err = rooms.Seed(ctx, st, seeds)
	switch {
	case err == nil:
		seeded = true
	case errors.Is(err, rooms.ErrStoreUnavailable):
		log.Warn("room store unavailable at start; permanent rooms will be seeded when it is back", zap.Error(err))
	default:
		_ = st.Close()
		return nil, false, fmt.Errorf("rooms.permanent: %w", err)
	}
	return st, seeded, nil
}

// reseedEvery is how often a node checks that the permanent rooms still
// exist (one Create per room, which changes nothing when the room is
// there). It bounds how long a FLUSHALL, which no connection notices,
// keeps a permanent room away.
const reseedEvery = 5 * time.Second

// keepPermanentRooms re-creates the permanent rooms the store lost — a
// Redis restarted without its data, a FLUSHALL — without a node restart:
// at once whenever this node's link to the store comes back (Subscribe
// succeeds again after its channel closed), and every reseedEvery. It
// creates only rooms that are missing (rooms.SeedMissing), so a room that
// survived keeps its lock, bans, participants and a host's settings. While
// the store is down it only waits: joins fail closed (503) meanwhile.
//
// A node that could not seed at start (seeded false) seeds as start would
// (rooms.Seed: the configuration's settings win) the first time the store
// answers, once, and only re-creates missing rooms after that.
//
// Each re-created room is put on the audit record (rec, room.recreated):
// it came back unlocked and without its bans, a security-relevant change
// nobody asked for. Only the node whose create succeeded writes it.
func keepPermanentRooms(ctx context.Context, st rooms.Store, seeds []rooms.ConfiguredRoom, seeded bool, rec audit.Recorder, log *zap.Logger) {
	if len(seeds) == 0 {
		return
	}
	reseed := func() {
		if !seeded {
			if err := rooms.Seed(ctx, st, seeds); err != nil {
				log.Debug("permanent rooms not seeded; the store is unavailable", zap.Error(err))
				return
			}
			seeded = true
			log.Info("permanent rooms seeded")
			return
		}
		created, err := rooms.SeedMissing(ctx, st, seeds)
		if len(created) > 0 {
			// Everything else of these rooms (participants, lock, bans)
			// was lost with them: an operator should know.
			log.Warn("permanent rooms were missing from the store and are created again", zap.Strings("rooms", created))
		}
		// The rooms exist again whether or not this node is stopping:
		// their records are written and awaited even then (Close waits
		// for the keeper before it closes the audit log), bounded so that
		// a stuck disk cannot hold a shutdown forever.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, id := range created {
			// The room stays re-created when its record cannot be
			// written: a permanent room with its configured settings is
			// what any node start creates, so it opens nothing a start
			// would not; removing it again would only refuse every join.
			// The failure is logged instead, for the operator.
			if err := audit.Write(actx, rec, audit.RoomRecreated(id, audit.ReasonStoreDataLost)); err != nil {
				log.Error("audit permanent room re-created", zap.String("room", id), zap.Error(err))
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("permanent rooms not checked; the store is unavailable", zap.Error(err))
		}
	}
	tick := time.NewTicker(reseedEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		// Subscribe fails at once while the link is down, so polling it
		// is cheap; a short wait keeps the rooms' absence after Redis
		// returns short.
		events, err := st.Subscribe(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		reseed() // the link is (back) up: Redis may have come back empty
		for open := true; open; {
			select {
			case <-ctx.Done():
				return
			case _, open = <-events:
			case <-tick.C:
				reseed()
			}
		}
	}
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
