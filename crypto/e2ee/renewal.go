package e2ee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// Credential renewal (docs/e2ee.md section 7.4). A credential lives CredentialTTL (24 h); a member registers
// its device key again at a random point between half and three quarters of that lifetime, and the gateway
// replaces the old credential by the new one in ONE epoch. Clients recognise the replacement as a renewal, not
// as a member leaving and another joining: no change is reported, a locked roster accepts it, and the device's
// key package numbering, confirmation and roster position carry over. Renewals of different members are spread
// over a quarter of the lifetime, so a room whose members all joined together does not re-key in a burst.

// Renews reports whether c may replace old in one epoch as its renewal: the same room, instance, identity,
// display name, role and device key, and a strictly later expiry. Anything else changing is a member leaving and
// another joining, which the roster shows as such.
func (c *Credential) Renews(old *Credential) bool {
	return c != nil && old != nil && c.Room == old.Room && c.Instance == old.Instance && c.Identity == old.Identity &&
		c.DisplayName == old.DisplayName && c.Role == old.Role && bytes.Equal(c.SigningKey, old.SigningKey) &&
		c.NotAfter.After(old.NotAfter)
}

// Renew replaces the member credential old by its renewal renewed (registered through Register) as one new
// epoch. A locked room accepts it: no one is added. It fails with ErrNotMember if old is not in the roster and
// ErrCredentialMismatch if renewed does not renew old (Credential.Renews).
func (a *Authority) Renew(ctx context.Context, old, renewed Hash) (*Roster, error) {
	next, err := a.credential(ctx, renewed)
	if err != nil {
		return nil, err
	}
	return a.advance(ctx, "renew", false, func(c *rosterChange) error {
		prev, ok := c.members[old]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s", ErrNotMember, old.Short())
		case !next.Renews(prev):
			return fmt.Errorf("%w: %s does not renew %s", ErrCredentialMismatch, renewed.Short(), old.Short())
		case !next.NotAfter.After(c.at):
			return fmt.Errorf("%w: %s", ErrCredentialExpired, renewed.Short())
		}
		delete(c.members, old)
		c.members[renewed] = next
		return nil
	})
}

// DropExpired takes every member whose credential has expired out of the roster as one new epoch (none if
// nobody expired). Clients refuse to seal to, or open secrets beside, a member whose credential expired, so the
// gateway calls it at least every minute.
func (a *Authority) DropExpired(ctx context.Context) (*Roster, error) {
	return a.advance(ctx, "expire", false, func(*rosterChange) error { return nil })
}

// renewTime is when a client holding cred since at registers again: a uniformly random point between one half
// and three quarters of the lifetime it sees, so members who joined together renew at different times.
func renewTime(cred *Credential, at time.Time) time.Time {
	life := cred.NotAfter.Sub(at)
	if life <= 0 {
		return at
	}
	return at.Add(life/2 + time.Duration(rand.Int64N(int64(life/4)+1)))
}

// renewalRetry is how long a client waits before registering again when its renewal failed or has not reached
// the roster.
const renewalRetry = time.Minute

