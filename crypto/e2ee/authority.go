package e2ee

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/cryptobyte"

	"github.com/meetguard/meetguard/crypto/sframe"
)

// AuthorityOptions configures the gateway side of one meeting instance of one room.
type AuthorityOptions struct {
	Room     string // required
	Instance string // required: the meeting instance id; a new meeting in the same room is a new instance
	// SigningKey is the gateway's credential-signing key; clients are configured with its public half. Required.
	SigningKey ed25519.PrivateKey
	// Store holds all state as bytes. Default: NewMemoryStore(Clock).
	Store Store
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

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	EventRegistered EventKind = "e2ee.register"
	EventEpoch      EventKind = "e2ee.epoch"
	EventCommit     EventKind = "e2ee.commit"
	EventRejected   EventKind = "e2ee.reject"
)

// Event is an auditable fact. It never carries key material.
type Event struct {
	Kind       EventKind
	Room       string
	Instance   string
	Op         string   // register, admit, remove, lock, unlock, rekey, post_commit, post_key_package, roster, sealed_for, key_packages
	Identity   Identity // for registrations
	Credential Hash     // the credential concerned, if any
	Epoch      uint64
	Members    int   // roster size, for epochs
	Err        error // why a message was rejected
}

// RegisterRequest is a registration as the gateway hands it to Register: the identity, display name and role
// come from the authenticated session and the policy decision, the device key, key package and proof from the
// client's Registration.
type RegisterRequest struct {
	Identity     Identity
	DisplayName  string
	Role         Role
	Registration *Registration
}

// Authority is the gateway side of the key exchange for one meeting instance of one room. It issues nonces
// and credentials, signs the roster chain and relays key packages and commits. It never holds an epoch secret,
// a base key or an SFrame key: it only ever sees epoch secrets HPKE-sealed to members' own key packages. It is
// safe for concurrent use.
type Authority struct {
	room, instance string
	key            ed25519.PrivateKey
	pub            ed25519.PublicKey
	store          Store
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
	version uint64               // change counter: a wake-up hint for clients
	changed chan struct{}        // closed and replaced on every change
	// lastPost is when each member last posted a key package; rate limits are per process, which bounds what
	// one gateway node serves.
	lastPost map[Hash]time.Time
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
		lastPost:      map[Hash]time.Time{},
		clock:         opts.Clock,
		log:           opts.Logger,
		onEvent:       opts.OnEvent,
		prefix:        "e2ee/" + url.PathEscape(opts.Room) + "/" + url.PathEscape(opts.Instance) + "/",
		members:       map[Hash]*Credential{},
		changed:       make(chan struct{}),
	}
	if a.clock == nil {
		a.clock = SystemClock{}
	}
	if a.store == nil {
		a.store = NewMemoryStore(a.clock)
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
	if errors.Is(err, ErrNotFound) {
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
	if err := a.adopt(ctx, head); err != nil {
		return err
	}
	a.bump()
	return nil
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

// Version is the change counter; it grows on every epoch and accepted bundle.
func (a *Authority) Version() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Wait blocks until the version exceeds after or ctx ends, and returns the version. HTTP long-polls use it.
func (a *Authority) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		a.mu.Lock()
		v, ch := a.version, a.changed
		a.mu.Unlock()
		if v > after {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}

// bump records a change and wakes waiters; the caller holds a.mu.
func (a *Authority) bump() {
	a.version++
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *Authority) emit(ctx context.Context, e Event) {
	e.Room, e.Instance = a.room, a.instance
	if a.onEvent != nil {
		a.onEvent(ctx, e)
	}
}

func (a *Authority) reject(ctx context.Context, op string, id Identity, cred Hash, epoch uint64, err error) {
	a.log.Warn(string(EventRejected), zap.String("op", op), zap.String("subject", id.Subject),
		zap.String("credential", cred.Short()), zap.Uint64("epoch", epoch), zap.Error(err))
	a.emit(ctx, Event{Kind: EventRejected, Op: op, Identity: id, Credential: cred, Epoch: epoch, Err: err})
}

// IssueNonce returns a registration challenge for an authenticated, admitted identity. The nonce is single-use,
// bound to this room, instance and identity, and expires after NonceTTL.
func (a *Authority) IssueNonce(ctx context.Context, id Identity) (*Challenge, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	ch := &Challenge{Room: a.room, Instance: a.instance, Identity: id, Expires: a.clock.Now().Add(a.nonceTTL).Truncate(time.Millisecond)}
	if _, err := rand.Read(ch.Nonce[:]); err != nil {
		return nil, fmt.Errorf("e2ee: nonce: %w", err)
	}
	rec := cryptobyte.NewBuilder(nil)
	addString16(rec, id.Issuer)
	addString16(rec, id.Subject)
	rec.AddUint64(unixMillis(ch.Expires))
	raw, err := finish("nonce_record", rec)
	if err != nil {
		return nil, err
	}
	if err := a.store.Create(ctx, a.k("nonce/"+Hash(ch.Nonce).String()), raw, a.nonceTTL); err != nil {
		return nil, fmt.Errorf("e2ee: nonce: %w", err)
	}
	return ch, nil
}

// takeNonce consumes the nonce and returns to whom and until when it was issued.
func (a *Authority) takeNonce(ctx context.Context, nonce [32]byte) (Identity, time.Time, error) {
	raw, err := a.store.Take(ctx, a.k("nonce/"+Hash(nonce).String()))
	if errors.Is(err, ErrNotFound) {
		return Identity{}, time.Time{}, fmt.Errorf("%w: unknown or already used", ErrNonce)
	}
	if err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("e2ee: nonce: %w", err)
	}
	p := newParser("nonce_record", raw)
	id := Identity{Issuer: p.text("issuer", 1, maxIssuer), Subject: p.text("subject", 1, maxSubject)}
	exp := p.unixMillis("expires_ms")
	if err := p.end(); err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("e2ee: stored nonce: %w", err)
	}
	return id, exp, nil
}

