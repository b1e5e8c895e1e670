package e2ee

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestMeeting_CredentialsRenewBeforeExpiry runs a locked meeting for three credential lifetimes: every member
// renews before its credential expires, each renewal is one epoch, nobody is reported added or removed, no alarm
// is raised, and everyone still decrypts everyone.
func TestMeeting_CredentialsRenewBeforeExpiry(t *testing.T) {
	const ttl = 20 * time.Minute
	m := newMeeting(t, func(o *AuthorityOptions) { o.CredentialTTL = ttl })
	parties := []*party{m.join("alice"), m.join("bob"), m.join("carol")}
	settle(t, parties...)
	must[*Roster](t)(m.authority.SetLocked(m.ctx, true))
	settle(t, parties...)
	first := map[string]*Credential{}
	for _, p := range parties {
		first[p.name] = p.client.Credential()
	}
	start, epoch := m.clock.Now(), m.authority.Head().Epoch
	for m.clock.Now().Sub(start) < 3*ttl {
		m.clock.Advance(time.Minute)
		settle(t, parties...)
		for _, p := range parties {
			if cred := p.client.Credential(); !cred.NotAfter.After(m.clock.Now()) {
				t.Fatalf("%s: credential expires %v at %v: not renewed in time", p.name, cred.NotAfter, m.clock.Now())
			}
		}
	}
	for _, p := range parties {
		p.cred = p.client.Credential()
		if p.cred.Hash() == first[p.name].Hash() || !p.cred.Renews(first[p.name]) {
			t.Fatalf("%s still holds its first credential", p.name)
		}
		st := p.client.Status()
		if !st.Locked {
			t.Fatalf("%s: room no longer locked", p.name)
		}
		for _, ch := range st.Changes {
			if ch.Kind == ChangeAdded || ch.Kind == ChangeRemoved {
				t.Fatalf("%s reports a renewal as a change: %+v", p.name, ch)
			}
		}
	}
	// One epoch per renewal, and no other: each member renews every 50-75 % of a lifetime, 4 to 6 times in three.
	epochs := int(m.authority.Head().Epoch - epoch)
	if epochs < len(parties)*3 || epochs > len(parties)*6 {
		t.Fatalf("%d epochs for %d members over three lifetimes, want one per renewal", epochs, len(parties))
	}
	t.Logf("%d renewal epochs over %v for %d members", epochs, 3*ttl, len(parties))
	requireAgreement(t, parties...)
}

// lostAnswerTransport loses the answer to the next registration after the gateway acted on it.
type lostAnswerTransport struct {
	*LocalTransport
	lose bool
}

func (l *lostAnswerTransport) Register(ctx context.Context, reg []byte) ([]byte, error) {
	raw, err := l.LocalTransport.Register(ctx, reg)
	if err == nil && l.lose {
		l.lose = false
		return nil, errors.New("connection reset")
	}
	return raw, err
}

// TestMeeting_RenewalWhoseAnswerWasLostIsAdopted: the gateway renewed bob's credential but its answer never
// reached him; bob finds the renewal in the roster and carries on (no alarm, not removed).
func TestMeeting_RenewalWhoseAnswerWasLostIsAdopted(t *testing.T) {
	const ttl = 20 * time.Minute
	m := newMeeting(t, func(o *AuthorityOptions) { o.CredentialTTL = ttl })
	var lossy *lostAnswerTransport
	alice := m.join("alice")
	bob := m.join("bob", withTransport(func(l *LocalTransport) Transport { lossy = &lostAnswerTransport{LocalTransport: l}; return lossy }))
	settle(t, alice, bob)
	old := bob.client.Credential()
	lossy.lose = true
	for range ttl * 3 / 4 / time.Minute {
		m.clock.Advance(time.Minute)
		settle(t, alice, bob)
	}
	settle(t, alice, bob)
	if lossy.lose {
		t.Fatal("bob never renewed")
	}
	bob.cred, alice.cred = bob.client.Credential(), alice.client.Credential()
	if !bob.cred.Renews(old) || !m.authority.Head().Has(bob.cred.Hash()) {
		t.Fatalf("bob holds %s, the roster lists %v", bob.cred.Hash().Short(), m.authority.Head().Members)
	}
	requireAgreement(t, alice, bob)
}

