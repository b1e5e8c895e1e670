// Package redisstore keeps room state in Redis so that any number of gateway
// nodes enforce one capacity, one ban list, one lobby and one set of rate
// limits. Every check-and-change is a single Lua script, atomic in Redis,
// and publishes its event from inside the script; every node relays those
// events to its own subscribers.
//
// It must never admit on state it did not just read from Redis: there is no
// cache, and when Redis cannot be reached every operation fails with an
// error wrapping rooms.ErrStoreUnavailable. It needs a single Redis (or a
// Sentinel-managed primary); Redis Cluster is not supported because the
// rate-limit and outcome keys of one operation may live in different slots.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/internal/eventhub"
)

// Options configure a Store.
type Options struct {
	// Client is a shared client; Close leaves it open. Give it short
	// timeouts (see URL) so a dead Redis fails requests fast.
	Client redis.UniversalClient
	// URL (redis:// or rediss://) is used when Client is nil; the store
	// then owns a client with 1s dial/read/write timeouts, one retry and
	// one dial attempt per try, so an outage fails requests in
	// milliseconds (refused) to about two seconds (unreachable).
	URL string
	// Server is used when Client and URL are empty: one Redis or a
	// Sentinel-managed primary (NewClient); the store owns that client.
	Server *ClientOptions
	// KeyPrefix namespaces every key and the event channel. Default
	// "meetguard:".
	KeyPrefix string
	Rooms     rooms.Config
	// Logger; default zap.NewNop().
	Logger *zap.Logger
	// Hooks are added to the client the store creates from URL or Server
	// (metrics); a caller passing Client adds its own.
	Hooks []redis.Hook
	// ReplicaAckTimeout, when positive, makes Admit wait (WAIT 1) until a
	// replica has the admission, and fail closed if none does in time
	// (replicaack.go). At most MaxReplicaAckTimeout.
	ReplicaAckTimeout time.Duration
}

// Store is the Redis rooms.Store.
type Store struct {
	client    redis.UniversalClient
	ownClient bool
	prefix    string
	channel   string
	// sessChannel carries the IDs of deleted sessions (sessions.go) on
	// the same subscription as room events.
	sessChannel string
	ended       endHub
	// e2eeChannel carries the names of e2ee counters that changed
	// (e2ee.go), waking long-polls on every node.
	e2eeChannel string
	counters    counterHub
	cfg         rooms.Config
	ackTimeout  time.Duration // Options.ReplicaAckTimeout
	log         *zap.Logger
	hub         eventhub.Hub
	common      []any // ARGV 2..7 of every room script (after the room id)
	stop        context.CancelFunc
	done        chan struct{}

	mu      sync.Mutex
	closed  bool
	ps      *redis.PubSub // the relay's subscription, closed by Close to unblock it
	healthy bool          // the event subscription is confirmed
	down    bool          // the last subscription attempt failed
	changed chan struct{} // closed and replaced when healthy changes
}

var _ rooms.Store = (*Store)(nil)

// New returns a store and starts relaying events until ctx ends or Close.
// It does not wait for Redis: operations fail with ErrStoreUnavailable
// until it is reachable.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := o.Rooms.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "meetguard:"
	}
	s := &Store{client: o.Client, prefix: o.KeyPrefix, channel: o.KeyPrefix + "events", sessChannel: o.KeyPrefix + "sessions",
		e2eeChannel: o.KeyPrefix + "e2ee",
		cfg:         o.Rooms.WithDefaults(), log: o.Logger, done: make(chan struct{}), changed: make(chan struct{})}
	if o.ReplicaAckTimeout < 0 || o.ReplicaAckTimeout > MaxReplicaAckTimeout {
		return nil, &rooms.InvalidError{Field: "store.redis.replica_ack_timeout", Reason: "must be between 0 and " + MaxReplicaAckTimeout.String()}
	}
	s.ackTimeout = o.ReplicaAckTimeout
	if s.client == nil && o.URL == "" && o.Server != nil {
		c, err := NewClient(*o.Server)
		if err != nil {
			return nil, &rooms.InvalidError{Field: "store.redis", Reason: err.Error()}
		}
		s.client, s.ownClient = c, true
	}
	if s.client == nil {
		if o.URL == "" {
			return nil, &rooms.InvalidError{Field: "store.redis.url", Reason: "required"}
		}
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, &rooms.InvalidError{Field: "store.redis.url", Reason: err.Error()}
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = time.Second, time.Second, time.Second, time.Second
		opt.MaxRetries, opt.DialerRetries = 1, 1
		s.client, s.ownClient = redis.NewClient(opt), true
	}
	if s.ownClient {
		for _, h := range o.Hooks {
			s.client.AddHook(h)
		}
	}
	c := s.cfg
	s.common = []any{s.channel, c.ParticipantLease.Milliseconds(), c.EmptyRoomTTL.Milliseconds(),
		c.BanTTL.Milliseconds(), c.WaitTTL.Milliseconds(), rooms.OutcomeTTL.Milliseconds()}
	ctx, s.stop = context.WithCancel(ctx)
	go s.relay(ctx)
	return s, nil
}

