package e2ee

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/cryptobyte"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/sframe"
)

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
	// The sender may have been admitted (or removed) through another gateway node.
	if err := a.refresh(ctx); err != nil {
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
	// One post per interval per member on all gateway nodes together: the slot is a store entry that lapses
	// after the interval, taken with Create (atomic on every node sharing the store), so N nodes do not allow
	// N posts. A post refused after taking the slot (replay, store failure) still spends it.
	switch err := a.store.Create(ctx, a.k("kprate/"+sender.String()), []byte{1}, a.kpInterval); {
	case errors.Is(err, e2eestore.ErrExists):
		return fmt.Errorf("%w: one key package per %v", ErrRateLimited, a.kpInterval)
	case err != nil:
		return fmt.Errorf("e2ee: key package rate limit: %w", err)
	}
	if prev, err := a.KeyPackageOf(ctx, sender); err == nil && kp.Seq <= prev.Seq {
		return fmt.Errorf("%w: key package %d not above %d", ErrReplay, kp.Seq, prev.Seq)
	}
	if err := a.store.Put(ctx, a.k("kp/"+sender.String()), kp.raw, 2*a.credTTL); err != nil {
		return fmt.Errorf("e2ee: store key package: %w", err)
	}
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
		var err error
		if root, paths, err = merkleTree(leaves); err != nil {
			return err
		}
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
		if errors.Is(err, e2eestore.ErrNotFound) {
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
		if errors.Is(err, e2eestore.ErrExists) {
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
	a.bump(ctx)
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
	if errors.Is(err, e2eestore.ErrNotFound) {
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
