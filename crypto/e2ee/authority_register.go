package e2ee

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"go.uber.org/zap"
	"golang.org/x/crypto/cryptobyte"
)

// RegisterRequest is a registration as the gateway hands it to Register: the identity, display name and role
// come from the authenticated session and the policy decision, the device key, key package and proof from the
// client's Registration.
type RegisterRequest struct {
	Identity     Identity
	DisplayName  string
	Role         Role
	Registration *Registration
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
	if errors.Is(err, e2eestore.ErrNotFound) {
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
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil, fmt.Errorf("%w: no key package for %s", ErrUnknownCredential, h.Short())
	}
	if err != nil {
		return nil, err
	}
	return ParseKeyPackage(raw)
}

func (a *Authority) credential(ctx context.Context, h Hash) (*Credential, error) {
	raw, err := a.store.Get(ctx, a.k("cred/"+h.String()))
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCredential, h.Short())
	}
	if err != nil {
		return nil, err
	}
	return ParseCredential(raw)
}