// Register checks a registration's nonce and proof of possession and issues a credential. The caller (the
// gateway) has authenticated the identity and admitted it by policy; Register does not add it to the roster:
// call Admit for that.
func (a *Authority) Register(ctx context.Context, req RegisterRequest) (_ *Credential, err error) {
	defer func() {
		if err != nil {
			a.reject(ctx, "register", req.Identity, Hash{}, 0, err)
		}
	}()
	if err := req.Identity.validate(); err != nil {
		return nil, err
	}
	if err := checkText("register", "display_name", req.DisplayName, 0, maxDisplayName); err != nil {
		return nil, err
	}
	if !req.Role.valid() {
		return nil, malformed("register", "role", "unknown role %d", req.Role)
	}
	r := req.Registration
	if r == nil {
		return nil, malformed("register", "registration", "missing")
	}
	kp, err := ParseKeyPackage(r.KeyPackage)
	if err != nil {
		return nil, err
	}
	if err := a.kemAllowed(kp.KEM); err != nil {
		return nil, err
	}
	// The nonce is consumed before anything else can fail, so a refused attempt cannot be retried with it.
	id, expires, err := a.takeNonce(ctx, r.Nonce)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	if !now.Before(expires) {
		return nil, fmt.Errorf("%w: expired", ErrNonce)
	}
	if id != req.Identity {
		return nil, fmt.Errorf("%w: issued to another subject", ErrNonce)
	}
	if err := r.verifyProof(a.room, a.instance); err != nil {
		return nil, err
	}
	cred, err := issueCredential(a.key, &Credential{
		Room:        a.room,
		Instance:    a.instance,
		Identity:    req.Identity,
		DisplayName: req.DisplayName,
		Role:        req.Role,
		SigningKey:  r.SigningKey,
		NotAfter:    now.Add(a.credTTL).Truncate(time.Second),
	})
	if err != nil {
		return nil, err
	}
	if err := kp.checkFor(cred, now); err != nil {
		return nil, err
	}
	// Kept beyond its lifetime so that clients catching up across old epochs can still verify them.
	if err := a.store.Put(ctx, a.k("cred/"+cred.Hash().String()), cred.raw, 2*a.credTTL); err != nil {
		return nil, fmt.Errorf("e2ee: store credential: %w", err)
	}
	if err := a.store.Put(ctx, a.k("kp/"+cred.Hash().String()), kp.raw, 2*a.credTTL); err != nil {
		return nil, fmt.Errorf("e2ee: store key package: %w", err)
	}
	a.log.Info(string(EventRegistered), zap.String("subject", req.Identity.Subject),
		zap.String("credential", cred.Hash().Short()), zap.Stringer("kem", kp.KEM), zap.Stringer("role", req.Role))
	a.emit(ctx, Event{Kind: EventRegistered, Op: "register", Identity: req.Identity, Credential: cred.Hash()})
	return cred, nil
}

