package e2ee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	// ExpectIdentity is who this client is (the identity of its OIDC token). When set, a gateway that offers to
	// certify this device for anyone else raises ErrIdentityMismatch. An empty Issuer matches any issuer.
	ExpectIdentity Identity
	// DeviceKey is the device's Ed25519 signing key. Default: a fresh key.
	DeviceKey ed25519.PrivateKey
	// OwnDevices are the signing keys of this user's other devices, confirmed out of band; they are accepted
	// under this client's identity without a confirmation prompt.
	OwnDevices []ed25519.PublicKey
	// KEM is the KEM of this device's key packages. Default KEMXWing; KEMX25519 needs AllowClassicKEM.
	KEM KEM
	// AllowClassicKEM lets this client use, and seal to, classic X25519 key packages. Default false: the client
	// requires post-quantum protection from every member and refuses an epoch with a classic member.
	AllowClassicKEM bool
	// GracePeriod is how long the keys of a replaced epoch or generation still decrypt. Default 2 seconds.
	GracePeriod time.Duration
	// RekeyInterval is how often the members of a long epoch draw a new epoch secret (a new generation), and
	// how often a device publishes a fresh key package. Default 5 minutes; at most 5 minutes.
	RekeyInterval time.Duration
	// KeyPackageTTL is the lifetime of this device's key packages: the longest a gateway that withholds newer
	// ones can make others seal to an old one. Default and maximum 2 × RekeyInterval.
	KeyPackageTTL time.Duration
	// CommitTimeout is how long a member that is not the designated committer of an epoch waits for its commit
	// before committing itself. Default 3 seconds.
	CommitTimeout time.Duration
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

// Member is one roster entry (one device) as a client has verified it.
type Member struct {
	Credential  Hash
	Identity    Identity
	DisplayName string
	Role        Role
	Fingerprint string // short name of the device key, shown next to the device
	KEM         KEM    // from the epoch's commit; zero until the client holds it
	Index       int    // position in the roster, the KID's sender index
	Self        bool
	// OwnDevice marks another device of this client's own identity; Confirmed says whether it is accepted
	// (added while this device was present, listed in OwnDevices, or confirmed with ConfirmDevice).
	OwnDevice bool
	Confirmed bool
}

// ChangeKind names a roster change a client reports.
type ChangeKind string

// Roster changes reported in Status.Changes.
const (
	ChangeLocked         ChangeKind = "locked"
	ChangeUnlocked       ChangeKind = "unlocked"
	ChangeAdded          ChangeKind = "added"
	ChangeRemoved        ChangeKind = "removed"
	ChangeOwnDeviceAdded ChangeKind = "own_device_added"
)

// Change is one roster change this client saw between two epochs. A UI shows every lock change and every
// member added while the room was unlocked (docs/e2ee.md section 7).
type Change struct {
	Epoch       uint64
	Kind        ChangeKind
	Member      Hash
	DisplayName string
	Fingerprint string
	Unlocked    bool // for ChangeAdded: the room was not locked when the member was added
}

// maxChanges bounds the change history a client keeps.
const maxChanges = 256

// Status is a snapshot of what the client has verified.
type Status struct {
	State      State
	Epoch      uint64
	Generation uint8 // of the epoch secret in use
	Roster     Hash
	Locked     bool
	Members    []Member
	// SecurityCode is derived from the epoch authenticator; empty until the client holds the epoch secret.
	// Compare it only with peers showing the same epoch and generation.
	SecurityCode string
	// Changes is every lock change and membership change seen so far, oldest first (at most 256).
	Changes []Change
	// Unconfirmed lists the fingerprints of devices under this client's identity that were in the room before
	// it and are not confirmed: a UI asks the user "is this your device?" (ConfirmDevice or RejectDevice).
	Unconfirmed []string
	// Err is why the client holds no key for the head epoch, if it is for a reason other than waiting (for
	// example a classic-KEM member in a room where this client requires post-quantum keys).
	Err error
}

