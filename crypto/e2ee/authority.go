package e2ee

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"go.uber.org/zap"
)

// AuthorityOptions configures the gateway side of one meeting instance of one room.
type AuthorityOptions struct {
	Room     string // required
	Instance string // required: the meeting instance id; a new meeting in the same room is a new instance
	// SigningKey is the gateway's credential-signing key; clients are configured with its public half. Required.
	SigningKey ed25519.PrivateKey
	// Store holds all state as bytes. Default: e2eestore.NewMemory(Clock).
	Store e2eestore.Store
	// AllowClassicKEM admits DHKEM(X25519) device keys; the room's policy decides. Default false: X-Wing only.
	AllowClassicKEM bool
	// NonceTTL is how long a registration nonce lives. Default 2 minutes.
	NonceTTL time.Duration
	// CredentialTTL is a credential's lifetime (its not_after). Default 24 hours.
	CredentialTTL time.Duration
	// MaxMembers caps the roster. Default 1000; at most 65535 (the SFrame KID's member index).
	MaxMembers int
	// KeyPackageInterval is the least time between two key packages of one member; a faster post is
	// ErrRateLimited. Default 1 second (an honest client posts one per epoch it opens and one per refresh).
	KeyPackageInterval time.Duration
	// RekeyInterval is the least time between two commits of one epoch (timer re-keys, recoveries); a faster
	// one is ErrRateLimited. Default 5 seconds.
	RekeyInterval time.Duration
	Clock         Clock       // default SystemClock
	Logger        *zap.Logger // default zap.NewNop()
	// OnEvent receives every registration, epoch, accepted bundle and rejected message, for the audit log.
	OnEvent func(context.Context, Event)
}

// Authority is the gateway side of the key exchange for one meeting instance of one room. It issues nonces
// and credentials, signs the roster chain and relays key packages and commits. It never holds an epoch secret,
// a base key or an SFrame key: it only ever sees epoch secrets HPKE-sealed to members' own key packages. It is
// safe for concurrent use.
type Authority struct {
	room, instance string
	key            ed25519.PrivateKey
	pub            ed25519.PublicKey
	store          e2eestore.Store
	allowClassic   bool
	nonceTTL       time.Duration
	credTTL        time.Duration
	maxMembers     int
	kpInterval     time.Duration
	rekeyInterval  time.Duration
	clock          Clock
	log            *zap.Logger
	onEvent        func(context.Context, Event)
	prefix         string

	mu      sync.Mutex
	head    *Roster              // nil before epoch 1
	members map[Hash]*Credential // credentials of the head's members; replaced, never mutated
}