// kemAllowed is the room's post-quantum rule: X-Wing always, classic X25519 only where the policy allows it.
func (a *Authority) kemAllowed(k KEM) error {
	if _, err := k.hpkeKEM(); err != nil {
		return err
	}
	if k == KEMX25519 && !a.allowClassic {
		return ErrKEMNotAllowed
	}
	return nil
}

// KeyPackageOf returns the newest key package registered or posted by the holder of credential h.
func (a *Authority) KeyPackageOf(ctx context.Context, h Hash) (*KeyPackage, error) {
	raw, err := a.store.Get(ctx, a.k("kp/"+h.String()))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no key package for %s", ErrUnknownCredential, h.Short())
	}
	if err != nil {
		return nil, err
	}
	return ParseKeyPackage(raw)
}

func (a *Authority) credential(ctx context.Context, h Hash) (*Credential, error) {
	raw, err := a.store.Get(ctx, a.k("cred/"+h.String()))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCredential, h.Short())
	}
	if err != nil {
		return nil, err
	}
	return ParseCredential(raw)
}

// rosterChange is the next epoch's membership being built by advance.
type rosterChange struct {
	members map[Hash]*Credential
	locked  bool
	at      time.Time
}

// Admit adds registered credentials to the roster as one new epoch. Credentials already in the roster are
// ignored; if nothing changes no epoch is created and the head is returned.
func (a *Authority) Admit(ctx context.Context, creds ...Hash) (*Roster, error) {
	return a.advance(ctx, "admit", false, func(c *rosterChange) error {
		for _, h := range creds {
			if _, ok := c.members[h]; ok {
				continue
			}
			if c.locked {
				return ErrLocked
			}
			cred, err := a.credential(ctx, h)
			if err != nil {
				return err
			}
			if !cred.NotAfter.After(c.at) {
				return fmt.Errorf("%w: %s", ErrCredentialExpired, h.Short())
			}
			c.members[h] = cred
		}
		return nil
	})
}

// Remove takes credentials out of the roster as one new epoch (leave, kick, ban). Their holders cannot open
// anything sealed for it.
func (a *Authority) Remove(ctx context.Context, creds ...Hash) (*Roster, error) {
	return a.advance(ctx, "remove", false, func(c *rosterChange) error {
		for _, h := range creds {
			if _, ok := c.members[h]; !ok {
				return fmt.Errorf("%w: %s", ErrNotMember, h.Short())
			}
			delete(c.members, h)
		}
		return nil
	})
}

// SetLocked locks or unlocks the room in a new epoch. Clients refuse an epoch that adds a member to a locked
// roster, so a locked room can only grow after an unlock every member sees.
func (a *Authority) SetLocked(ctx context.Context, locked bool) (*Roster, error) {
	op := "unlock"
	if locked {
		op = "lock"
	}
	return a.advance(ctx, op, false, func(c *rosterChange) error {
		c.locked = locked
		return nil
	})
}

// Rekey starts a new epoch with the same members, making every sender draw a new key (an operator's "rotate
// now"; senders also re-key on their own timer).
func (a *Authority) Rekey(ctx context.Context) (*Roster, error) {
	return a.advance(ctx, "rekey", true, func(*rosterChange) error { return nil })
}