// Devices groups the members by identity, in roster order of each identity's first device.
func (s Status) Devices() [][]Member {
	var out [][]Member
	at := map[Identity]int{}
	for _, m := range s.Members {
		i, ok := at[m.Identity]
		if !ok {
			i = len(out)
			at[m.Identity] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}

// ownKeyPackage is a key package this device published and the private key behind it.
type ownKeyPackage struct {
	kp         *KeyPackage
	priv       hpke.PrivateKey
	created    time.Time
	superseded time.Time // when a newer one was published; erased a grace period later
}

// epochState is one epoch secret's derived keys with the roster they are for.
type epochState struct {
	keys    *epochKeys
	roster  *Roster
	kems    []KEM
	at      time.Time // when installed
	expires time.Time // zero while current
	send    map[uint8]*sframe.SendContext
	recv    map[uint64]*sframe.ReceiveContext
}

// Client is a participant: it registers its device, follows and verifies the roster chain, publishes fresh
// device-signed key packages, commits or opens the epoch secret, and derives SFrame keys per sender and
// stream. Whatever an honest gateway would never send raises an *AlarmError and halts the client. It is safe for
// concurrent use; media code may call Encrypt, Decrypt, EncryptionKey and DecryptionKey while Sync runs.
type Client struct {
	transport     Transport
	authority     ed25519.PublicKey
	room          string
	expect        Identity
	device        ed25519.PrivateKey
	ownDevices    [][]byte
	kem           KEM
	allowClassic  bool
	grace         time.Duration
	rekeyEvery    time.Duration
	kpTTL         time.Duration
	commitTimeout time.Duration
	clock         Clock
	log           *zap.Logger
	// observeSecret, when set by a test, sees every epoch secret this client draws or opens.
	observeSecret func(secret []byte)

	// syncMu serialises Register and Sync. cred, instance, head and creds are written with both syncMu and mu
	// held, so code holding either may read them.
	syncMu sync.Mutex
	mu     sync.Mutex

	state     State
	halt      error
	instance  string
	identity  Identity
	cred      *Credential
	head      *Roster
	headSeen  time.Time            // when the head was installed
	creds     map[Hash]*Credential // verified credentials of the head's members
	version   uint64
	kps       []*ownKeyPackage // this device's live key packages, oldest first
	nextSeq   uint64
	kpSeq     map[Hash]uint64 // highest key package sequence seen per member
	current   *epochState     // the head epoch's newest generation, nil until opened or committed
	old       []*epochState   // replaced ones within their grace period
	confirmed map[Hash]bool   // own other devices accepted
	pending   map[Hash]bool   // own other devices awaiting confirmation
	changes   []Change
	lastErr   error
	// lostRace is the last (epoch, generation) this client's commit was refused for as already committed.
	lostRace struct {
		epoch uint64
		gen   uint8
		set   bool
	}
}

// NewClient returns an unregistered client.
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
		transport:     opts.Transport,
		authority:     bytes.Clone(opts.AuthorityKey),
		room:          opts.Room,
		expect:        opts.ExpectIdentity,
		device:        opts.DeviceKey,
		kem:           opts.KEM,
		allowClassic:  opts.AllowClassicKEM,
		grace:         opts.GracePeriod,
		rekeyEvery:    opts.RekeyInterval,
		kpTTL:         opts.KeyPackageTTL,
		commitTimeout: opts.CommitTimeout,
		clock:         opts.Clock,
		log:           opts.Logger,
		kpSeq:         map[Hash]uint64{},
		confirmed:     map[Hash]bool{},
		pending:       map[Hash]bool{},
	}
	for _, k := range opts.OwnDevices {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("e2ee: client: OwnDevices must be Ed25519 public keys")
		}
		c.ownDevices = append(c.ownDevices, bytes.Clone(k))
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
	if _, err := c.kem.hpkeKEM(); err != nil {
		return nil, err
	}
	if c.kem == KEMX25519 && !c.allowClassic {
		return nil, fmt.Errorf("e2ee: client: %w: X25519 needs AllowClassicKEM", ErrKEMNotAllowed)
	}
	if c.grace <= 0 {
		c.grace = 2 * time.Second
	}
	if c.rekeyEvery <= 0 || c.rekeyEvery > 5*time.Minute {
		c.rekeyEvery = 5 * time.Minute
	}
	if c.kpTTL <= 0 || c.kpTTL > 2*c.rekeyEvery {
		c.kpTTL = 2 * c.rekeyEvery
	}
	if c.commitTimeout <= 0 {
		c.commitTimeout = 3 * time.Second
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

// wipe drops every key, epoch secret and KEM private key; the caller holds c.mu.
func (c *Client) wipe() {
	if c.current != nil {
		c.current.keys.wipe()
	}
	for _, e := range c.old {
		e.keys.wipe()
	}
	c.current, c.old, c.kps = nil, nil, nil
}

// newKeyPackage makes and signs a fresh key package with a fresh KEM key.
func (c *Client) newKeyPackage(instance string, id Identity) (*ownKeyPackage, error) {
	kem, err := c.kem.hpkeKEM()
	if err != nil {
		return nil, err
	}
	priv, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("e2ee: generate KEM key: %w", err)
	}
	now := c.clock.Now()
	c.nextSeq++
	kp, err := newKeyPackage(c.device, &KeyPackage{
		Room: c.room, Instance: instance, Identity: id, SigningKey: c.device.Public().(ed25519.PublicKey),
		Seq: c.nextSeq, KEM: c.kem, KEMKey: priv.PublicKey().Bytes(), NotAfter: now.Add(c.kpTTL).Truncate(time.Millisecond),
	})
	if err != nil {
		return nil, err
	}
	return &ownKeyPackage{kp: kp, priv: priv, created: now}, nil
}

// Register obtains a challenge, checks the identity the gateway will certify, signs a first key package for
// it, proves possession of the device key and verifies the credential the gateway returns: signed by the
// authority, for this room, this identity and exactly this device key.
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
	if c.expect.Subject != "" && !ch.Identity.Matches(c.expect) {
		return nil, c.fail(alarm(ErrIdentityMismatch, 0, Hash{}, "gateway would certify this device as %s, expected %s", ch.Identity, c.expect))
	}
	own, err := c.newKeyPackage(ch.Instance, ch.Identity)
	if err != nil {
		return nil, err
	}
	reg, err := newRegistration(c.device, own.kp, ch)
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
	case !bytes.Equal(cred.SigningKey, c.device.Public().(ed25519.PublicKey)):
		return nil, c.fail(alarm(ErrCredentialMismatch, 0, cred.Hash(), "own credential does not carry this device's key"))
	case cred.Identity != ch.Identity || (c.expect.Subject != "" && !cred.Identity.Matches(c.expect)):
		return nil, c.fail(alarm(ErrIdentityMismatch, 0, cred.Hash(), "own credential certifies %s", cred.Identity))
	case !cred.NotAfter.After(c.clock.Now()):
		return nil, fmt.Errorf("e2ee: register: %w: own credential", ErrCredentialExpired)
	}
	c.mu.Lock()
	c.cred, c.instance, c.identity, c.state = cred, ch.Instance, ch.Identity, StateWaiting
	c.kps = []*ownKeyPackage{own}
	c.mu.Unlock()
	c.log.Info("e2ee.registered", zap.String("credential", cred.Hash().Short()), zap.String("instance", ch.Instance),
		zap.Stringer("kem", c.kem), zap.String("device", cred.Fingerprint()))
	return cred, nil
}