// Close stops relaying, closes every subscription, and closes the client if
// the store created it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	s.stop()
	if ps != nil {
		_ = ps.Close()
	}
	<-s.done
	s.hub.Drop()
	s.ended.drop()
	s.counters.drop()
	if s.ownClient {
		return s.client.Close()
	}
	return nil
}

func (s *Store) roomKeys(room string) []string {
	base := s.prefix + "{" + room + "}:"
	return []string{base + "m", base + "p", base + "l", base + "w", base + "q", base + "b"}
}

// unavailable wraps a Redis failure. A Lua error reply means a bug here, not
// an outage, but either way nothing happened and the caller must fail
// closed.
func (s *Store) unavailable(op string, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.log.Error("redisstore.script_failed", zap.String("op", op), zap.Error(err))
	}
	return fmt.Errorf("%w: redisstore %s: %w", rooms.ErrStoreUnavailable, op, err)
}

// run executes a room script and returns its reply with the status word
// already mapped to an error.
func (s *Store) run(ctx context.Context, op string, sc *redis.Script, room string, args ...any) ([]any, error) {
	v, err := sc.Run(ctx, s.client, s.roomKeys(room), s.roomArgs(room, args...)...).Slice()
	if err != nil {
		return nil, s.unavailable(op, err)
	}
	if len(v) == 0 {
		return nil, s.unavailable(op, errors.New("empty reply"))
	}
	return s.status(op, v)
}

// roomArgs is the ARGV of a room script: the prelude's 1-8, then args.
func (s *Store) roomArgs(room string, args ...any) []any {
	argv := make([]any, 0, 8+len(args))
	argv = append(argv, room)
	argv = append(argv, s.common...)
	argv = append(argv, s.prefix+"{"+room+"}:o:")
	return append(argv, args...)
}

// status maps a room script's status word (v[0]) to an error.
func (s *Store) status(op string, v []any) ([]any, error) {
	st, _ := v[0].(string)
	switch st {
	case "ok", "missing", "outcome", "waiting":
		return v, nil
	case "notfound":
		return nil, rooms.ErrNotFound
	case "exists":
		return nil, rooms.ErrExists
	case "banned":
		return nil, rooms.ErrBanned
	case "locked":
		return nil, rooms.ErrLocked
	case "full":
		return nil, rooms.ErrRoomFull
	case "lobbyfull":
		return nil, rooms.ErrLobbyFull
	case "notadmitted":
		return nil, rooms.ErrNotAdmitted
	case "notgranted":
		return nil, rooms.ErrRoleNotGranted
	case "lasthost":
		return nil, rooms.ErrLastHost
	}
	return nil, s.unavailable(op, fmt.Errorf("unexpected reply %q", st))
}

// Put implements rooms.Store.
func (s *Store) Put(ctx context.Context, id string, owner rooms.SubjectKey, ch rooms.SettingsChange) (bool, error) {
	return s.put(ctx, id, owner, ch, false)
}

// Create implements rooms.Store: the existence check and the creation are
// one script.
func (s *Store) Create(ctx context.Context, id string, owner rooms.SubjectKey, ch rooms.SettingsChange) error {
	_, err := s.put(ctx, id, owner, ch, true)
	return err
}