// advance applies change to the head's membership, drops expired credentials, and signs and stores the next
// epoch, unless nothing changed and force is false.
func (a *Authority) advance(ctx context.Context, op string, force bool, change func(*rosterChange) error) (*Roster, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Another Authority sharing the store may sign an epoch first; the loser reloads that head and applies the
	// change on top of it, so a kick handled on either node lands.
	for attempt := 0; ; attempt++ {
		if err := a.reload(ctx); err != nil {
			return nil, err
		}
		r, err := a.advanceOnce(ctx, op, force, change)
		if errors.Is(err, ErrConflict) && attempt < 8 {
			a.log.Info("e2ee.epoch_race", zap.String("op", op), zap.Int("attempt", attempt+1))
			continue
		}
		return r, err
	}
}

// advanceOnce is one attempt of advance; the caller holds a.mu.
func (a *Authority) advanceOnce(ctx context.Context, op string, force bool, change func(*rosterChange) error) (*Roster, error) {
	c := &rosterChange{members: make(map[Hash]*Credential, len(a.members)+1), at: a.clock.Now().Truncate(time.Millisecond)}
	var epoch uint64 = 1
	var prev Hash
	if a.head != nil {
		c.locked = a.head.Locked
		epoch, prev = a.head.Epoch+1, a.head.Hash()
		if a.head.IssuedAt.After(c.at) {
			c.at = a.head.IssuedAt
		}
	}
	for h, cred := range a.members {
		c.members[h] = cred
	}
	if err := change(c); err != nil {
		return nil, err
	}
	for h, cred := range c.members {
		if !cred.NotAfter.After(c.at) {
			delete(c.members, h)
		}
	}
	unchanged := a.head != nil && c.locked == a.head.Locked && len(c.members) == len(a.members)
	for h := range c.members {
		if _, ok := a.members[h]; !ok {
			unchanged = false
		}
	}
	if unchanged && !force {
		return a.head, nil
	}
	if len(c.members) > a.maxMembers {
		return nil, fmt.Errorf("%w: %d members, limit %d", ErrRoomFull, len(c.members), a.maxMembers)
	}
	members := make([]Hash, 0, len(c.members))
	for h := range c.members {
		members = append(members, h)
	}
	slices.SortFunc(members, compareHash)
	next, err := issueRoster(a.key, &Roster{
		Room: a.room, Instance: a.instance, Epoch: epoch, IssuedAt: c.at, Prev: prev, Locked: c.locked, Members: members,
	})
	if err != nil {
		return nil, err
	}
	// Create, not Put: a second signer of the same epoch (another process sharing the store) loses here
	// instead of forking the chain.
	if err := a.store.Create(ctx, a.k(fmt.Sprintf("roster/%020d", epoch)), next.raw, 0); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("%w: epoch %d already signed", ErrConflict, epoch)
		}
		return nil, fmt.Errorf("e2ee: store roster: %w", err)
	}
	if err := a.store.Put(ctx, a.k("head"), next.raw, 0); err != nil {
		return nil, fmt.Errorf("e2ee: store head: %w", err)
	}
	if a.head != nil {
		// Sealed keys of the replaced epoch are never served again.
		for _, kind := range []string{"sealed", "commit"} {
			if err := a.store.DeletePrefix(ctx, a.k(epochKey(kind, a.head.Epoch))); err != nil {
				a.log.Warn("e2ee.cleanup", zap.Uint64("epoch", a.head.Epoch), zap.Error(err))
			}
		}
	}
	a.head, a.members = next, c.members
	a.bump()
	a.log.Info(string(EventEpoch), zap.String("op", op), zap.Uint64("epoch", epoch),
		zap.Int("members", len(members)), zap.Bool("locked", c.locked), zap.String("roster", next.Hash().Short()))
	a.emit(ctx, Event{Kind: EventEpoch, Op: op, Epoch: epoch, Members: len(members)})
	return next, nil
}