// renew registers this device again for a credential that renews its current one. The gateway puts it in the
// roster in one epoch; applyRoster adopts it from there, even if this answer is lost on the way. Failures that
// are not alarms are returned for the next Sync to retry.
func (c *Client) renew(ctx context.Context) error {
	c.mu.Lock()
	cur, instance, id := c.cred, c.instance, c.identity
	c.renewAt = c.clock.Now().Add(renewalRetry)
	c.mu.Unlock()
	raw, err := c.transport.Challenge(ctx)
	if err != nil {
		return fmt.Errorf("e2ee: renew: challenge: %w", err)
	}
	ch, err := ParseChallenge(raw)
	if err != nil {
		return fmt.Errorf("e2ee: renew: %w", err)
	}
	switch {
	case ch.Room != c.room:
		return alarm(ErrContextMismatch, 0, Hash{}, "renewal challenge for room %q", ch.Room)
	case ch.Identity != id:
		return alarm(ErrIdentityMismatch, 0, Hash{}, "gateway would renew this device as %s, it is %s", ch.Identity, id)
	case ch.Instance != instance:
		return fmt.Errorf("e2ee: renew: the meeting instance changed to %q", ch.Instance)
	}
	own, err := c.newKeyPackage(instance, id)
	if err != nil {
		return err
	}
	reg, err := newRegistration(c.device, own.kp, ch)
	if err != nil {
		return err
	}
	regRaw, err := reg.Marshal()
	if err != nil {
		return err
	}
	// Kept before it is sent: the gateway may renew with it even if its answer never arrives.
	c.mu.Lock()
	c.kps = append(c.kps, own)
	c.mu.Unlock()
	credRaw, err := c.transport.Register(ctx, regRaw)
	if err != nil {
		return fmt.Errorf("e2ee: renew: %w", err)
	}
	cred, err := ParseCredential(credRaw)
	if err != nil {
		return fmt.Errorf("e2ee: renew: %w", err)
	}
	switch {
	case cred.Verify(c.authority) != nil:
		return alarm(ErrBadSignature, 0, cred.Hash(), "renewed credential not signed by the authority key")
	case !bytes.Equal(cred.SigningKey, c.device.Public().(ed25519.PublicKey)):
		return alarm(ErrCredentialMismatch, 0, cred.Hash(), "renewed credential does not carry this device's key")
	case cred.Identity != id:
		return alarm(ErrIdentityMismatch, 0, cred.Hash(), "renewed credential certifies %s", cred.Identity)
	case !cred.Renews(cur):
		// An honest gateway whose policy changed this member's role or name: the roster will show it leave.
		return fmt.Errorf("e2ee: renew: %w: the new credential changes more than its expiry", ErrCredentialMismatch)
	}
	c.log.Info("e2ee.renewal_registered", zap.String("credential", cred.Hash().Short()), zap.Time("not_after", cred.NotAfter))
	return nil
}

// renewIfDue renews the client's credential when its renewal time has come; the caller holds syncMu.
func (c *Client) renewIfDue(ctx context.Context) error {
	c.mu.Lock()
	due := c.state == StateMember && !c.renewAt.IsZero() && !c.clock.Now().Before(c.renewAt)
	c.mu.Unlock()
	if !due {
		return nil
	}
	err := c.renew(ctx)
	if err != nil && !errors.Is(err, ErrAlarm) {
		c.log.Warn("e2ee.renew", zap.Error(err))
	}
	return err
}

// adoptRenewal makes cred, found in roster r in place of this device's credential, its own. The caller holds
// syncMu and has checked that cred is signed by the authority.
func (c *Client) adoptRenewal(cred *Credential) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	c.cred, c.renewAt = cred, renewTime(cred, now)
	c.log.Info("e2ee.renewed", zap.String("credential", cred.Hash().Short()), zap.Time("not_after", cred.NotAfter))
}

// renewals maps each entry of r that renews an entry of head (the head's entry left r in the same epoch) to
// that entry. creds are r's verified credentials; c.creds are the head's.
func (c *Client) renewals(head, r *Roster, creds map[Hash]*Credential) map[Hash]Hash {
	out := map[Hash]Hash{}
	if head == nil {
		return out
	}
	for _, n := range r.Members {
		if head.Has(n) {
			continue
		}
		for _, o := range head.Members {
			if !r.Has(o) && creds[n].Renews(c.creds[o]) {
				out[n] = o
				break
			}
		}
	}
	return out
}

// expiredMember returns a member of head whose credential has expired by this client's clock. Nothing is
// sealed to it, and no secret is opened beside it, until the gateway drops it.
func (c *Client) expiredMember(head *Roster, now time.Time) (Hash, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range head.Members {
		if cred := c.creds[h]; cred != nil && !cred.NotAfter.After(now) {
			return h, true
		}
	}
	return Hash{}, false
}