func (s *Store) put(ctx context.Context, id string, owner rooms.SubjectKey, ch rooms.SettingsChange, createOnly bool) (bool, error) {
	if err := rooms.ValidateRoomID(id); err != nil {
		return false, err
	}
	if err := owner.Validate(); err != nil {
		return false, err
	}
	if err := ch.Validate(s.cfg); err != nil {
		return false, err
	}
	fields := map[string]string{}
	if ch.Capacity != nil {
		fields["cap"] = strconv.Itoa(*ch.Capacity)
	}
	setFlag(fields, "locked", ch.Locked)
	setFlag(fields, "lobby", ch.LobbyEnabled)
	setFlag(fields, "e2ee", ch.E2EERequired)
	setFlag(fields, "perm", ch.Permanent)
	if ch.PasscodeHash != nil {
		fields["pass"] = *ch.PasscodeHash
	}
	if ch.Tags != nil {
		tags := *ch.Tags
		if tags == nil {
			tags = []string{}
		}
		b, _ := json.Marshal(tags)
		fields["tags"] = string(b)
	}
	change, _ := json.Marshal(fields)
	op := "put"
	if createOnly {
		op = "create"
	}
	v, err := s.run(ctx, op, putScript, id, string(owner), s.cfg.DefaultCapacity, string(change), flag(createOnly))
	if err != nil {
		return false, err
	}
	return len(v) == 2 && v[1] == int64(1), nil
}

func setFlag(m map[string]string, k string, v *bool) {
	if v != nil {
		m[k] = flag(*v)
	}
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Room implements rooms.Store.
func (s *Store) Room(ctx context.Context, id string) (rooms.Room, error) {
	if err := rooms.ValidateRoomID(id); err != nil {
		return rooms.Room{}, err
	}
	v, err := s.run(ctx, "room", roomViewScript, id)
	if err != nil {
		return rooms.Room{}, err
	}
	if len(v) != 5 {
		return rooms.Room{}, s.unavailable("room", errShortReply)
	}
	m := pairs(v[1])
	out := rooms.Room{ID: id, Participants: []rooms.Participant{}, Waiting: []rooms.WaitEntry{}, Bans: []rooms.Ban{}}
	out.Owner, out.Settings, out.Permanent, out.CreatedAt = rooms.SubjectKey(m["owner"]), settings(m), m["perm"] == "1", millis(m["created"])
	out.PasscodeSet = out.PasscodeHash != ""
	for pid, raw := range pairs(v[2]) {
		p, err := decodeParticipant(pid, raw)
		if err != nil {
			return rooms.Room{}, s.unavailable("room", err)
		}
		out.Participants = append(out.Participants, p)
	}
	for wid, raw := range pairs(v[3]) {
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return rooms.Room{}, s.unavailable("room", err)
		}
		out.Waiting = append(out.Waiting, rooms.WaitEntry{ID: rooms.WaitID(wid), Subject: rooms.SubjectKey(r.S),
			Name: r.N, Role: rooms.Role(r.R), Since: time.UnixMilli(r.T), Device: r.D, LastSeen: time.UnixMilli(max(r.H, r.T)),
			EmailDomain: r.E, Verdict: splitVerdict(r.V)})
	}
	for subject, raw := range pairs(v[4]) {
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return rooms.Room{}, s.unavailable("room", err)
		}
		out.Bans = append(out.Bans, rooms.Ban{Subject: rooms.SubjectKey(subject), Name: r.N, At: time.UnixMilli(r.A)})
	}
	out.Sort()
	return out, nil
}

// Facts implements rooms.Store.
func (s *Store) Facts(ctx context.Context, id string, subject rooms.SubjectKey) (rooms.Facts, error) {
	if err := rooms.ValidateRoomID(id); err != nil {
		return rooms.Facts{}, err
	}
	if subject != "" {
		if err := subject.Validate(); err != nil {
			return rooms.Facts{}, err
		}
	}
	v, err := s.run(ctx, "facts", factsScript, id, string(subject))
	if err != nil {
		return rooms.Facts{}, err
	}
	return s.factsReply("facts", v)
}

// factsReply decodes the facts function's {'missing', banned} or {'ok',
// banned, participants, meta hash}.
func (s *Store) factsReply(op string, v []any) (rooms.Facts, error) {
	f := rooms.Facts{Tags: []string{}}
	if len(v) < 2 {
		return rooms.Facts{}, s.unavailable(op, errShortReply)
	}
	f.Banned = v[1] == int64(1)
	if v[0] == "missing" {
		return f, nil
	}
	if len(v) != 4 || v[0] != "ok" {
		return rooms.Facts{}, s.unavailable(op, errShortReply)
	}
	n, _ := v[2].(int64)
	m := pairs(v[3])
	st := settings(m)
	hosts, _ := strconv.Atoi(m["hosts"])
	f.Exists, f.Owner, f.Capacity, f.Occupancy = true, rooms.SubjectKey(m["owner"]), st.Capacity, int(n)
	f.Locked, f.LobbyEnabled, f.HostPresent = st.Locked, st.LobbyEnabled, hosts > 0
	f.PasscodeRequired, f.PasscodeHash, f.E2EERequired, f.Tags = st.PasscodeHash != "", st.PasscodeHash, st.E2EERequired, st.Tags
	return f, nil
}