// Roster returns the roster update for a member that holds epoch since (0 for a joining client): the head alone
// for since = 0, otherwise epochs since+1 through the head, with the credentials of every member the client
// does not know yet. The requester must be a member of the head or of epoch since, so a removed member still
// learns of its removal and nobody else learns the roster.
func (a *Authority) Roster(ctx context.Context, requester Hash, since uint64) (_ []byte, err error) {
	defer func() {
		if err != nil && (errors.Is(err, ErrNotMember) || errors.Is(err, ErrUnknownEpoch)) {
			a.reject(ctx, "roster", Identity{}, requester, since, err)
		}
	}()
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	head, members, version := a.head, a.members, a.version
	a.mu.Unlock()
	if head == nil {
		return nil, ErrNoRoster
	}
	if since > head.Epoch {
		return nil, fmt.Errorf("%w: %d is beyond the head %d", ErrUnknownEpoch, since, head.Epoch)
	}
	var base *Roster
	if since > 0 {
		if base, err = a.roster(ctx, since); err != nil {
			return nil, err
		}
	}
	if !head.Has(requester) && (base == nil || !base.Has(requester)) {
		return nil, ErrNotMember
	}
	update := &rosterUpdate{version: version}
	rosters := []*Roster{head}
	if since > 0 {
		rosters = rosters[:0]
		for n := since + 1; n <= head.Epoch; n++ {
			r := head
			if n < head.Epoch {
				if r, err = a.roster(ctx, n); err != nil {
					return nil, err
				}
			}
			rosters = append(rosters, r)
		}
	}
	// A credential is sent for every member that was not in the epoch before the one listing it: a client
	// knows only the credentials of its head, so one that left and came back (the same device re-registering
	// within a second gets the same credential) must be sent again.
	seen := map[Hash]bool{}
	prev := base
	for _, r := range rosters {
		update.rosters = append(update.rosters, r.raw)
		before := prev
		prev = r
		for _, h := range r.Members {
			if seen[h] || (before != nil && before.Has(h)) {
				continue
			}
			seen[h] = true
			cred, ok := members[h]
			if !ok {
				if cred, err = a.credential(ctx, h); err != nil {
					return nil, err
				}
			}
			update.credentials = append(update.credentials, cred.raw)
		}
	}
	return update.marshal()
}

func (a *Authority) roster(ctx context.Context, epoch uint64) (*Roster, error) {
	raw, err := a.store.Get(ctx, a.k(fmt.Sprintf("roster/%020d", epoch)))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEpoch, epoch)
	}
	if err != nil {
		return nil, err
	}
	return ParseRoster(raw)
}

// refresh picks up epochs another gateway node sharing the store has signed, so every node serves the same
// head. It costs one store read when nothing changed.
func (a *Authority) refresh(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reload(ctx); err != nil {
		return fmt.Errorf("e2ee: reload head: %w", err)
	}
	return nil
}

// headFor returns the head if epoch is it and member belongs to it.
func (a *Authority) headFor(ctx context.Context, epoch uint64, member Hash) (*Roster, map[Hash]*Credential, error) {
	if err := a.refresh(ctx); err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	head, members := a.head, a.members
	a.mu.Unlock()
	switch {
	case head == nil:
		return nil, nil, ErrNoRoster
	case epoch < head.Epoch:
		return nil, nil, fmt.Errorf("%w: %d, head is %d", ErrStaleEpoch, epoch, head.Epoch)
	case epoch > head.Epoch:
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownEpoch, epoch)
	case !head.Has(member):
		return nil, nil, ErrNotMember
	}
	return head, members, nil
}

// PostKeyPackage stores a member's new key package: signed by the member's device key, for its identity, room
// and instance, unexpired, with a higher sequence number than the last, and at most one per KeyPackageInterval.
func (a *Authority) PostKeyPackage(ctx context.Context, sender Hash, data []byte) (err error) {
	defer func() {
		if err != nil {
			a.reject(ctx, "post_key_package", Identity{}, sender, 0, err)
		}
	}()
	kp, err := ParseKeyPackage(data)
	if err != nil {
		return err
	}
	a.mu.Lock()
	cred, ok := a.members[sender]
	a.mu.Unlock()
	if !ok {
		return ErrNotMember
	}
	now := a.clock.Now()
	if err := kp.checkFor(cred, now); err != nil {
		return err
	}
	if err := a.kemAllowed(kp.KEM); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if last, ok := a.lastPost[sender]; ok && now.Sub(last) < a.kpInterval {
		return fmt.Errorf("%w: one key package per %v", ErrRateLimited, a.kpInterval)
	}
	if prev, err := a.KeyPackageOf(ctx, sender); err == nil && kp.Seq <= prev.Seq {
		return fmt.Errorf("%w: key package %d not above %d", ErrReplay, kp.Seq, prev.Seq)
	}
	if err := a.store.Put(ctx, a.k("kp/"+sender.String()), kp.raw, 2*a.credTTL); err != nil {
		return fmt.Errorf("e2ee: store key package: %w", err)
	}
	a.lastPost[sender] = now
	return nil
}