// NewAuthority returns the Authority of opts.Room and opts.Instance, resuming from the state in opts.Store.
func NewAuthority(ctx context.Context, opts AuthorityOptions) (*Authority, error) {
	if err := checkText("authority", "room", opts.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText("authority", "instance", opts.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("e2ee: authority: signing key must be an Ed25519 private key")
	}
	a := &Authority{
		room:          opts.Room,
		instance:      opts.Instance,
		key:           opts.SigningKey,
		pub:           opts.SigningKey.Public().(ed25519.PublicKey),
		store:         opts.Store,
		allowClassic:  opts.AllowClassicKEM,
		nonceTTL:      opts.NonceTTL,
		credTTL:       opts.CredentialTTL,
		maxMembers:    opts.MaxMembers,
		kpInterval:    cmp.Or(opts.KeyPackageInterval, time.Second),
		rekeyInterval: cmp.Or(opts.RekeyInterval, 5*time.Second),
		clock:         opts.Clock,
		log:           opts.Logger,
		onEvent:       opts.OnEvent,
		prefix:        "e2ee/" + url.PathEscape(opts.Room) + "/" + url.PathEscape(opts.Instance) + "/",
		members:       map[Hash]*Credential{},
	}
	if a.clock == nil {
		a.clock = SystemClock{}
	}
	if a.store == nil {
		a.store = e2eestore.NewMemory(a.clock)
	}
	if a.nonceTTL <= 0 {
		a.nonceTTL = 2 * time.Minute
	}
	if a.credTTL <= 0 {
		a.credTTL = 24 * time.Hour
	}
	switch {
	case a.maxMembers <= 0:
		a.maxMembers = 1000
	case a.maxMembers > maxMembers:
		return nil, fmt.Errorf("e2ee: authority: MaxMembers %d above %d", a.maxMembers, maxMembers)
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	a.log = a.log.With(zap.String("room", a.room), zap.String("instance", a.instance))
	if err := a.load(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// load resumes from the stored head, refusing a store written for another key, room or instance.
func (a *Authority) load(ctx context.Context) error {
	raw, err := a.store.Get(ctx, a.k("head"))
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("e2ee: authority: load head: %w", err)
	}
	head, err := ParseRoster(raw)
	if err != nil {
		return fmt.Errorf("e2ee: authority: load head: %w", err)
	}
	if err := head.Verify(a.pub); err != nil {
		return fmt.Errorf("e2ee: authority: stored head not signed by this key: %w", err)
	}
	if head.Room != a.room || head.Instance != a.instance {
		return fmt.Errorf("e2ee: authority: stored head: %w", ErrContextMismatch)
	}
	return a.adopt(ctx, head)
}

// adopt makes head this Authority's head, loading its members' credentials; the caller holds a.mu or is
// NewAuthority.
func (a *Authority) adopt(ctx context.Context, head *Roster) error {
	members := make(map[Hash]*Credential, len(head.Members))
	for _, h := range head.Members {
		c, err := a.credential(ctx, h)
		if err != nil {
			return fmt.Errorf("e2ee: authority: load member %s: %w", h.Short(), err)
		}
		members[h] = c
	}
	a.head, a.members = head, members
	return nil
}

// reload catches up with epochs another Authority sharing the store has signed: it follows the stored chain
// from the head it knows. The caller holds a.mu.
func (a *Authority) reload(ctx context.Context) error {
	head := a.head
	var next uint64 = 1
	if head != nil {
		next = head.Epoch + 1
	}
	for {
		r, err := a.roster(ctx, next)
		if errors.Is(err, ErrUnknownEpoch) {
			break
		}
		if err != nil {
			return err
		}
		if err := r.Verify(a.pub); err != nil {
			return fmt.Errorf("e2ee: authority: stored epoch %d: %w", next, err)
		}
		if head != nil && !hashEqual(r.Prev, head.Hash()) {
			return fmt.Errorf("e2ee: authority: stored epoch %d: %w", next, ErrFork)
		}
		head, next = r, next+1
	}
	if head == nil || head == a.head {
		return nil
	}
	// The node that signed the epochs has counted the change; adopting them here is not another one.
	return a.adopt(ctx, head)
}

func (a *Authority) k(suffix string) string { return a.prefix + suffix }

func epochKey(kind string, epoch uint64) string { return fmt.Sprintf("%s/%020d/", kind, epoch) }

// PublicKey is the key clients verify credentials and rosters with.
func (a *Authority) PublicKey() ed25519.PublicKey { return a.pub }

// Room is the room this Authority serves.
func (a *Authority) Room() string { return a.room }

// Instance is the meeting instance this Authority serves.
func (a *Authority) Instance() string { return a.instance }

// Head returns the current roster epoch, or nil before the first admission.
func (a *Authority) Head() *Roster {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.head
}

// CurrentHead returns the head after following the epochs other gateway nodes sharing the store have signed;
// Head returns the head this Authority knows without asking the store.
func (a *Authority) CurrentHead(ctx context.Context) (*Roster, error) {
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	return a.Head(), nil
}

// Version is the change counter; it grows on every epoch and accepted bundle, on whichever gateway node
// sharing the store made the change.
func (a *Authority) Version(ctx context.Context) (uint64, error) {
	return a.store.Counter(ctx, a.k(versionKey))
}

// Wait blocks until the version exceeds after or ctx ends, and returns the version. HTTP long-polls use it; the
// store wakes them on every node sharing it.
func (a *Authority) Wait(ctx context.Context, after uint64) (uint64, error) {
	return a.store.WaitAbove(ctx, a.k(versionKey), after)
}

// versionKey holds the change counter: a wake-up hint for clients, shared by every node.
const versionKey = "version"

// bump counts a change and wakes waiters on every node. The change is made and stored already, so a failure
// only delays the waiters until their long-poll ends (they then ask again); it is logged, not returned.
func (a *Authority) bump(ctx context.Context) {
	if _, err := a.store.Incr(ctx, a.k(versionKey)); err != nil {
		a.log.Warn("e2ee.version", zap.Error(err))
	}
}

// Purge deletes all stored state of this meeting instance; call it when the meeting ends. The Authority then
// has no roster, as before the first admission.
func (a *Authority) Purge(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The change counter goes too: the store wakes every long-poll of this instance on every node.
	if err := a.store.DeletePrefix(ctx, a.prefix); err != nil {
		return fmt.Errorf("e2ee: purge: %w", err)
	}
	a.head, a.members = nil, map[Hash]*Credential{}
	return nil
}