// Admit implements rooms.Store.
func (s *Store) Admit(ctx context.Context, a rooms.Admission) (rooms.Participant, error) {
	if err := a.Validate(); err != nil {
		return rooms.Participant{}, err
	}
	pid := rooms.NewParticipantID()
	v, err := s.runAcked(ctx, "admit", admitScript, a.Room, string(pid), string(a.Subject), string(a.Role), a.Name)
	if errors.Is(err, errNotReplicated) {
		// Written on the primary only: undo it, so that the seat is not
		// held by an admission nobody was told about.
		if lerr := s.Leave(ctx, a.Room, pid); lerr != nil && !errors.Is(lerr, rooms.ErrNotAdmitted) {
			s.log.Warn("redisstore.unreplicated_admission_not_undone", zap.String("room", a.Room), zap.Error(lerr))
		}
		return rooms.Participant{}, err
	}
	if err != nil {
		return rooms.Participant{}, err
	}
	at, _ := v[1].(int64)
	return rooms.Participant{ID: pid, Subject: a.Subject, Name: a.Name, Role: a.Role, JoinedAt: time.UnixMilli(at)}, nil
}

// Touch implements rooms.Store.
func (s *Store) Touch(ctx context.Context, room string, pid rooms.ParticipantID) (rooms.Participant, error) {
	if err := validRoomAndPID(room, pid); err != nil {
		return rooms.Participant{}, err
	}
	v, err := s.run(ctx, "touch", touchScript, room, string(pid))
	if err != nil {
		return rooms.Participant{}, err
	}
	raw, _ := v[1].(string)
	p, err := decodeParticipant(string(pid), raw)
	if err != nil {
		return rooms.Participant{}, s.unavailable("touch", err)
	}
	return p, nil
}

// Leave implements rooms.Store.
func (s *Store) Leave(ctx context.Context, room string, pid rooms.ParticipantID) error {
	if err := validRoomAndPID(room, pid); err != nil {
		return err
	}
	_, err := s.run(ctx, "leave", leaveScript, room, string(pid))
	return err
}

// Remove implements rooms.Store.
func (s *Store) Remove(ctx context.Context, room string, pid rooms.ParticipantID, ban bool) (rooms.Removal, error) {
	if err := validRoomAndPID(room, pid); err != nil {
		return rooms.Removal{}, err
	}
	v, err := s.run(ctx, "remove", removeScript, room, string(pid), flag(ban))
	if err != nil {
		return rooms.Removal{}, err
	}
	if len(v) != 3 {
		return rooms.Removal{}, s.unavailable("remove", errShortReply)
	}
	subject, _ := v[1].(string)
	return rooms.Removal{Room: room, Subject: rooms.SubjectKey(subject), Revoked: participantIDs(v[2])}, nil
}

// SetRole implements rooms.Store.
func (s *Store) SetRole(ctx context.Context, room string, pid rooms.ParticipantID, role rooms.Role) (rooms.RoleChange, error) {
	if err := validRoomAndPID(room, pid); err != nil {
		return rooms.RoleChange{}, err
	}
	if err := role.Validate(); err != nil {
		return rooms.RoleChange{}, err
	}
	v, err := s.run(ctx, "set_role", setRoleScript, room, string(pid), string(role))
	if err != nil {
		return rooms.RoleChange{}, err
	}
	if len(v) != 3 {
		return rooms.RoleChange{}, s.unavailable("set_role", errShortReply)
	}
	from, _ := v[1].(string)
	raw, _ := v[2].(string)
	p, err := decodeParticipant(string(pid), raw)
	if err != nil {
		return rooms.RoleChange{}, s.unavailable("set_role", err)
	}
	return rooms.RoleChange{Participant: p, From: rooms.Role(from)}, nil
}

// Unban implements rooms.Store.
func (s *Store) Unban(ctx context.Context, room string, subject rooms.SubjectKey) error {
	if err := rooms.ValidateRoomID(room); err != nil {
		return err
	}
	if err := subject.Validate(); err != nil {
		return err
	}
	if err := s.client.HDel(ctx, s.roomKeys(room)[5], string(subject)).Err(); err != nil {
		return s.unavailable("unban", err)
	}
	return nil
}

