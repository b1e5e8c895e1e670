package e2ee

import (
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

// retire starts e's grace period; the caller holds c.mu.
func (c *Client) retire(e *epochState, now time.Time) {
	if e.expires.IsZero() {
		e.expires = now.Add(c.grace)
		c.old = append(c.old, e)
	}
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
		if root, err = merkleRoot(leaves); err != nil {
			clear(secret)
			return nil, nil, nil, err
		}
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
	if !cred.NotAfter.After(now) {
		// Its holder did not renew it: nothing is sealed to it until the gateway drops it (DropExpired).
		return fmt.Errorf("e2ee: member %s: %w %v", h.Short(), ErrCredentialExpired, cred.NotAfter)
	}
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
	if m, expired := c.expiredMember(head, c.clock.Now()); expired {
		// Whoever committed, a secret shared with a member whose credential expired is not used.
		return fmt.Errorf("e2ee: member %s: %w: epoch secret not used", m.Short(), ErrCredentialExpired)
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
