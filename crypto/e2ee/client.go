package e2ee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
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
	// newest is the latest credential expiry seen per device key: a credential a renewal replaced is never
	// accepted again.
	newest  map[string]time.Time
	renewAt time.Time     // when this device registers again to renew its credential
	pending map[Hash]bool // own other devices awaiting confirmation
	changes []Change
	lastErr error
	// rosterErr is why the last roster fetch failed, nil once one succeeds: a member the gateway stops serving
	// (its ticket refused, its admission lapsed) keeps retrying, and its Status must say why it is stuck.
	rosterErr error
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
		newest:        map[string]time.Time{},
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
	c.renewAt = renewTime(cred, c.clock.Now())
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
	if since == 0 && (errors.Is(err, ErrNotMember) || errors.Is(err, ErrNoRoster)) {
		c.setRosterErr(nil)
		return c.Status(), nil // not admitted yet
	}
	if err != nil {
		err = fmt.Errorf("e2ee: roster: %w", err)
		if ctx.Err() == nil { // the caller's own stop says nothing about the meeting
			c.setRosterErr(err)
		}
		return c.Status(), err
	}
	c.setRosterErr(nil)
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
	if rerr := c.renewIfDue(ctx); errors.Is(rerr, ErrAlarm) {
		return c.Status(), c.fail(rerr)
	}
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	c.prune()
	return c.Status(), err
}

// setRosterErr records why the last roster fetch failed (nil: it succeeded), for Status.
func (c *Client) setRosterErr(err error) {
	c.mu.Lock()
	c.rosterErr = err
	c.mu.Unlock()
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
	if c.state == StateMember {
		consider(c.renewAt)
	}
	for _, e := range c.old {
		consider(e.expires)
	}
	return wake
}
