package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"

	"go.uber.org/zap"
)

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
			if !r.Has(me) {
				// This device's credential renewed in this epoch (its renewal's answer may have been lost).
				if cred := c.ownRenewal(head, r, offered); cred != nil {
					c.adoptRenewal(cred)
					me = cred.Hash()
				}
			}
			if head.Locked {
				for _, m := range r.Members {
					// A renewal adds no one; its signature is checked with every credential below.
					if !head.Has(m) && !c.renewsOneOf(offered[m], head, r) {
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
		c.install(r, creds, c.renewals(head, r, creds), r.Has(me))
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
		if newest, ok := c.newest[string(cred.SigningKey)]; ok && cred.NotAfter.Before(newest) {
			return nil, alarm(ErrReplay, r.Epoch, h, "credential of device %s expiring %v served after one expiring %v",
				cred.Fingerprint(), cred.NotAfter, newest)
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
func (c *Client) install(r *Roster, creds map[Hash]*Credential, renewed map[Hash]Hash, member bool) {
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
	for _, cred := range creds {
		if t := c.newest[string(cred.SigningKey)]; cred.NotAfter.After(t) {
			c.newest[string(cred.SigningKey)] = cred.NotAfter
		}
	}
	replaced := make(map[Hash]bool, len(renewed))
	for h, o := range renewed {
		// A renewal is the same device: its key package numbering and its confirmation carry over, and no
		// change is reported.
		replaced[o] = true
		c.kpSeq[h] = c.kpSeq[o]
		delete(c.kpSeq, o)
		if c.confirmed[o] {
			c.confirmed[h] = true
		}
		if c.pending[o] {
			c.pending[h] = true
		}
		delete(c.confirmed, o)
		delete(c.pending, o)
	}
	for _, h := range r.Members {
		cred := creds[h]
		if _, renewal := renewed[h]; h == me || renewal || prev != nil && prev.Has(h) {
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
			if !r.Has(h) && !replaced[h] {
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

// ownRenewal returns the credential of r, new since head, that renews this device's credential and is signed by
// the authority; nil if there is none.
func (c *Client) ownRenewal(head, r *Roster, offered map[Hash]*Credential) *Credential {
	for _, m := range r.Members {
		if cred := offered[m]; !head.Has(m) && cred.Renews(c.cred) && cred.Verify(c.authority) == nil {
			return cred
		}
	}
	return nil
}

// renewsOneOf reports whether cred renews a member of head that r no longer lists.
func (c *Client) renewsOneOf(cred *Credential, head, r *Roster) bool {
	for _, o := range head.Members {
		if !r.Has(o) && cred.Renews(c.creds[o]) {
			return true
		}
	}
	return false
}