// IsBanned implements rooms.Store.
func (s *Store) IsBanned(ctx context.Context, room string, subject rooms.SubjectKey) (bool, error) {
	if err := rooms.ValidateRoomID(room); err != nil {
		return false, err
	}
	if err := subject.Validate(); err != nil {
		return false, err
	}
	ok, err := s.client.HExists(ctx, s.roomKeys(room)[5], string(subject)).Result()
	if err != nil {
		return false, s.unavailable("is_banned", err)
	}
	return ok, nil
}

// Knock implements rooms.Store.
func (s *Store) Knock(ctx context.Context, a rooms.Admission) (rooms.WaitEntry, error) {
	if err := a.Validate(); err != nil {
		return rooms.WaitEntry{}, err
	}
	wid := rooms.NewWaitID()
	v, err := s.run(ctx, "knock", knockScript, a.Room, string(wid), string(a.Subject), string(a.Role), a.Name,
		s.cfg.LobbyPerRoom, s.cfg.KnockTTL.Milliseconds(), a.Device, a.EmailDomain, strings.Join(a.Verdict, ","))
	if err != nil {
		return rooms.WaitEntry{}, err
	}
	at, _ := v[1].(int64)
	return rooms.WaitEntry{ID: wid, Subject: a.Subject, Name: a.Name, Role: a.Role, Since: time.UnixMilli(at),
		Device: a.Device, LastSeen: time.UnixMilli(at), EmailDomain: a.EmailDomain, Verdict: slices.Clone(a.Verdict)}, nil
}

// Heartbeat implements rooms.Store.
func (s *Store) Heartbeat(ctx context.Context, room string, wid rooms.WaitID) error {
	if err := validRoomAndWait(room, wid); err != nil {
		return err
	}
	_, err := s.run(ctx, "heartbeat", heartbeatScript, room, string(wid), s.cfg.KnockTTL.Milliseconds())
	return err
}

// AdmitWaiting implements rooms.Store.
func (s *Store) AdmitWaiting(ctx context.Context, room string, wid rooms.WaitID) (rooms.Participant, error) {
	if err := validRoomAndWait(room, wid); err != nil {
		return rooms.Participant{}, err
	}
	pid := rooms.NewParticipantID()
	v, err := s.run(ctx, "admit_waiting", admitWaitingScript, room, string(wid), string(pid))
	if err != nil {
		return rooms.Participant{}, err
	}
	raw, _ := v[1].(string)
	p, err := decodeParticipant(string(pid), raw)
	if err != nil {
		return rooms.Participant{}, s.unavailable("admit_waiting", err)
	}
	return p, nil
}

// DenyWaiting implements rooms.Store.
func (s *Store) DenyWaiting(ctx context.Context, room string, wid rooms.WaitID, ban bool) error {
	if err := validRoomAndWait(room, wid); err != nil {
		return err
	}
	_, err := s.run(ctx, "deny_waiting", denyWaitingScript, room, string(wid), flag(ban))
	return err
}

// WaitStatus implements rooms.Store.
func (s *Store) WaitStatus(ctx context.Context, room string, wid rooms.WaitID) (rooms.Outcome, error) {
	if err := validRoomAndWait(room, wid); err != nil {
		return rooms.Outcome{}, err
	}
	v, err := s.run(ctx, "wait_status", waitStatusScript, room, string(wid))
	if err != nil {
		return rooms.Outcome{}, err
	}
	raw, _ := v[1].(string)
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return rooms.Outcome{}, s.unavailable("wait_status", err)
	}
	o := rooms.Outcome{Wait: wid, Status: rooms.Waiting, Subject: rooms.SubjectKey(r.S)}
	if v[0] == "outcome" {
		switch r.St {
		case "admitted":
			o.Status = rooms.Admitted
			o.Participant = rooms.Participant{ID: rooms.ParticipantID(r.ID), Subject: o.Subject, Name: r.N,
				Role: rooms.Role(r.R), JoinedAt: time.UnixMilli(r.J)}
		default:
			o.Status = rooms.Denied
		}
	}
	return o, nil
}

// Await implements rooms.Store.
func (s *Store) Await(ctx context.Context, room string, wid rooms.WaitID) (rooms.Outcome, error) {
	return eventhub.Await(ctx, &s.hub, room, func(ctx context.Context) (rooms.Outcome, error) {
		return s.WaitStatus(ctx, room, wid)
	})
}