// TestEvilGateway_ExpiredOrReplayedCredentialsAreRefused tries to keep a credential alive past its expiry and to
// serve a credential that a renewal replaced.
func TestEvilGateway_ExpiredOrReplayedCredentialsAreRefused(t *testing.T) {
	renewed := func(t *testing.T) (*evilRoom, *Credential, *Credential) {
		e := newEvilRoom(t)
		// alice renews; everyone follows the renewal epoch.
		old := e.alice.client.Credential()
		e.m.clock.Advance(time.Minute)
		e.alice.client.mu.Lock()
		e.alice.client.renewAt = e.m.clock.Now()
		e.alice.client.mu.Unlock()
		settle(t, e.alice, e.bob, e.carol)
		settle(t, e.alice, e.bob, e.carol)
		cur := e.alice.client.Credential()
		if !cur.Renews(old) || !e.authority.Head().Has(cur.Hash()) || e.authority.Head().Has(old.Hash()) {
			t.Fatalf("alice did not renew: old %s, now %s", old.Hash().Short(), cur.Hash().Short())
		}
		return e, old, cur
	}
	swap := func(members []Hash, from, to Hash) []Hash {
		out := slices.Clone(members)
		out[slices.Index(out, from)] = to
		return out
	}

	t.Run("superseded credential swapped back in one epoch", func(t *testing.T) {
		e, old, cur := renewed(t)
		head := e.authority.Head()
		r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(head, swap(head.Members, cur.Hash(), old.Hash()), head.Locked)))
		e.bobEvil.roster = serve(updateBytes(t, []*Roster{r}, old))
		requireAlarm(t, e.bob, syncErr(e.bob), ErrReplay)
	})

	t.Run("superseded credential readmitted after a removal", func(t *testing.T) {
		e, old, cur := renewed(t)
		head := e.authority.Head()
		without := slices.DeleteFunc(slices.Clone(head.Members), func(h Hash) bool { return h == cur.Hash() })
		r1 := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(head, without, false)))
		r2 := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(r1, with(without, old.Hash()), false)))
		e.bobEvil.roster = serve(updateBytes(t, []*Roster{r1, r2}, old))
		requireAlarm(t, e.bob, syncErr(e.bob), ErrReplay)
	})

	t.Run("own superseded credential swapped back", func(t *testing.T) {
		e, old, cur := renewed(t)
		head := e.authority.Head()
		r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(head, swap(head.Members, cur.Hash(), old.Hash()), head.Locked)))
		e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, old))
		requireAlarm(t, e.alice, syncErr(e.alice), ErrReplay)
	})

	t.Run("epoch issued after a member's credential expired", func(t *testing.T) {
		e := newEvilRoom(t)
		head := e.authority.Head()
		eve, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID, nil)
		eve = must[*Credential](t)(issueCredential(e.m.authKey, &Credential{Room: e.room, Instance: e.instance, Identity: e.ghostID,
			Role: RoleParticipant, SigningKey: eve.SigningKey, NotAfter: head.IssuedAt.Add(time.Minute).Truncate(time.Second)}))
		next := nextRoster(head, with(head.Members, eve.Hash()), false)
		next.IssuedAt = eve.NotAfter.Add(time.Second)
		r := must[*Roster](t)(issueRoster(e.m.authKey, next))
		e.bobEvil.roster = serve(updateBytes(t, []*Roster{r}, eve))
		requireAlarm(t, e.bob, syncErr(e.bob), ErrCredentialExpired)
	})

	t.Run("expired member kept in an epoch dated before its expiry", func(t *testing.T) {
		// The gateway admits eve (a device it holds) with a short credential and keeps her in the roster past her
		// expiry, never dating an epoch after it. Nobody seals a secret to her, and nobody uses one beside her.
		e := newEvilRoom(t)
		head := e.authority.Head()
		eve, eveDevice := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID, nil)
		eve = must[*Credential](t)(issueCredential(e.m.authKey, &Credential{Room: e.room, Instance: e.instance, Identity: e.ghostID,
			Role: RoleParticipant, SigningKey: eve.SigningKey, NotAfter: e.m.clock.Now().Add(time.Minute).Truncate(time.Second)}))
		r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(head, with(head.Members, eve.Hash()), false)))
		i, _ := r.Index(eve.Hash())
		e.m.clock.Advance(2 * time.Minute)
		evePkg := forgeKeyPackage(t, eveDevice, e.room, e.instance, e.ghostID, eve.SigningKey)
		for _, p := range []struct {
			p  *party
			tr *evilTransport
		}{{e.alice, e.aliceEvil}, {e.bob, e.bobEvil}} {
			p.tr.forgedRoster = func(since uint64) []byte {
				if since < r.Epoch {
					return updateBytes(t, []*Roster{r}, eve)
				}
				return updateBytes(t, nil)
			}
			p.tr.forgedKeyPackages = func(uint64) []byte {
				// Every member's newest key package, with eve's at her roster position.
				var raws [][]byte
				for j, h := range r.Members {
					if j == i {
						raws = append(raws, evePkg.raw)
						continue
					}
					raws = append(raws, must[*KeyPackage](t)(e.authority.KeyPackageOf(e.m.ctx, h)).raw)
				}
				return must[[]byte](t)(marshalKeyPackages(raws))
			}
			p.tr.forgedSealed = func(uint64) []byte { return sealedSecretsBytes(t) }
			p.tr.postedCommits = 0
			refused := false
			for range 3 {
				err := syncErr(p.p)
				if errors.Is(err, ErrAlarm) || err != nil && !errors.Is(err, ErrCredentialExpired) {
					t.Fatalf("%s: sync = %v, want at most a refusal naming the expired credential", p.p.name, err)
				}
				refused = refused || err != nil
				e.m.clock.Advance(3 * time.Second)
			}
			if !refused {
				t.Fatalf("%s never refused to commit", p.p.name)
			}
			if p.tr.postedCommits != 0 {
				t.Fatalf("%s sealed a secret to a roster holding an expired credential", p.p.name)
			}
			if st := p.p.client.Status(); st.State != StateMember || st.SecurityCode != "" {
				t.Fatalf("%s: state %v, code %q: keys in use beside an expired member", p.p.name, st.State, st.SecurityCode)
			}
		}
	})
}