// Credential returns the client's own credential, nil before Register.
func (c *Client) Credential() *Credential {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// Sync runs one round of the protocol: follow the roster chain, open the epoch secret sealed to this client (or
// commit one when it is this client's turn), publish a fresh key package when the last one was used or is due,
// and drop keys past their grace period. It returns ErrRemoved once the client left the roster, and an
// *AlarmError (then ErrHalted on every later call) when the gateway deviated from the protocol.
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
	err = c.keys(ctx)
	if errors.Is(err, ErrAlarm) {
		return c.Status(), c.fail(err)
	}
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	c.prune()
	return c.Status(), err
}

// keys brings this client's epoch secret up to date: open what was committed, commit when it is this client's
// turn, refresh the key package.
func (c *Client) keys(ctx context.Context) error {
	var errs []error
	for range 2 { // a lost commit race is followed by one fetch of the winner
		lost, err := c.fetchOrCommit(ctx)
		if err != nil {
			if errors.Is(err, ErrAlarm) {
				return err
			}
			errs = append(errs, err)
		}
		if !lost {
			break
		}
	}
	if err := c.refreshKeyPackage(ctx, false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fetchOrCommit opens the newest commit of the head epoch, or commits when none is due from someone else. It
// reports whether this client lost a commit race (and should fetch the winner).
func (c *Client) fetchOrCommit(ctx context.Context) (lost bool, _ error) {
	head := c.head
	raw, err := c.transport.SealedKeys(ctx, head.Epoch)
	if err != nil {
		if errors.Is(err, ErrStaleEpoch) {
			return false, nil // the next Sync fetches the new epoch
		}
		return false, fmt.Errorf("e2ee: sealed keys: %w", err)
	}
	secrets, err := parseSealedSecrets(raw)
	if err != nil {
		return false, err
	}
	var gen uint8
	var openErr error
	for _, s := range secrets {
		if err := c.acceptSealedSecret(ctx, head, s); err != nil {
			if !errors.Is(err, ErrUndecryptable) {
				return false, err
			}
			// Sealed to a key package this device has erased (a commit that raced its refresh): after the
			// commit timeout any member that cannot open the epoch's secret commits the next generation.
			openErr, gen = err, s.header.Generation+1
		}
	}
	c.mu.Lock()
	cur, seen := c.current, c.headSeen
	c.mu.Unlock()
	now := c.clock.Now()
	switch {
	case cur == nil && openErr != nil:
		if now.Sub(seen) < c.commitTimeout || gen == 0 {
			return false, openErr
		}
	case cur == nil && len(secrets) == 0 && c.lostRace.epoch == head.Epoch && c.lostRace.set && c.lostRace.gen < 255:
		// This client lost the race for a generation, yet no secret of it is sealed to it: the winner was its
		// own commit, whose answer it never got. It cannot recover that secret, so it commits the next one.
		gen, openErr = c.lostRace.gen+1, ErrConflict
	case cur == nil:
		gen = 0
	case now.Sub(cur.at) >= c.rekeyEvery && cur.keys.generation < 255:
		gen, seen = cur.keys.generation+1, cur.at.Add(c.rekeyEvery)
	default:
		return false, nil
	}
	if openErr == nil && !c.designated(head, gen) && now.Sub(seen) < c.commitTimeout {
		return false, nil // the designated committer goes first
	}
	err = c.commit(ctx, head, gen)
	switch {
	case errors.Is(err, ErrConflict):
		c.lostRace.epoch, c.lostRace.gen, c.lostRace.set = head.Epoch, gen, true
		return true, nil
	case errors.Is(err, ErrStaleEpoch), errors.Is(err, ErrRateLimited):
		return false, nil
	case err != nil:
		return false, err
	}
	// A member publishes a fresh key package with every epoch it takes part in, committer or not.
	return false, c.refreshKeyPackage(ctx, true)
}

// designated reports whether this client is the designated committer of generation gen of head: the member at
// index (epoch + gen) mod n. Others commit only after CommitTimeout, so a silent member cannot stall an epoch.
func (c *Client) designated(head *Roster, gen uint8) bool {
	i, _ := head.Index(c.cred.Hash())
	return uint64(i) == (head.Epoch+uint64(gen))%uint64(len(head.Members))
}

// refreshKeyPackage publishes a new key package when the newest one has been used to seal a secret or is older
// than the re-key interval.
func (c *Client) refreshKeyPackage(ctx context.Context, used bool) error {
	c.mu.Lock()
	newest := c.kps[len(c.kps)-1]
	due := used || c.clock.Now().Sub(newest.created) >= c.rekeyEvery
	instance, id := c.instance, c.identity
	c.mu.Unlock()
	if !due {
		return nil
	}
	own, err := c.newKeyPackage(instance, id)
	if err != nil {
		return err
	}
	if err := c.transport.PostKeyPackage(ctx, own.kp.Bytes()); err != nil {
		if errors.Is(err, ErrRateLimited) {
			return nil // the next Sync retries
		}
		return fmt.Errorf("e2ee: post key package: %w", err)
	}
	c.mu.Lock()
	for _, k := range c.kps {
		if k.superseded.IsZero() {
			k.superseded = own.created
		}
	}
	c.kps = append(c.kps, own)
	c.mu.Unlock()
	return nil
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
		head := c.head
		if head == nil {
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
		if head := c.head; head != nil && !r.Has(me) {
			// An honest gateway removes a device and admits another in separate epochs; one epoch that does both
			// under this client's identity is a substitution the removed device would otherwise never see.
			for _, m := range r.Members {
				if !head.Has(m) && creds[m].Identity == c.identity {
					return alarm(ErrImpersonation, r.Epoch, m, "this device was replaced by %s in one epoch", creds[m].Fingerprint())
				}
			}
		}
		c.install(r, creds, r.Has(me))
		if !r.Has(me) {
			return nil
		}
	}
	return nil
}

// verifyMembers returns the verified credential of every member of r, and enforces the device rules: no two
// entries share a device key, and another entry with this client's identity is one of the user's own devices
// (docs/e2ee.md section 7.2).
func (c *Client) verifyMembers(r *Roster, offered map[Hash]*Credential) (map[Hash]*Credential, error) {
	me := c.cred.Hash()
	out := make(map[Hash]*Credential, len(r.Members))
	keys := make(map[string]Hash, len(r.Members))
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
		if other, dup := keys[string(cred.SigningKey)]; dup {
			culprit := h
			if h == me {
				culprit = other
			}
			return nil, alarm(ErrClone, r.Epoch, culprit, "device %s appears twice in the roster", cred.Fingerprint())
		}
		keys[string(cred.SigningKey)] = h
		out[h] = cred
	}
	return out, nil
}

// install makes r the head and records what changed. The previous epoch's keys start their grace period; if
// this client is no longer a member it is removed and keeps no key at all.
func (c *Client) install(r *Roster, creds map[Hash]*Credential, member bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	prev := c.head
	if !member {
		c.head, c.creds, c.state = r, creds, StateRemoved
		c.wipe()
		c.log.Info("e2ee.removed", zap.Uint64("epoch", r.Epoch))
		return
	}
	me := c.cred.Hash()
	for _, h := range r.Members {
		cred := creds[h]
		if h == me || prev != nil && prev.Has(h) {
			continue
		}
		// A member (re)joining starts a new run of key packages: a device that re-registered within the same
		// second gets the same credential back and numbers its key packages from 1 again.
		delete(c.kpSeq, h)
		own := cred.Identity == c.identity
		switch {
		case own && c.isOwnDevice(cred.SigningKey):
			c.confirmed[h] = true
		case own && prev != nil:
			// Added while this device was present: accepted, and reported so the user sees it.
			c.confirmed[h] = true
			c.record(Change{Epoch: r.Epoch, Kind: ChangeOwnDeviceAdded, Member: h, DisplayName: cred.DisplayName, Fingerprint: cred.Fingerprint()})
		case own:
			c.pending[h] = true
		}
		if prev != nil {
			c.record(Change{Epoch: r.Epoch, Kind: ChangeAdded, Member: h, DisplayName: cred.DisplayName,
				Fingerprint: cred.Fingerprint(), Unlocked: !prev.Locked})
		}
	}
	if prev != nil {
		for _, h := range prev.Members {
			if !r.Has(h) {
				cred := c.creds[h]
				c.record(Change{Epoch: r.Epoch, Kind: ChangeRemoved, Member: h, DisplayName: cred.DisplayName, Fingerprint: cred.Fingerprint()})
				delete(c.pending, h)
				delete(c.confirmed, h)
			}
		}
		if r.Locked != prev.Locked {
			kind := ChangeUnlocked
			if r.Locked {
				kind = ChangeLocked
			}
			c.record(Change{Epoch: r.Epoch, Kind: kind})
		}
	}
	if c.current != nil {
		c.retire(c.current, now)
		c.current = nil
	}
	c.head, c.creds, c.state, c.headSeen = r, creds, StateMember, now
	c.log.Info("e2ee.epoch", zap.Uint64("epoch", r.Epoch), zap.Int("members", len(r.Members)), zap.Bool("locked", r.Locked))
}

func (c *Client) isOwnDevice(key ed25519.PublicKey) bool {
	return slices.ContainsFunc(c.ownDevices, func(k []byte) bool { return bytes.Equal(k, key) })
}

// record appends a change; the caller holds c.mu.
func (c *Client) record(ch Change) {
	c.changes = append(c.changes, ch)
	if len(c.changes) > maxChanges {
		c.changes = slices.Delete(c.changes, 0, len(c.changes)-maxChanges)
	}
}

// retire starts e's grace period; the caller holds c.mu.
func (c *Client) retire(e *epochState, now time.Time) {
	if e.expires.IsZero() {
		e.expires = now.Add(c.grace)
		c.old = append(c.old, e)
	}
}

// ConfirmDevice accepts the device with this fingerprint as one of the user's own (the user said "yes, that is
// my phone").
func (c *Client) ConfirmDevice(fingerprint string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h := range c.pending {
		if c.creds[h] != nil && c.creds[h].Fingerprint() == fingerprint {
			delete(c.pending, h)
			c.confirmed[h] = true
			return nil
		}
	}
	return fmt.Errorf("e2ee: no unconfirmed device %q", fingerprint)
}

// RejectDevice reports that the device with this fingerprint, listed under the user's own identity, is not
// theirs: someone else holds their identity. It raises ErrImpersonation and halts the client.
func (c *Client) RejectDevice(fingerprint string) error {
	c.mu.Lock()
	var who Hash
	epoch := uint64(0)
	for h := range c.pending {
		if c.creds[h] != nil && c.creds[h].Fingerprint() == fingerprint {
			who = h
		}
	}
	if c.head != nil {
		epoch = c.head.Epoch
	}
	c.mu.Unlock()
	if who.IsZero() {
		return fmt.Errorf("e2ee: no unconfirmed device %q", fingerprint)
	}
	return c.fail(alarm(ErrImpersonation, epoch, who, "the user does not own device %s", fingerprint))
}

// commit draws a fresh epoch secret for generation gen of head and seals it to every other member's newest key
// package, after verifying each one against the member's credential.
func (c *Client) commit(ctx context.Context, head *Roster, gen uint8) error {
	raw, err := c.transport.KeyPackages(ctx, head.Epoch)
	if err != nil {
		return fmt.Errorf("e2ee: key packages: %w", err)
	}
	kps, err := parseKeyPackages(raw)
	if err != nil {
		return err
	}
	if len(kps) != len(head.Members) {
		return alarm(ErrCredentialMismatch, head.Epoch, Hash{}, "%d key packages for %d members", len(kps), len(head.Members))
	}
	kems, err := c.checkKeyPackages(head, kps, c.clock.Now())
	if err != nil {
		return err
	}
	header, body, secret, err := c.sealCommit(head, gen, kps, kems)
	if err != nil {
		return err
	}
	defer clear(secret)
	if err := c.transport.PostCommit(ctx, head.Epoch, body); err != nil {
		return fmt.Errorf("e2ee: post commit: %w", err)
	}
	keys, err := newEpochKeys(secret, header, c.authority)
	if err != nil {
		return err
	}
	c.adopt(head, header, keys)
	return nil
}

// checkKeyPackages checks every other member's key package (checkKeyPackage) on all cores and returns the KEM
// of every member, this client's own from its newest key package.
func (c *Client) checkKeyPackages(head *Roster, kps []*KeyPackage, now time.Time) ([]KEM, error) {
	me := c.cred.Hash()
	c.mu.Lock()
	myKP := c.kps[len(c.kps)-1].kp
	c.mu.Unlock()
	kems := make([]KEM, len(head.Members))
	errs := make([]error, len(head.Members))
	_ = parallel(len(head.Members), func(i int) error {
		h, kp := head.Members[i], kps[i]
		if h == me {
			kems[i] = myKP.KEM
			return nil
		}
		errs[i] = c.checkKeyPackage(head, h, kp, now)
		kems[i] = kp.KEM
		return nil
	})
	// Alarms first, in roster order, so the same gateway deviation always names the same member.
	for _, err := range errs {
		if errors.Is(err, ErrAlarm) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return kems, nil
}

// sealCommit draws the epoch secret and seals it to the key packages kps (in roster order; this client's own
// entry is skipped), returning the signed header, the Commit to post and the secret.
func (c *Client) sealCommit(head *Roster, gen uint8, kps []*KeyPackage, kems []KEM) (*commitHeader, []byte, []byte, error) {
	me := c.cred.Hash()
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, nil, fmt.Errorf("e2ee: epoch secret: %w", err)
	}
	if c.observeSecret != nil {
		c.observeSecret(secret)
	}
	others := make([]int, 0, len(head.Members)-1) // roster indexes of the recipients
	for i, h := range head.Members {
		if h != me {
			others = append(others, i)
		}
	}
	entries := make([]commitEntry, len(others))
	leaves := make([]Hash, len(others))
	err := parallel(len(others), func(j int) error {
		i := others[j]
		h, kp := head.Members[i], kps[i]
		info := epochSecretInfo(c.room, c.instance, head.Epoch, gen, head.Hash(), me, h, kp.Hash())
		sealed, err := sealSecret(kp.kemPub, info, secret)
		if err != nil {
			return err
		}
		entries[j] = commitEntry{recipient: h, keyPackage: kp.Hash(), sealed: sealed}
		leaves[j] = leafHash(h, kp.Hash(), sealed)
		return nil
	})
	if err != nil {
		clear(secret)
		return nil, nil, nil, err
	}
	var root Hash
	if len(leaves) > 0 {
		root = merkleRoot(leaves)
	}
	header, err := signCommitHeader(c.device, &commitHeader{
		Room: c.room, Instance: c.instance, Epoch: head.Epoch, Generation: gen, RosterHash: head.Hash(),
		Committer: me, Suite: sframe.CipherSuite, KEMs: kems, LeafCount: uint32(len(entries)), Root: root,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	body, err := (&commit{header: header, entries: entries}).marshal()
	if err != nil {
		return nil, nil, nil, err
	}
	return header, body, secret, nil
}

// checkKeyPackage verifies member h's key package before this client seals to it: the member's own device
// signed it for this room, instance and identity, it is unexpired, never older than one this client saw
// before, and post-quantum unless this client allows classic KEMs.
func (c *Client) checkKeyPackage(head *Roster, h Hash, kp *KeyPackage, now time.Time) error {
	cred := c.creds[h]
	if err := kp.checkFor(cred, now); err != nil {
		if errors.Is(err, ErrCredentialExpired) {
			return fmt.Errorf("e2ee: member %s: %w", h.Short(), err) // a member that went quiet, not proof of malice
		}
		return alarm(errorKind(err), head.Epoch, h, "key package: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last := c.kpSeq[h]; kp.Seq < last {
		return alarm(ErrStaleKeyPackage, head.Epoch, h, "key package %d served after %d", kp.Seq, last)
	}
	c.kpSeq[h] = kp.Seq
	if kp.KEM == KEMX25519 && !c.allowClassic {
		return fmt.Errorf("%w: member %s (%s) uses a classic KEM and this client requires post-quantum keys", ErrKEMNotAllowed, cred.DisplayName, cred.Fingerprint())
	}
	return nil
}

// parallel runs f(0) … f(n-1) on GOMAXPROCS goroutines and returns the first error. Sealing and verifying
// for hundreds of members is the committer's whole cost, and it spreads over the device's cores.
func parallel(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = f(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// errorKind is the sentinel an alarm should carry for a refused key package.
func errorKind(err error) error {
	for _, k := range []error{ErrIdentityMismatch, ErrContextMismatch, ErrBadSignature} {
		if errors.Is(err, k) {
			return k
		}
	}
	return ErrBadSignature
}

// acceptSealedSecret verifies one sealed epoch secret against the head epoch and installs its keys.
func (c *Client) acceptSealedSecret(ctx context.Context, head *Roster, s *sealedSecret) error {
	h := s.header
	me := c.cred.Hash()
	c.mu.Lock()
	cur := c.current
	c.mu.Unlock()
	if cur != nil && cur.keys.commit == h.hash {
		return nil // installed before
	}
	if h.Room != c.room || h.Instance != c.instance {
		return alarm(ErrContextMismatch, head.Epoch, h.Committer, "commit for room %q instance %q", h.Room, h.Instance)
	}
	if h.Epoch != head.Epoch {
		return alarm(ErrReplay, head.Epoch, h.Committer, "commit of epoch %d served for epoch %d", h.Epoch, head.Epoch)
	}
	// A commit sealed to another roster of our epoch proves a fork, whoever sent it.
	if !hashEqual(h.RosterHash, head.Hash()) {
		return alarm(ErrFork, head.Epoch, h.Committer, "committer sealed to roster %s, ours is %s", h.RosterHash.Short(), head.Hash().Short())
	}
	committerIndex, ok := head.Index(h.Committer)
	if !ok {
		return alarm(ErrNotMember, head.Epoch, h.Committer, "commit from a non-member")
	}
	if h.Committer == me {
		return alarm(ErrReplay, head.Epoch, h.Committer, "own commit served back")
	}
	if !h.verify(c.creds[h.Committer].SigningKey) {
		return alarm(ErrBadSignature, head.Epoch, h.Committer, "commit not signed by the committer's device key")
	}
	myIndex, _ := head.Index(me)
	leaf := myIndex
	if leaf > committerIndex {
		leaf--
	}
	if int(h.LeafCount) != len(head.Members)-1 || int(s.index) != leaf || len(h.KEMs) != len(head.Members) {
		return alarm(ErrBadSignature, head.Epoch, h.Committer, "leaf %d of %d, expected %d of %d", s.index, h.LeafCount, leaf, len(head.Members)-1)
	}
	if !verifyInclusion(leafHash(me, s.keyPackage, s.sealed), uint64(s.index), uint64(h.LeafCount), s.proof, h.Root) {
		return alarm(ErrBadSignature, head.Epoch, h.Committer, "sealed secret not covered by the committer's signature")
	}
	if cur != nil {
		switch {
		case h.Generation < cur.keys.generation:
			return alarm(ErrReplay, head.Epoch, h.Committer, "generation %d after %d", h.Generation, cur.keys.generation)
		case h.Generation == cur.keys.generation:
			return alarm(ErrFork, head.Epoch, h.Committer, "two commits for generation %d", h.Generation)
		}
	}
	if h.Suite != sframe.CipherSuite {
		return fmt.Errorf("%w: commit uses SFrame suite %#04x", ErrMalformed, h.Suite)
	}
	if !c.allowClassic {
		for i, k := range h.KEMs {
			if k != KEMXWing {
				return fmt.Errorf("%w: member %s uses %v and this client requires post-quantum keys", ErrKEMNotAllowed, head.Members[i].Short(), k)
			}
		}
	}
	c.mu.Lock()
	var own *ownKeyPackage
	for _, k := range c.kps {
		if k.kp.Hash() == s.keyPackage {
			own = k
		}
	}
	c.mu.Unlock()
	if own == nil {
		return fmt.Errorf("%w: sealed to key package %s, which this device no longer holds", ErrUndecryptable, s.keyPackage.Short())
	}
	if h.KEMs[myIndex] != own.kp.KEM {
		return alarm(ErrBadSignature, head.Epoch, h.Committer, "commit lists KEM %v for this device, its key package is %v", h.KEMs[myIndex], own.kp.KEM)
	}
	info := epochSecretInfo(c.room, c.instance, head.Epoch, h.Generation, head.Hash(), h.Committer, me, s.keyPackage)
	secret, err := openSecret(own.priv, info, s.sealed)
	if err != nil {
		return fmt.Errorf("e2ee: epoch secret from %s: %w", h.Committer.Short(), err)
	}
	defer clear(secret)
	if c.observeSecret != nil {
		c.observeSecret(secret)
	}
	keys, err := newEpochKeys(secret, h, c.authority)
	if err != nil {
		return err
	}
	// Key packages older than the one just used are useless now: erase them. The one used is superseded by a
	// fresh one and erased a grace period later (a commit racing this one may still be sealed to it).
	c.mu.Lock()
	c.kps = slices.DeleteFunc(c.kps, func(k *ownKeyPackage) bool { return k.kp.Seq < own.kp.Seq })
	newest := c.kps[len(c.kps)-1] == own
	c.mu.Unlock()
	if !c.adopt(head, h, keys) {
		return nil
	}
	if newest {
		return c.refreshKeyPackage(ctx, true)
	}
	return nil
}

// adopt installs keys as the head epoch's current generation. It reports false if the head moved meanwhile.
func (c *Client) adopt(head *Roster, h *commitHeader, keys *epochKeys) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head != head || c.state != StateMember {
		keys.wipe()
		return false
	}
	now := c.clock.Now()
	if c.current != nil {
		c.retire(c.current, now)
	}
	c.current = &epochState{keys: keys, roster: head, kems: slices.Clone(h.KEMs), at: now,
		send: map[uint8]*sframe.SendContext{}, recv: map[uint64]*sframe.ReceiveContext{}}
	c.log.Info("e2ee.epoch_secret", zap.Uint64("epoch", head.Epoch), zap.Uint8("generation", h.Generation),
		zap.String("committer", h.Committer.Short()), zap.String("security_code", SecurityCode(keys.auth)))
	return true
}

// prune drops epoch keys and superseded KEM private keys whose grace period is over.
func (c *Client) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	c.kps = slices.DeleteFunc(c.kps, func(k *ownKeyPackage) bool {
		return !k.superseded.IsZero() && !now.Before(k.superseded.Add(c.grace))
	})
	c.old = slices.DeleteFunc(c.old, func(e *epochState) bool {
		if now.Before(e.expires) {
			return false
		}
		e.keys.wipe()
		return true
	})
}

// Status returns what the client has verified so far.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state, Changes: slices.Clone(c.changes), Err: c.lastErr}
	if c.head == nil {
		return st
	}
	st.Epoch, st.Roster, st.Locked = c.head.Epoch, c.head.Hash(), c.head.Locked
	if c.current != nil {
		st.SecurityCode = SecurityCode(c.current.keys.auth)
		st.Generation = c.current.keys.generation
	}
	for i, h := range c.head.Members {
		m := Member{Credential: h, Index: i, Self: c.cred != nil && h == c.cred.Hash()}
		if cred := c.creds[h]; cred != nil {
			m.Identity, m.DisplayName, m.Role, m.Fingerprint = cred.Identity, cred.DisplayName, cred.Role, cred.Fingerprint()
			m.OwnDevice = !m.Self && cred.Identity == c.identity
			m.Confirmed = m.OwnDevice && c.confirmed[h]
			if c.pending[h] {
				st.Unconfirmed = append(st.Unconfirmed, m.Fingerprint)
			}
		}
		if c.current != nil && i < len(c.current.kems) {
			m.KEM = c.current.kems[i]
		}
		st.Members = append(st.Members, m)
	}
	return st
}

// live returns the epoch keys for (epoch, generation) if they are current or within their grace period; the
// caller holds c.mu.
func (c *Client) live(epoch uint64, gen uint8) *epochState {
	now := c.clock.Now()
	if e := c.current; e != nil && e.keys.epoch == epoch && e.keys.generation == gen {
		return e
	}
	for _, e := range c.old {
		if e.keys.epoch == epoch && e.keys.generation == gen && now.Before(e.expires) {
			return e
		}
	}
	return nil
}

// EncryptionKey returns this sender's current SFrame key for one of its streams (one per media track). Media
// code should prefer Encrypt, which also owns the counter.
func (c *Client) EncryptionKey(stream uint8) (*sframe.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if c.current == nil {
		return nil, ErrNoKey
	}
	i, _ := c.current.roster.Index(c.cred.Hash())
	return c.current.keys.sframeKey(i, stream)
}

// DecryptionKey returns the live SFrame key for kid (read from a frame's SFrame header) and its sender.
func (c *Client) DecryptionKey(kid uint64) (*sframe.Key, Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, Hash{}, err
	}
	epoch, gen, index, stream := SplitKID(kid)
	e := c.live(epoch, gen)
	if e == nil || index >= len(e.roster.Members) {
		return nil, Hash{}, fmt.Errorf("%w: KID %#x", ErrNoKey, kid)
	}
	key, err := e.keys.sframeKey(index, stream)
	if err != nil {
		return nil, Hash{}, err
	}
	return key, e.roster.Members[index], nil
}

// Encrypt protects one frame of this sender's stream with the current key and the stream's next counter:
// every (sender, stream) has its own KID, and no counter is used twice under one KID.
func (c *Client) Encrypt(stream uint8, metadata, frame []byte) ([]byte, error) {
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	e := c.current
	if e == nil {
		c.mu.Unlock()
		return nil, ErrNoKey
	}
	ctx := e.send[stream]
	if ctx == nil {
		i, _ := e.roster.Index(c.cred.Hash())
		key, err := e.keys.sframeKey(i, stream)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		ctx = sframe.NewSendContext(key)
		e.send[stream] = ctx
	}
	c.mu.Unlock()
	return ctx.Protect(metadata, frame)
}

// Decrypt unprotects one frame and names its sender. It refuses frames under keys past their grace period and
// replayed frames (sframe.ErrReplay).
func (c *Client) Decrypt(metadata, frame []byte) ([]byte, Hash, error) {
	kid, _, _, err := sframe.ParseHeader(frame)
	if err != nil {
		return nil, Hash{}, err
	}
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return nil, Hash{}, err
	}
	epoch, gen, index, stream := SplitKID(kid)
	e := c.live(epoch, gen)
	if e == nil || index >= len(e.roster.Members) {
		c.mu.Unlock()
		return nil, Hash{}, fmt.Errorf("%w: KID %#x", ErrNoKey, kid)
	}
	rc := e.recv[kid]
	if rc == nil {
		key, err := e.keys.sframeKey(index, stream)
		if err != nil {
			c.mu.Unlock()
			return nil, Hash{}, err
		}
		rc = sframe.NewReceiveContext(key)
		e.recv[kid] = rc
	}
	sender := e.roster.Members[index]
	c.mu.Unlock()
	pt, err := rc.Unprotect(metadata, frame)
	return pt, sender, err
}

// Run registers if needed and then follows the meeting until ctx ends, the client is removed (ErrRemoved) or
// an alarm halts it. onStatus, if set, sees each new epoch, generation and state.
func (c *Client) Run(ctx context.Context, onStatus func(Status)) error {
	if c.Status().State == StateUnregistered {
		if _, err := c.Register(ctx); err != nil {
			return err
		}
	}
	var last Status
	for {
		st, err := c.Sync(ctx)
		if onStatus != nil && (st.State != last.State || st.Roster != last.Roster || st.SecurityCode != last.SecurityCode ||
			len(st.Unconfirmed) != len(last.Unconfirmed)) {
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

// nextWake is how long Run may wait for the gateway before a timer (commit timeout, re-key, key package
// refresh, end of a grace period) is due.
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
	if c.state == StateMember {
		if c.current == nil {
			consider(c.headSeen.Add(c.commitTimeout))
		} else {
			consider(c.current.at.Add(c.rekeyEvery))
			consider(c.current.at.Add(c.rekeyEvery + c.commitTimeout))
		}
	}
	if len(c.kps) > 0 {
		consider(c.kps[len(c.kps)-1].created.Add(c.rekeyEvery))
	}
	for _, e := range c.old {
		consider(e.expires)
	}
	return wake
}
