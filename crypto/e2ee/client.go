package e2ee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/sframe"
)

// ClientOptions configures a participant.
type ClientOptions struct {
	Transport Transport // required
	// AuthorityKey is the gateway's credential-signing public key, learned out of band. Required.
	AuthorityKey ed25519.PublicKey
	Room         string // required
	// DeviceKey is the device's Ed25519 signing key. Default: a fresh key.
	DeviceKey ed25519.PrivateKey
	// KEM is the session's key-encapsulation mechanism. Default KEMXWing; KEMX25519 only where the room allows.
	KEM KEM
	// AllowOtherDevices accepts another device key for this client's own identity in the roster (the same person
	// on a second device). Default false: that is ErrImpersonation.
	AllowOtherDevices bool
	// GracePeriod is how long a replaced key still decrypts. Default 2 seconds.
	GracePeriod time.Duration
	// RekeyInterval is how often this sender draws a new key within an epoch. Default 5 minutes.
	RekeyInterval time.Duration
	Clock         Clock       // default SystemClock
	Logger        *zap.Logger // default zap.NewNop()
}

// State is where a client is in the protocol (docs/e2ee.md section 7).
type State int

// Client states.
const (
	StateUnregistered State = iota
	StateWaiting            // registered, not yet in a roster
	StateMember
	StateRemoved
	StateHalted // an alarm was raised; nothing more is accepted
)

func (s State) String() string {
	return [...]string{"unregistered", "waiting", "member", "removed", "halted"}[s]
}

// Member is one roster entry as a client has verified it.
type Member struct {
	Credential  Hash
	Identity    Identity
	DisplayName string
	Role        Role
	KEM         KEM
	Index       int // position in the roster, the KID's sender index
	Self        bool
}

// Status is a snapshot of what the client has verified.
type Status struct {
	State        State
	Epoch        uint64
	Roster       Hash
	Locked       bool
	Members      []Member
	SecurityCode string // empty until the client holds a roster
}

// ReceiveKey is an SFrame key for decrypting one sender's frames.
type ReceiveKey struct {
	Sender     Hash
	Epoch      uint64
	Generation uint16
	Key        *sframe.Key
	Expires    time.Time // zero while current; else the end of its grace period
}

type sendKey struct {
	epoch      uint64
	generation uint16
	key        *sframe.Key
	created    time.Time
	expires    time.Time
}

// Client is a participant: it registers its device keys, follows and verifies the roster chain, seals its
// sender key to every member, opens the keys sealed to it, and derives SFrame keys. Whatever an honest gateway
// would never send raises an *AlarmError and halts the client. It is safe for concurrent use; media code may
// call EncryptionKey and DecryptionKey while Sync runs.
type Client struct {
	transport         Transport
	authority         ed25519.PublicKey
	room              string
	device            ed25519.PrivateKey
	kem               KEM
	kemKey            hpke.PrivateKey
	allowOtherDevices bool
	grace             time.Duration
	rekeyEvery        time.Duration
	clock             Clock
	log               *zap.Logger
	// observeBaseKey, when set by a test, sees every base key this client draws or opens.
	observeBaseKey func(baseKey []byte)

	// syncMu serialises Register and Sync. cred, instance, head and creds are written with both syncMu and mu
	// held, so code holding either may read them.
	syncMu sync.Mutex
	mu     sync.Mutex

	state       State
	halt        error
	instance    string
	cred        *Credential
	head        *Roster
	creds       map[Hash]*Credential // verified credentials of the head's members
	version     uint64
	send        *sendKey
	nextGen     uint16 // generation of this sender's next bundle in the head epoch
	recv        map[uint64]*ReceiveKey
	generations map[Hash]uint16 // highest generation installed per sender in the head epoch
	accepted    map[Hash]Hash   // digest of the last sealed key accepted per sender, to skip re-verification
}