// Lock implements rooms.Store.
func (s *Store) Lock(ctx context.Context, room string) error { return s.setLock(ctx, room, true) }

// Unlock implements rooms.Store.
func (s *Store) Unlock(ctx context.Context, room string) error { return s.setLock(ctx, room, false) }

func (s *Store) setLock(ctx context.Context, room string, locked bool) error {
	if err := rooms.ValidateRoomID(room); err != nil {
		return err
	}
	_, err := s.run(ctx, "lock", lockScript, room, flag(locked))
	return err
}

// Suspend implements rooms.Store.
func (s *Store) Suspend(ctx context.Context, room string) (rooms.Removal, error) {
	if err := rooms.ValidateRoomID(room); err != nil {
		return rooms.Removal{}, err
	}
	v, err := s.run(ctx, "suspend", suspendScript, room)
	if err != nil {
		return rooms.Removal{}, err
	}
	return rooms.Removal{Room: room, Revoked: participantIDs(v[1])}, nil
}

// record is how the scripts store participants (s r n j), knocks (s r n t d h),
// bans (n a) and outcomes (st s id r n j).
type record struct {
	S  string `json:"s"`
	R  string `json:"r"`
	N  string `json:"n"`
	J  int64  `json:"j"`
	T  int64  `json:"t"`
	A  int64  `json:"a"`
	St string `json:"st"`
	ID string `json:"id"`
	D  string `json:"d"`
	H  int64  `json:"h"`
	E  string `json:"e"`
	V  string `json:"v"`
}

// splitVerdict undoes the comma-joined WaitEntry.Verdict of a knock record.
func splitVerdict(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func decodeParticipant(pid, raw string) (rooms.Participant, error) {
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return rooms.Participant{}, fmt.Errorf("participant %s: %w", pid, err)
	}
	return rooms.Participant{ID: rooms.ParticipantID(pid), Subject: rooms.SubjectKey(r.S), Name: r.N,
		Role: rooms.Role(r.R), JoinedAt: time.UnixMilli(r.J)}, nil
}

func settings(m map[string]string) rooms.Settings {
	st := rooms.Settings{Locked: m["locked"] == "1", LobbyEnabled: m["lobby"] == "1", PasscodeHash: m["pass"],
		E2EERequired: m["e2ee"] == "1", Tags: []string{}}
	st.Capacity, _ = strconv.Atoi(m["cap"])
	_ = json.Unmarshal([]byte(m["tags"]), &st.Tags)
	if st.Tags == nil {
		st.Tags = []string{}
	}
	return st
}

// pairs turns an HGETALL reply into a map.
func pairs(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return m
}

func participantIDs(v any) []rooms.ParticipantID {
	list, _ := v.([]any)
	out := make([]rooms.ParticipantID, 0, len(list))
	for _, x := range list {
		if id, ok := x.(string); ok {
			out = append(out, rooms.ParticipantID(id))
		}
	}
	return out
}

func millis(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(n)
}

func validRoomAndPID(room string, pid rooms.ParticipantID) error {
	return errors.Join(rooms.ValidateRoomID(room), pid.Validate())
}

func validRoomAndWait(room string, wid rooms.WaitID) error {
	return errors.Join(rooms.ValidateRoomID(room), wid.Validate())
}

var errShortReply = errors.New("short reply")

// ErrClusterUnsupported is returned by CheckServer for a Redis Cluster
// node. The store's scripts and transactions touch keys of several slots
// (a room's state with the subject's rate-limit counters, a session with
// the sessions channel, the e2ee name index with every entry), which Redis
// Cluster refuses (CROSSSLOT) or serves from the wrong shard; hash tags
// would put whole rooms, or the whole e2ee state, in one slot and so on
// one shard, which buys no scaling. One primary, with Sentinel for
// failover, is the supported deployment.
var ErrClusterUnsupported = errors.New("the server runs Redis Cluster, which is not supported: give store.redis one primary (or store.redis.sentinel)")

// CheckServer asks the server whether it runs in cluster mode and returns
// ErrClusterUnsupported if so, for a gateway to refuse to start on a
// configuration it cannot serve. A server it cannot reach is not an error
// here: every operation fails closed until it can.
func (s *Store) CheckServer(ctx context.Context) error {
	info, err := s.client.Info(ctx, "cluster").Result()
	if err != nil {
		return nil
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return ErrClusterUnsupported
	}
	return nil
}