// KeyPackages returns the newest key package of every member of the head epoch, in roster order, for a member
// about to commit.
func (a *Authority) KeyPackages(ctx context.Context, requester Hash, epoch uint64) (_ []byte, err error) {
	head, _, err := a.headFor(ctx, epoch, requester)
	if err != nil {
		if errors.Is(err, ErrNotMember) {
			a.reject(ctx, "key_packages", Identity{}, requester, epoch, err)
		}
		return nil, err
	}
	items := make([][]byte, 0, len(head.Members))
	for _, h := range head.Members {
		raw, err := a.store.Get(ctx, a.k("kp/"+h.String()))
		if err != nil {
			return nil, fmt.Errorf("e2ee: key package of %s: %w", h.Short(), err)
		}
		items = append(items, raw)
	}
	return marshalKeyPackages(items)
}

// PostCommit validates a member's commit for the head epoch and stores each recipient's sealed epoch secret.
// The first commit of an (epoch, generation) wins; a later one is ErrConflict and its sender fetches the
// winner. The commit stays opaque: the gateway checks who sent it, to whom, and that the committer signed it,
// never what it seals.
func (a *Authority) PostCommit(ctx context.Context, sender Hash, epoch uint64, data []byte) (err error) {
	defer func() {
		if err != nil && !errors.Is(err, ErrConflict) {
			a.reject(ctx, "post_commit", Identity{}, sender, epoch, err)
		}
	}()
	co, err := parseCommit(data)
	if err != nil {
		return err
	}
	h := co.header
	if h.Room != a.room || h.Instance != a.instance {
		return fmt.Errorf("%w: commit", ErrContextMismatch)
	}
	if h.Epoch != epoch {
		return malformed("commit", "epoch", "header says %d, request says %d", h.Epoch, epoch)
	}
	if !hashEqual(h.Committer, sender) {
		return ErrWrongSender
	}
	head, members, err := a.headFor(ctx, epoch, sender)
	if err != nil {
		return err
	}
	if !hashEqual(h.RosterHash, head.Hash()) {
		return fmt.Errorf("%w: commit sealed to another roster", ErrFork)
	}
	if h.Suite != sframe.CipherSuite {
		return malformed("commit", "cipher_suite", "unsupported %#04x", h.Suite)
	}
	if len(h.KEMs) != len(head.Members) {
		return malformed("commit", "kems", "%d KEMs for %d members", len(h.KEMs), len(head.Members))
	}
	for _, k := range h.KEMs {
		if err := a.kemAllowed(k); err != nil {
			return err
		}
	}
	if int(h.LeafCount) != len(head.Members)-1 || len(co.entries) != len(head.Members)-1 {
		return malformed("commit", "entries", "%d entries (header %d) for %d other members", len(co.entries), h.LeafCount, len(head.Members)-1)
	}
	leaves := make([]Hash, 0, len(co.entries))
	for _, m := range head.Members {
		if m == sender {
			continue
		}
		e := co.entries[len(leaves)]
		if e.recipient != m {
			return malformed("commit", "entries", "entry %d is not the next member in roster order", len(leaves))
		}
		leaves = append(leaves, leafHash(e.recipient, e.keyPackage, e.sealed))
	}
	var paths [][]Hash
	var root Hash // zero for a member alone
	if len(leaves) > 0 {
		root, paths = merkleTree(leaves)
	}
	if !hashEqual(root, h.Root) {
		return fmt.Errorf("%w: entries do not match the signed root", ErrBadSignature)
	}
	if !h.verify(members[sender].SigningKey) {
		return fmt.Errorf("%w: commit not signed by the committer's device key", ErrBadSignature)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.head != head {
		return fmt.Errorf("%w: epoch changed while the commit was checked", ErrStaleEpoch)
	}
	now := a.clock.Now()
	if h.Generation > 0 {
		prev, err := a.store.Get(ctx, a.k(epochKey("commit", epoch)+fmt.Sprintf("%03d", h.Generation-1)))
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: generation %d before %d", ErrUnknownEpoch, h.Generation, h.Generation-1)
		}
		if err != nil {
			return fmt.Errorf("e2ee: load commit: %w", err)
		}
		if len(prev) == 8 && now.Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(prev)))) < a.rekeyInterval {
			return fmt.Errorf("%w: one re-key per %v", ErrRateLimited, a.rekeyInterval)
		}
	}
	// Create orders commits: across gateway nodes sharing the store, the first of a generation wins.
	at := binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))
	if err := a.store.Create(ctx, a.k(epochKey("commit", epoch)+fmt.Sprintf("%03d", h.Generation)), at, 0); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("%w: generation %d of epoch %d already committed", ErrConflict, h.Generation, epoch)
		}
		return fmt.Errorf("e2ee: store commit: %w", err)
	}
	for i, e := range co.entries {
		raw, err := (&sealedSecret{header: h, index: uint32(i), proof: paths[i], keyPackage: e.keyPackage, sealed: e.sealed}).marshal()
		if err != nil {
			return err
		}
		key := a.k(epochKey("sealed", epoch) + e.recipient.String())
		if err := a.store.Put(ctx, key, raw, 0); err != nil {
			return fmt.Errorf("e2ee: store sealed secret: %w", err)
		}
	}
	// The committer holds this generation's secret and has no entry in it; its entry of an older generation
	// must not be served as if it were current.
	if err := a.store.DeletePrefix(ctx, a.k(epochKey("sealed", epoch)+sender.String())); err != nil {
		return fmt.Errorf("e2ee: drop committer's old sealed secret: %w", err)
	}
	a.bump()
	a.log.Debug(string(EventCommit), zap.String("committer", sender.Short()), zap.Uint64("epoch", epoch),
		zap.Uint8("generation", h.Generation), zap.Int("recipients", len(co.entries)))
	a.emit(ctx, Event{Kind: EventCommit, Op: "post_commit", Credential: sender, Epoch: epoch, Members: len(head.Members)})
	return nil
}