// NewClient returns an unregistered client with fresh session keys.
func NewClient(ctx context.Context, opts ClientOptions) (*Client, error) {
	if opts.Transport == nil {
		return nil, errors.New("e2ee: client: Transport is required")
	}
	if len(opts.AuthorityKey) != ed25519.PublicKeySize {
		return nil, errors.New("e2ee: client: AuthorityKey must be an Ed25519 public key")
	}
	if err := checkText("client", "room", opts.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	c := &Client{
		transport:         opts.Transport,
		authority:         bytes.Clone(opts.AuthorityKey),
		room:              opts.Room,
		device:            opts.DeviceKey,
		kem:               opts.KEM,
		allowOtherDevices: opts.AllowOtherDevices,
		grace:             opts.GracePeriod,
		rekeyEvery:        opts.RekeyInterval,
		clock:             opts.Clock,
		log:               opts.Logger,
		recv:              map[uint64]*ReceiveKey{},
		generations:       map[Hash]uint16{},
		accepted:          map[Hash]Hash{},
	}
	if c.device == nil {
		if _, c.device, _ = ed25519.GenerateKey(nil); c.device == nil {
			return nil, errors.New("e2ee: client: cannot generate a device key")
		}
	} else if len(c.device) != ed25519.PrivateKeySize {
		return nil, errors.New("e2ee: client: DeviceKey must be an Ed25519 private key")
	}
	if c.kem == 0 {
		c.kem = KEMXWing
	}
	kem, err := c.kem.hpkeKEM()
	if err != nil {
		return nil, err
	}
	if c.kemKey, err = kem.GenerateKey(); err != nil {
		return nil, fmt.Errorf("e2ee: client: generate KEM key: %w", err)
	}
	if c.grace <= 0 {
		c.grace = 2 * time.Second
	}
	if c.rekeyEvery <= 0 {
		c.rekeyEvery = 5 * time.Minute
	}
	if c.clock == nil {
		c.clock = SystemClock{}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.With(zap.String("room", c.room))
	return c, nil
}

// usable returns why the client can do nothing more, if so; the caller holds c.mu.
func (c *Client) usable() error {
	switch c.state {
	case StateUnregistered:
		return ErrNotRegistered
	case StateHalted:
		return fmt.Errorf("%w: %w", ErrHalted, c.halt)
	case StateRemoved:
		return ErrRemoved
	}
	return nil
}

// fail halts the client if err is an alarm: all keys are dropped and every later call fails.
func (c *Client) fail(err error) error {
	var al *AlarmError
	if !errors.As(err, &al) {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateHalted {
		c.state, c.halt = StateHalted, err
		c.wipe()
		c.log.Error("e2ee.alarm", zap.Error(err))
	}
	return err
}

// wipe drops every key; the caller holds c.mu.
func (c *Client) wipe() {
	c.send = nil
	c.recv = map[uint64]*ReceiveKey{}
	c.generations = map[Hash]uint16{}
	c.accepted = map[Hash]Hash{}
}

// Register obtains a challenge, proves possession of the device key and registers both public keys. It
// verifies the credential the gateway returns: signed by the authority, for this room, carrying exactly this
// client's keys.
func (c *Client) Register(ctx context.Context) (*Credential, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state != StateUnregistered {
		return nil, fmt.Errorf("e2ee: register: client is %v", state)
	}
	raw, err := c.transport.Challenge(ctx)
	if err != nil {
		return nil, fmt.Errorf("e2ee: register: challenge: %w", err)
	}
	ch, err := ParseChallenge(raw)
	if err != nil {
		return nil, fmt.Errorf("e2ee: register: %w", err)
	}
	if ch.Room != c.room {
		return nil, c.fail(alarm(ErrContextMismatch, 0, Hash{}, "challenge for room %q", ch.Room))
	}
	kemPub := c.kemKey.PublicKey().Bytes()
	reg, err := newRegistration(c.device, c.kem, kemPub, ch)
	if err != nil {
		return nil, err
	}
	regRaw, err := reg.Marshal()
	if err != nil {
		return nil, err
	}
	credRaw, err := c.transport.Register(ctx, regRaw)
	if err != nil {
		return nil, fmt.Errorf("e2ee: register: %w", err)
	}
	cred, err := ParseCredential(credRaw)
	if err != nil {
		return nil, fmt.Errorf("e2ee: register: %w", err)
	}
	switch {
	case cred.Verify(c.authority) != nil:
		return nil, c.fail(alarm(ErrBadSignature, 0, cred.Hash(), "own credential not signed by the authority key"))
	case cred.Room != c.room || cred.Instance != ch.Instance:
		return nil, c.fail(alarm(ErrContextMismatch, 0, cred.Hash(), "own credential for room %q instance %q", cred.Room, cred.Instance))
	case !bytes.Equal(cred.SigningKey, c.device.Public().(ed25519.PublicKey)) || cred.KEM != c.kem || !bytes.Equal(cred.KEMKey, kemPub):
		return nil, c.fail(alarm(ErrCredentialMismatch, 0, cred.Hash(), "own credential does not carry this client's keys"))
	case !cred.NotAfter.After(c.clock.Now()):
		return nil, fmt.Errorf("e2ee: register: %w: own credential", ErrCredentialExpired)
	}
	c.mu.Lock()
	c.cred, c.instance, c.state = cred, ch.Instance, StateWaiting
	c.mu.Unlock()
	c.log.Info("e2ee.registered", zap.String("credential", cred.Hash().Short()), zap.String("instance", ch.Instance),
		zap.Stringer("kem", c.kem))
	return cred, nil
}

// Credential returns the client's own credential, nil before Register.
func (c *Client) Credential() *Credential {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// Sync runs one round of the protocol: follow the roster chain, post this sender's bundle when the epoch is new
// or the re-key timer is due, open the keys sealed to this client, and drop keys past their grace period. It
// returns ErrRemoved once the client left the roster, and an *AlarmError (then ErrHalted on every later call)
// when the gateway deviated from the protocol.
func (c *Client) Sync(ctx context.Context) (Status, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	err := c.usable()
	c.mu.Unlock()
	if err != nil {
		return c.Status(), err
	}
	var since uint64
	if c.head != nil {
		since = c.head.Epoch
	}
	raw, err := c.transport.Roster(ctx, since)
	if err != nil {
		if since == 0 && (errors.Is(err, ErrNotMember) || errors.Is(err, ErrNoRoster)) {
			return c.Status(), nil // not admitted yet
		}
		return c.Status(), fmt.Errorf("e2ee: roster: %w", err)
	}
	update, err := parseRosterUpdate(raw)
	if err != nil {
		return c.Status(), err
	}
	c.mu.Lock()
	c.version = max(c.version, update.version)
	c.mu.Unlock()
	if err := c.applyRoster(update); err != nil {
		return c.Status(), c.fail(err)
	}
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	switch state {
	case StateRemoved:
		return c.Status(), ErrRemoved
	case StateWaiting:
		return c.Status(), nil
	}
	var errs []error
	if err := c.maybeSend(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := c.fetchKeys(ctx); err != nil {
		if errors.Is(err, ErrAlarm) {
			return c.Status(), c.fail(err)
		}
		errs = append(errs, err)
	}
	c.prune()
	return c.Status(), errors.Join(errs...)
}

// applyRoster verifies and applies the epochs of a roster update in order.
func (c *Client) applyRoster(u *rosterUpdate) error {
	offered := make(map[Hash]*Credential, len(u.credentials))
	for _, raw := range u.credentials {
		cred, err := ParseCredential(raw)
		if err != nil {
			return fmt.Errorf("e2ee: roster update: %w", err)
		}
		offered[cred.Hash()] = cred
	}
	me := c.cred.Hash()
	for _, raw := range u.rosters {
		r, err := ParseRoster(raw)
		if err != nil {
			return fmt.Errorf("e2ee: roster update: %w", err)
		}
		if r.Verify(c.authority) != nil {
			return alarm(ErrBadSignature, r.Epoch, Hash{}, "roster not signed by the authority key")
		}
		if r.Room != c.room || r.Instance != c.instance {
			return alarm(ErrContextMismatch, r.Epoch, Hash{}, "roster for room %q instance %q", r.Room, r.Instance)
		}
		if head := c.head; head == nil {
			// A joiner anchors at the first epoch that contains its own, fresh credential.
			if !r.Has(me) {
				continue
			}
		} else {
			switch {
			case r.Epoch <= head.Epoch:
				return alarm(ErrReplay, r.Epoch, Hash{}, "epoch %d offered to a client at epoch %d", r.Epoch, head.Epoch)
			case r.Epoch > head.Epoch+1:
				return alarm(ErrGap, r.Epoch, Hash{}, "epoch %d offered to a client at epoch %d", r.Epoch, head.Epoch)
			case !hashEqual(r.Prev, head.Hash()):
				return alarm(ErrFork, r.Epoch, Hash{}, "prev %s is not our epoch %d (%s)", r.Prev.Short(), head.Epoch, head.Hash().Short())
			case r.IssuedAt.Before(head.IssuedAt):
				return alarm(ErrReplay, r.Epoch, Hash{}, "issued before epoch %d", head.Epoch)
			}
			if head.Locked {
				for _, m := range r.Members {
					if !head.Has(m) {
						return alarm(ErrLockedRoster, r.Epoch, m, "added while the room was locked")
					}
				}
			}
		}
		creds, err := c.verifyMembers(r, offered)
		if err != nil {
			return err
		}
		c.install(r, creds, r.Has(me))
		if !r.Has(me) {
			return nil
		}
	}
	return nil
}

// verifyMembers returns the verified credential of every member of r.
func (c *Client) verifyMembers(r *Roster, offered map[Hash]*Credential) (map[Hash]*Credential, error) {
	me := c.cred.Hash()
	out := make(map[Hash]*Credential, len(r.Members))
	for _, h := range r.Members {
		cred := c.creds[h]
		if h == me {
			cred = c.cred
		}
		if cred == nil {
			if cred = offered[h]; cred == nil {
				return nil, alarm(ErrCredentialMismatch, r.Epoch, h, "no credential hashes to this roster entry")
			}
			if cred.Verify(c.authority) != nil {
				return nil, alarm(ErrBadSignature, r.Epoch, h, "credential not signed by the authority key")
			}
			if cred.Room != c.room || cred.Instance != c.instance {
				return nil, alarm(ErrContextMismatch, r.Epoch, h, "credential for room %q instance %q", cred.Room, cred.Instance)
			}
		}
		if !cred.NotAfter.After(r.IssuedAt) {
			return nil, alarm(ErrCredentialExpired, r.Epoch, h, "expired %v, epoch issued %v", cred.NotAfter, r.IssuedAt)
		}
		if h != me && !c.allowOtherDevices && cred.Identity == c.cred.Identity &&
			!bytes.Equal(cred.SigningKey, c.cred.SigningKey) {
			return nil, alarm(ErrImpersonation, r.Epoch, h, "%q holds this client's identity with another device key", cred.DisplayName)
		}
		out[h] = cred
	}
	return out, nil
}

// install makes r the head. Keys of the previous epoch start their grace period; if this client is no longer a
// member it is removed and keeps no key at all.
func (c *Client) install(r *Roster, creds map[Hash]*Credential, member bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if !member {
		c.head, c.creds, c.state = r, creds, StateRemoved
		c.wipe()
		c.log.Info("e2ee.removed", zap.Uint64("epoch", r.Epoch))
		return
	}
	for _, k := range c.recv {
		if k.Expires.IsZero() {
			k.Expires = now.Add(c.grace)
		}
	}
	if c.send != nil && c.send.expires.IsZero() {
		c.send.expires = now.Add(c.grace)
	}
	c.head, c.creds, c.state = r, creds, StateMember
	c.nextGen = 0
	c.generations = map[Hash]uint16{}
	c.accepted = map[Hash]Hash{}
	c.log.Info("e2ee.epoch", zap.Uint64("epoch", r.Epoch), zap.Int("members", len(r.Members)),
		zap.Bool("locked", r.Locked), zap.String("security_code", SecurityCode(r.Hash())))
}

// maybeSend posts a bundle with a fresh base key when this sender has none for the head epoch or its key is
// older than the re-key interval.
func (c *Client) maybeSend(ctx context.Context) error {
	head := c.head
	now := c.clock.Now()
	c.mu.Lock()
	send, gen := c.send, c.nextGen
	c.mu.Unlock()
	if send != nil && send.epoch == head.Epoch && now.Sub(send.created) < c.rekeyEvery {
		return nil
	}
	if send != nil && send.epoch == head.Epoch && gen == 0 {
		return fmt.Errorf("e2ee: re-key: generations of epoch %d exhausted", head.Epoch)
	}
	key, raw, err := c.seal(head, gen)
	if err != nil {
		return err
	}
	// Every attempt uses a new generation, so a retry after an ambiguous failure is never a replay.
	c.mu.Lock()
	c.nextGen = gen + 1
	c.mu.Unlock()
	if raw != nil {
		if err := c.transport.PostBundle(ctx, head.Epoch, raw); err != nil {
			if errors.Is(err, ErrStaleEpoch) {
				return nil // the epoch moved on while we sealed; the next Sync seals to the new one
			}
			return fmt.Errorf("e2ee: post bundle: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head == head {
		c.send = &sendKey{epoch: head.Epoch, generation: gen, key: key, created: now}
	}
	return nil
}

// seal draws a base key, derives this sender's SFrame key and seals the base key to every other member of
// head. The bundle is nil when the client is alone.
func (c *Client) seal(head *Roster, gen uint16) (*sframe.Key, []byte, error) {
	me := c.cred.Hash()
	index, _ := head.Index(me)
	base := make([]byte, baseKeySize)
	if _, err := rand.Read(base); err != nil {
		return nil, nil, fmt.Errorf("e2ee: base key: %w", err)
	}
	defer clear(base)
	if c.observeBaseKey != nil {
		c.observeBaseKey(base)
	}
	key, err := sframe.DeriveKey(KID(head.Epoch, index, gen), base)
	if err != nil {
		return nil, nil, err
	}
	if len(head.Members) == 1 {
		return key, nil, nil
	}
	entries := make([]bundleEntry, 0, len(head.Members)-1)
	leaves := make([]Hash, 0, len(head.Members)-1)
	rosterHash := head.Hash()
	for _, h := range head.Members {
		if h == me {
			continue
		}
		info := senderKeyInfo(c.room, c.instance, head.Epoch, gen, rosterHash, me, h)
		sealed, err := sealBaseKey(c.creds[h].kemPub, info, base)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, bundleEntry{recipient: h, sealed: sealed})
		leaves = append(leaves, leafHash(h, sealed))
	}
	header, err := signBundleHeader(c.device, &bundleHeader{
		Room: c.room, Instance: c.instance, Epoch: head.Epoch, Generation: gen, RosterHash: rosterHash,
		Sender: me, Suite: sframe.CipherSuite, LeafCount: uint32(len(entries)), Root: merkleRoot(leaves),
	})
	if err != nil {
		return nil, nil, err
	}
	raw, err := (&bundle{header: header, entries: entries}).marshal()
	if err != nil {
		return nil, nil, err
	}
	return key, raw, nil
}

// fetchKeys opens the keys sealed to this client for the head epoch. Alarms stop at once; other refusals
// (a member who sealed garbage) are collected and do not stop the other senders' keys.
func (c *Client) fetchKeys(ctx context.Context) error {
	head := c.head
	raw, err := c.transport.SealedKeys(ctx, head.Epoch)
	if err != nil {
		if errors.Is(err, ErrStaleEpoch) {
			return nil // the next Sync fetches the new epoch
		}
		return fmt.Errorf("e2ee: sealed keys: %w", err)
	}
	keys, err := parseSealedKeys(raw)
	if err != nil {
		return err
	}
	var errs []error
	for _, sk := range keys {
		if err := c.acceptSealedKey(head, sk); err != nil {
			if errors.Is(err, ErrAlarm) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// acceptSealedKey verifies one sealed key against the head epoch and installs the sender's SFrame key.
func (c *Client) acceptSealedKey(head *Roster, sk *sealedKey) error {
	h := sk.header
	me := c.cred.Hash()
	d := sha256.Sum256(sk.raw)
	c.mu.Lock()
	seen := c.accepted[h.Sender] == d
	c.mu.Unlock()
	if seen {
		return nil // the same bytes were verified and installed before
	}
	if h.Room != c.room || h.Instance != c.instance {
		return alarm(ErrContextMismatch, head.Epoch, h.Sender, "bundle for room %q instance %q", h.Room, h.Instance)
	}
	if h.Epoch != head.Epoch {
		return alarm(ErrReplay, head.Epoch, h.Sender, "bundle of epoch %d served for epoch %d", h.Epoch, head.Epoch)
	}
	// A bundle sealed to another roster of our epoch proves a fork, whoever sent it.
	if !hashEqual(h.RosterHash, head.Hash()) {
		return alarm(ErrFork, head.Epoch, h.Sender, "sender sealed to roster %s, ours is %s", h.RosterHash.Short(), head.Hash().Short())
	}
	senderIndex, ok := head.Index(h.Sender)
	if !ok {
		return alarm(ErrNotMember, head.Epoch, h.Sender, "bundle from a non-member")
	}
	if h.Sender == me {
		return alarm(ErrReplay, head.Epoch, h.Sender, "own bundle served back")
	}
	if !h.verify(c.creds[h.Sender].SigningKey) {
		return alarm(ErrBadSignature, head.Epoch, h.Sender, "bundle not signed by the sender's device key")
	}
	leaf, _ := head.Index(me)
	if leaf > senderIndex {
		leaf--
	}
	if int(h.LeafCount) != len(head.Members)-1 || int(sk.index) != leaf {
		return alarm(ErrBadSignature, head.Epoch, h.Sender, "leaf %d of %d, expected %d of %d", sk.index, h.LeafCount, leaf, len(head.Members)-1)
	}
	if !verifyInclusion(leafHash(me, sk.sealed), uint64(sk.index), uint64(h.LeafCount), sk.proof, h.Root) {
		return alarm(ErrBadSignature, head.Epoch, h.Sender, "sealed key not covered by the sender's signature")
	}
	if h.Suite != sframe.CipherSuite {
		return fmt.Errorf("%w: sender %s uses SFrame suite %#04x", ErrMalformed, h.Sender.Short(), h.Suite)
	}
	c.mu.Lock()
	last, installed := c.generations[h.Sender]
	c.mu.Unlock()
	switch {
	case installed && h.Generation < last:
		return alarm(ErrReplay, head.Epoch, h.Sender, "generation %d after %d", h.Generation, last)
	case installed && h.Generation == last:
		return nil // a second signed bundle for one generation: keep the first
	}
	info := senderKeyInfo(c.room, c.instance, head.Epoch, h.Generation, head.Hash(), h.Sender, me)
	base, err := openBaseKey(c.kemKey, info, sk.sealed)
	if err != nil {
		return fmt.Errorf("e2ee: key from %s: %w", h.Sender.Short(), err)
	}
	defer clear(base)
	if c.observeBaseKey != nil {
		c.observeBaseKey(base)
	}
	kid := KID(head.Epoch, senderIndex, h.Generation)
	key, err := sframe.DeriveKey(kid, base)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head != head || c.state != StateMember {
		return nil
	}
	now := c.clock.Now()
	for _, k := range c.recv {
		if k.Sender == h.Sender && k.Expires.IsZero() {
			k.Expires = now.Add(c.grace)
		}
	}
	c.recv[kid] = &ReceiveKey{Sender: h.Sender, Epoch: head.Epoch, Generation: h.Generation, Key: key}
	c.generations[h.Sender] = h.Generation
	c.accepted[h.Sender] = d
	return nil
}

// prune drops keys whose grace period is over.
func (c *Client) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	for kid, k := range c.recv {
		if !k.Expires.IsZero() && !now.Before(k.Expires) {
			delete(c.recv, kid)
		}
	}
	if c.send != nil && !c.send.expires.IsZero() && !now.Before(c.send.expires) {
		c.send = nil
	}
}

// Status returns what the client has verified so far.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state}
	if c.head == nil {
		return st
	}
	st.Epoch, st.Roster, st.Locked = c.head.Epoch, c.head.Hash(), c.head.Locked
	st.SecurityCode = SecurityCode(c.head.Hash())
	for i, h := range c.head.Members {
		m := Member{Credential: h, Index: i, Self: c.cred != nil && h == c.cred.Hash()}
		if cred := c.creds[h]; cred != nil {
			m.Identity, m.DisplayName, m.Role, m.KEM = cred.Identity, cred.DisplayName, cred.Role, cred.KEM
		}
		st.Members = append(st.Members, m)
	}
	return st
}

// EncryptionKey returns this sender's current SFrame key. After an epoch change the previous key stays usable
// for the grace period while the new bundle is posted, never longer.
func (c *Client) EncryptionKey() (*sframe.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if c.send == nil || (!c.send.expires.IsZero() && !c.clock.Now().Before(c.send.expires)) {
		return nil, ErrNoKey
	}
	return c.send.key, nil
}

// DecryptionKey returns the live SFrame key for kid (read from a frame's SFrame header) and its sender.
func (c *Client) DecryptionKey(kid uint64) (*sframe.Key, Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, Hash{}, err
	}
	k := c.recv[kid]
	if k == nil || (!k.Expires.IsZero() && !c.clock.Now().Before(k.Expires)) {
		return nil, Hash{}, fmt.Errorf("%w: KID %#x", ErrNoKey, kid)
	}
	return k.Key, k.Sender, nil
}

// ReceiveKeys returns every live decryption key, ordered by KID.
func (c *Client) ReceiveKeys() []ReceiveKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	out := make([]ReceiveKey, 0, len(c.recv))
	for _, k := range c.recv {
		if k.Expires.IsZero() || now.Before(k.Expires) {
			out = append(out, *k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.KID() < out[j].Key.KID() })
	return out
}

// Run registers if needed and then follows the meeting until ctx ends, the client is removed (ErrRemoved) or
// an alarm halts it. onStatus, if set, sees each new epoch and state.
func (c *Client) Run(ctx context.Context, onStatus func(Status)) error {
	if c.Status().State == StateUnregistered {
		if _, err := c.Register(ctx); err != nil {
			return err
		}
	}
	var last Status
	for {
		st, err := c.Sync(ctx)
		if onStatus != nil && (st.State != last.State || st.Roster != last.Roster) {
			onStatus(st)
		}
		last = st
		switch {
		case errors.Is(err, ErrAlarm), errors.Is(err, ErrHalted), errors.Is(err, ErrRemoved):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// A failed round may leave the gateway's counter ahead of ours; pause rather than spin.
			c.log.Warn("e2ee.sync", zap.Error(err))
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, c.nextWake())
		c.mu.Lock()
		version := c.version
		c.mu.Unlock()
		_, werr := c.transport.Wait(wctx, version)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if werr != nil && !errors.Is(werr, context.DeadlineExceeded) {
			c.log.Warn("e2ee.wait", zap.Error(werr))
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// nextWake is how long Run may wait for the gateway before a timer (re-key, end of a grace period) is due.
func (c *Client) nextWake() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	wake := 25 * time.Second
	consider := func(t time.Time) {
		if !t.IsZero() {
			wake = min(wake, max(t.Sub(now), 10*time.Millisecond))
		}
	}
	if c.send != nil {
		consider(c.send.created.Add(c.rekeyEvery))
		consider(c.send.expires)
	}
	for _, k := range c.recv {
		consider(k.Expires)
	}
	return wake
}