// SealedFor returns the recipient's sealed epoch secret of the head epoch's newest commit: a list of zero
// (nobody has committed yet) or one SealedSecret. One rekey costs each member one sealed secret of egress.
func (a *Authority) SealedFor(ctx context.Context, recipient Hash, epoch uint64) (_ []byte, err error) {
	if _, _, err := a.headFor(ctx, epoch, recipient); err != nil {
		if errors.Is(err, ErrNotMember) {
			a.reject(ctx, "sealed_for", Identity{}, recipient, epoch, err)
		}
		return nil, err
	}
	raw, err := a.store.Get(ctx, a.k(epochKey("sealed", epoch)+recipient.String()))
	if errors.Is(err, ErrNotFound) {
		return marshalSealedSecrets(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("e2ee: load sealed secret: %w", err)
	}
	return marshalSealedSecrets([][]byte{raw})
}

func marshalSealedSecrets(items [][]byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, it := range items {
			addBytes16(b, it)
		}
	})
	return finish("sealed_secrets", b)
}

func parseSealedSecrets(b []byte) ([]*sealedSecret, error) {
	p := newParser("sealed_secrets", b)
	items := p.list("secrets", p.bytes32("secrets", 0, 1<<20), 2, 1)
	if err := p.end(); err != nil {
		return nil, err
	}
	out := make([]*sealedSecret, 0, len(items))
	for _, it := range items {
		s, err := parseSealedSecret(it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Purge deletes all stored state of this meeting instance; call it when the meeting ends. The Authority then
// has no roster, as before the first admission.
func (a *Authority) Purge(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.store.DeletePrefix(ctx, a.prefix); err != nil {
		return fmt.Errorf("e2ee: purge: %w", err)
	}
	a.head, a.members = nil, map[Hash]*Credential{}
	a.bump()
	return nil
}
