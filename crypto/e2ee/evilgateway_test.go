package e2ee

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/sframe"
)

// evilTransport is a gateway that deviates from the protocol for one client: it can rewrite what the honest
// Authority would answer. The evil gateway also holds the authority signing key (meeting.authKey), as an
// attacker who owns the gateway does.
type evilTransport struct {
	*LocalTransport
	register    func(honest []byte) []byte
	roster      func(since uint64, honest []byte) []byte
	keyPackages func(epoch uint64, honest []byte) []byte
	sealed      func(epoch uint64, honest []byte) []byte
	seen        [][]byte // every SealedSecrets answer the client received
	// postedCommits counts the commits the client sent.
	postedCommits int
	// forged answers for epochs the honest Authority never signed (nil: ask it).
	forgedKeyPackages, forgedSealed, forgedRoster func(epoch uint64) []byte
}

func (e *evilTransport) PostCommit(ctx context.Context, epoch uint64, commit []byte) error {
	e.postedCommits++
	return e.LocalTransport.PostCommit(ctx, epoch, commit)
}

func (e *evilTransport) Register(ctx context.Context, reg []byte) ([]byte, error) {
	raw, err := e.LocalTransport.Register(ctx, reg)
	if err != nil || e.register == nil {
		return raw, err
	}
	return e.register(raw), nil
}

func (e *evilTransport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	if e.forgedRoster != nil {
		return e.forgedRoster(since), nil
	}
	raw, err := e.LocalTransport.Roster(ctx, since)
	if err != nil || e.roster == nil {
		return raw, err
	}
	return e.roster(since, raw), nil
}

func (e *evilTransport) KeyPackages(ctx context.Context, epoch uint64) ([]byte, error) {
	if e.forgedKeyPackages != nil {
		return e.forgedKeyPackages(epoch), nil
	}
	raw, err := e.LocalTransport.KeyPackages(ctx, epoch)
	if err != nil || e.keyPackages == nil {
		return raw, err
	}
	return e.keyPackages(epoch, raw), nil
}

func (e *evilTransport) SealedKeys(ctx context.Context, epoch uint64) ([]byte, error) {
	if e.forgedSealed != nil {
		return e.forgedSealed(epoch), nil
	}
	raw, err := e.LocalTransport.SealedKeys(ctx, epoch)
	if err == nil && e.sealed != nil {
		raw = e.sealed(epoch, raw)
	}
	if err == nil {
		e.seen = append(e.seen, raw)
	}
	return raw, err
}

func evil(out **evilTransport) joinOption {
	return withTransport(func(l *LocalTransport) Transport {
		*out = &evilTransport{LocalTransport: l}
		return *out
	})
}

// nextRoster is the successor of prev with the given members, as the gateway would sign it.
func nextRoster(prev *Roster, members []Hash, locked bool) *Roster {
	ms := slices.Clone(members)
	slices.SortFunc(ms, compareHash)
	return &Roster{Room: prev.Room, Instance: prev.Instance, Epoch: prev.Epoch + 1, IssuedAt: prev.IssuedAt,
		Prev: prev.Hash(), Locked: locked, Members: ms}
}

// replayFirstKeyPackage is an evil gateway's key package list: honest, except that once *replay is set the
// first key package it saw of the device key is served in place of its newest (a KEM key the gateway may
// have stolen).
func replayFirstKeyPackage(t *testing.T, device ed25519.PublicKey, replay *bool) func(uint64, []byte) []byte {
	var first *KeyPackage
	return func(_ uint64, honest []byte) []byte {
		kps := must[[]*KeyPackage](t)(parseKeyPackages(honest))
		for i, kp := range kps {
			switch {
			case !kp.SigningKey.Equal(device):
			case first == nil:
				first = kp
			case *replay:
				kps[i] = first
			}
		}
		var items [][]byte
		for _, kp := range kps {
			items = append(items, kp.raw)
		}
		return must[[]byte](t)(marshalKeyPackages(items))
	}
}

func with(members []Hash, add ...Hash) []Hash { return append(slices.Clone(members), add...) }

// forgeCredential mints a credential for id with a fresh device key (or signingKey, when given), signed by signer.
func forgeCredential(t *testing.T, signer ed25519.PrivateKey, room, instance string, id Identity, signingKey ed25519.PublicKey) (*Credential, ed25519.PrivateKey) {
	t.Helper()
	_, device, _ := ed25519.GenerateKey(nil)
	if signingKey == nil {
		signingKey = device.Public().(ed25519.PublicKey)
	}
	cred, err := issueCredential(signer, &Credential{
		Room: room, Instance: instance, Identity: id, DisplayName: id.Subject, Role: RoleParticipant,
		SigningKey: signingKey, NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred, device
}

// forgeKeyPackage is a key package for id naming signingKey and carrying a KEM key the gateway holds, signed
// by signer (the gateway's own key: it does not hold the member's).
func forgeKeyPackage(t *testing.T, signer ed25519.PrivateKey, room, instance string, id Identity, signingKey ed25519.PublicKey) *KeyPackage {
	t.Helper()
	gatewayKEM := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
	kp := &KeyPackage{Room: room, Instance: instance, Identity: id, SigningKey: signingKey, Seq: 1 << 40, KEM: KEMXWing,
		KEMKey: gatewayKEM.PublicKey().Bytes(), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	tbs := must[[]byte](t)(kp.encodeTBS())
	raw := append(append([]byte{byte(len(tbs) >> 8), byte(len(tbs))}, tbs...), sign(signer, labelKeyPackage, tbs)...)
	return must[*KeyPackage](t)(ParseKeyPackage(raw))
}

func updateBytes(t *testing.T, rosters []*Roster, creds ...*Credential) []byte {
	t.Helper()
	u := &rosterUpdate{version: 1}
	for _, r := range rosters {
		u.rosters = append(u.rosters, r.raw)
	}
	for _, c := range creds {
		u.credentials = append(u.credentials, c.raw)
	}
	return must[[]byte](t)(u.marshal())
}

func serve(b []byte) func(uint64, []byte) []byte { return func(uint64, []byte) []byte { return b } }

func sealedSecretsBytes(t *testing.T, items ...*sealedSecret) []byte {
	t.Helper()
	var raws [][]byte
	for _, s := range items {
		raws = append(raws, must[[]byte](t)(s.marshal()))
	}
	return must[[]byte](t)(marshalSealedSecrets(raws))
}

// evilRoom is three settled members at epoch 3; alice and bob talk through transports the gateway controls.
type evilRoom struct {
	m                  *meeting
	alice, bob, carol  *party
	aliceEvil, bobEvil *evilTransport
	authority          *Authority
	head               *Roster
	room, instance     string
	ghostID            Identity
	attackerSigningKey ed25519.PrivateKey
}

func newEvilRoom(t *testing.T) *evilRoom {
	m := newMeeting(t, nil)
	e := &evilRoom{m: m, authority: m.authority}
	e.alice = m.join("alice", evil(&e.aliceEvil))
	e.bob = m.join("bob", evil(&e.bobEvil))
	e.carol = m.join("carol")
	settle(t, e.alice, e.bob, e.carol)
	e.head = m.authority.Head()
	e.room, e.instance = e.head.Room, e.head.Instance
	e.ghostID = Identity{Issuer: "https://idp.example", Subject: "ghost"}
	_, e.attackerSigningKey, _ = ed25519.GenerateKey(nil)
	return e
}

// receiver returns alice or bob, whichever received a sealed secret at the head epoch (the committer did
// not), with that answer parsed.
func (e *evilRoom) receiver(t *testing.T) (*party, *evilTransport, *sealedSecret) {
	t.Helper()
	for _, c := range []struct {
		p  *party
		tr *evilTransport
	}{{e.alice, e.aliceEvil}, {e.bob, e.bobEvil}} {
		raw := must[[]byte](t)(e.authority.SealedFor(e.m.ctx, c.p.cred.Hash(), e.authority.Head().Epoch))
		if s := must[[]*sealedSecret](t)(parseSealedSecrets(raw)); len(s) == 1 {
			return c.p, c.tr, s[0]
		}
	}
	t.Fatal("neither alice nor bob received a sealed secret")
	return nil, nil, nil
}

// syncPastCommitTimeout syncs p (it sees the new epoch, and commits if it is the designated committer), lets
// the commit timeout pass and syncs again (then p commits whoever was designated).
func (e *evilRoom) syncPastCommitTimeout(p *party) error {
	if err := syncErr(p); err != nil {
		return err
	}
	e.m.clock.Advance(3 * time.Second)
	return syncErr(p)
}

// commitBy makes p commit the next epoch: a re-key, then p alone syncs past the commit timeout.
func (e *evilRoom) commitBy(t *testing.T, p *party) {
	t.Helper()
	must[*Roster](t)(e.authority.Rekey(e.m.ctx))
	if err := e.syncPastCommitTimeout(p); err != nil {
		t.Fatal(err)
	}
	if p.client.Status().SecurityCode == "" {
		t.Fatalf("%s did not commit", p.name)
	}
}

func TestEvilGateway_EachDeviationIsRefused(t *testing.T) {
	cases := []struct {
		name   string
		attack func(t *testing.T, e *evilRoom) (victim *party, member Hash, err error)
		want   error
	}{
		{"ghost credential signed by another key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, _ := forgeCredential(t, e.attackerSigningKey, e.room, e.instance, e.ghostID, nil)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, ghost.Hash()), false)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrBadSignature},
		{"ghost credential from another meeting instance", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, _ := forgeCredential(t, e.m.authKey, e.room, "yesterday's meeting", e.ghostID, nil)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, ghost.Hash()), false)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrContextMismatch},
		{"ghost roster entry without a credential", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost := Hash{0xee, 0xee}
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, ghost), false)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}))
			return e.alice, ghost, syncErr(e.alice)
		}, ErrCredentialMismatch},
		{"ghost added to a locked room", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			locked := must[*Roster](t)(e.authority.SetLocked(e.m.ctx, true))
			settle(t, e.alice, e.bob, e.carol)
			ghost, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID, nil)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(locked, with(locked.Members, ghost.Hash()), true)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrLockedRoster},
		{"roster not signed by the authority key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			r := must[*Roster](t)(issueRoster(e.attackerSigningKey, nextRoster(e.head, e.head.Members, false)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}))
			return e.alice, Hash{}, syncErr(e.alice)
		}, ErrBadSignature},
		{"epoch that does not extend the client's head (fork)", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			other := nextRoster(e.head, e.head.Members, false)
			other.Prev = Hash{0xf0, 0x4c}
			r := must[*Roster](t)(issueRoster(e.m.authKey, other))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}))
			return e.alice, Hash{}, syncErr(e.alice)
		}, ErrFork},
		{"skipped epoch", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			e.aliceEvil.roster = func(_ uint64, honest []byte) []byte {
				u := must[*rosterUpdate](t)(parseRosterUpdate(honest))
				u.rosters = u.rosters[1:] // withhold epoch 4, deliver 5
				return must[[]byte](t)(u.marshal())
			}
			return e.alice, Hash{}, syncErr(e.alice)
		}, ErrGap},
		{"replayed old epoch", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			must[*Roster](t)(e.authority.Remove(e.m.ctx, e.carol.cred.Hash()))
			settle(t, e.alice, e.bob)
			// Carol is back in everyone's view if the old epoch is accepted.
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{e.head}))
			return e.alice, Hash{}, syncErr(e.alice)
		}, ErrReplay},
		{"old epoch's commit replayed into the new epoch", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			victim, tr, old := e.receiver(t)
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			tr.sealed = serve(sealedSecretsBytes(t, old))
			return victim, old.header.Committer, syncErr(victim)
		}, ErrReplay},
		{"older generation replayed after a timer re-key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			victim, tr, gen0 := e.receiver(t)
			e.m.clock.Advance(5 * time.Minute)
			settle(t, e.alice, e.bob, e.carol)
			tr.sealed = serve(sealedSecretsBytes(t, gen0))
			return victim, gen0.header.Committer, syncErr(victim)
		}, ErrReplay},
		{"commit re-signed by the gateway", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			victim, tr, s := e.receiver(t)
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			if err := syncErr(victim); err != nil { // the new epoch, before anyone commits
				t.Fatal(err)
			}
			head := e.authority.Head()
			victim.client.mu.Lock()
			kp := victim.client.kps[len(victim.client.kps)-1].kp
			victim.client.mu.Unlock()
			h := *s.header
			h.Epoch, h.RosterHash = head.Epoch, head.Hash()
			secret := make([]byte, secretSize)
			rand.Read(secret)
			info := epochSecretInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Committer, victim.cred.Hash(), kp.Hash())
			sealed := must[[]byte](t)(sealSecret(kp.kemPub, info, secret))
			root, ok := rootFromPath(leafHash(victim.cred.Hash(), kp.Hash(), sealed), uint64(s.index), uint64(h.LeafCount), s.proof)
			if !ok {
				t.Fatal("cannot recompute root")
			}
			h.Root = root
			forged := &sealedSecret{header: must[*commitHeader](t)(signCommitHeader(e.attackerSigningKey, &h)), index: s.index,
				proof: s.proof, keyPackage: kp.Hash(), sealed: sealed}
			tr.sealed = serve(sealedSecretsBytes(t, forged))
			return victim, h.Committer, syncErr(victim)
		}, ErrBadSignature},
		{"sealed secret swapped under the committer's signature", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			victim, tr, s := e.receiver(t)
			s.sealed = append(s.sealed[:len(s.sealed)-1], s.sealed[len(s.sealed)-1]^1)
			tr.sealed = serve(sealedSecretsBytes(t, s))
			victim.client.mu.Lock()
			victim.client.current = nil // as if it had not opened the honest one yet
			victim.client.mu.Unlock()
			return victim, s.header.Committer, syncErr(victim)
		}, ErrBadSignature},
		{"commit from a non-member", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, ghostDevice := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID, nil)
			e.alice.client.mu.Lock()
			kp := e.alice.client.kps[len(e.alice.client.kps)-1].kp
			e.alice.client.mu.Unlock()
			secret := make([]byte, secretSize)
			rand.Read(secret)
			info := epochSecretInfo(e.room, e.instance, e.head.Epoch, 1, e.head.Hash(), ghost.Hash(), e.alice.cred.Hash(), kp.Hash())
			sealed := must[[]byte](t)(sealSecret(kp.kemPub, info, secret))
			leaves := make([]Hash, len(e.head.Members))
			idx, _ := e.head.Index(e.alice.cred.Hash())
			leaves[idx] = leafHash(e.alice.cred.Hash(), kp.Hash(), sealed)
			root, paths, err := merkleTree(leaves)
			if err != nil {
				t.Fatal(err)
			}
			h := must[*commitHeader](t)(signCommitHeader(ghostDevice, &commitHeader{Room: e.room, Instance: e.instance,
				Epoch: e.head.Epoch, Generation: 1, RosterHash: e.head.Hash(), Committer: ghost.Hash(), Suite: sframe.CipherSuite,
				KEMs: []KEM{KEMXWing, KEMXWing, KEMXWing, KEMXWing}, LeafCount: uint32(len(leaves)), Root: root}))
			forged := &sealedSecret{header: h, index: uint32(idx), proof: paths[idx], keyPackage: kp.Hash(), sealed: sealed}
			e.aliceEvil.sealed = serve(sealedSecretsBytes(t, forged))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrNotMember},

		{"member replaced by a gateway device in one epoch", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			bobPrime, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.bob.cred.Identity, nil)
			members := slices.DeleteFunc(with(e.head.Members, bobPrime.Hash()), func(h Hash) bool { return h == e.bob.cred.Hash() })
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, members, false)))
			e.bobEvil.roster = serve(updateBytes(t, []*Roster{r}, bobPrime))
			return e.bob, bobPrime.Hash(), syncErr(e.bob)
		}, ErrImpersonation},

		// Item 1: a KEM key substituted under a member's real identity and signing key. In v1 the gateway's
		// credential carried the KEM key and this attack read the meeting; in v2 the committer checks that the
		// member's own device signed its key package.
		{"gateway KEM key under a member's identity and signing key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			dave := e.m.join("dave")
			e.aliceEvil.keyPackages = func(_ uint64, honest []byte) []byte {
				kps := must[[]*KeyPackage](t)(parseKeyPackages(honest))
				var items [][]byte
				for _, kp := range kps {
					if kp.SigningKey.Equal(dave.cred.SigningKey) {
						kp = forgeKeyPackage(t, e.attackerSigningKey, e.room, e.instance, dave.cred.Identity, dave.cred.SigningKey)
					}
					items = append(items, kp.raw)
				}
				return must[[]byte](t)(marshalKeyPackages(items))
			}
			return e.alice, dave.cred.Hash(), e.syncPastCommitTimeout(e.alice)
		}, ErrBadSignature},
		{"gateway device's key package for a member", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			dave := e.m.join("dave")
			e.aliceEvil.keyPackages = func(_ uint64, honest []byte) []byte {
				kps := must[[]*KeyPackage](t)(parseKeyPackages(honest))
				var items [][]byte
				for _, kp := range kps {
					if kp.SigningKey.Equal(dave.cred.SigningKey) {
						kp = forgeKeyPackage(t, e.attackerSigningKey, e.room, e.instance, dave.cred.Identity, e.attackerSigningKey.Public().(ed25519.PublicKey))
					}
					items = append(items, kp.raw)
				}
				return must[[]byte](t)(marshalKeyPackages(items))
			}
			return e.alice, dave.cred.Hash(), e.syncPastCommitTimeout(e.alice)
		}, ErrBadSignature},
		{"member's superseded key package served again", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			var replay bool
			e.aliceEvil.keyPackages = replayFirstKeyPackage(t, e.bob.cred.SigningKey, &replay)
			for range 2 { // alice seals to bob's key package, bob opens it and publishes a fresh one; twice
				e.commitBy(t, e.alice)
				e.m.clock.Advance(2 * time.Second)
				settle(t, e.alice, e.bob, e.carol)
			}
			replay = true
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			return e.alice, e.bob.cred.Hash(), e.syncPastCommitTimeout(e.alice)
		}, ErrStaleKeyPackage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvilRoom(t)
			victim, member, err := tc.attack(t, e)
			al := requireAlarm(t, victim, err, tc.want)
			if al.Member != member {
				t.Fatalf("alarm names member %s, want %s", al.Member.Short(), member.Short())
			}
		})
	}
}

// TestEvilGateway_CloneIsDetected is item 2: a second roster entry with a member's own device key alarms that
// member and everyone else; a gateway that would certify the device for another identity than the one the
// client expects is refused at registration.
func TestEvilGateway_CloneIsDetected(t *testing.T) {
	t.Run("second entry with bob's device key", func(t *testing.T) {
		e := newEvilRoom(t)
		clone, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID, e.bob.cred.SigningKey)
		r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, clone.Hash()), false)))
		e.bobEvil.roster = serve(updateBytes(t, []*Roster{r}, clone))
		if al := requireAlarm(t, e.bob, syncErr(e.bob), ErrClone); al.Member != clone.Hash() {
			t.Fatalf("bob's alarm names %s", al.Member.Short())
		}
		e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, clone))
		requireAlarm(t, e.alice, syncErr(e.alice), ErrClone)
	})
	t.Run("real alice registered under another subject", func(t *testing.T) {
		m := newMeeting(t, nil)
		alice := Identity{Issuer: "https://idp.example", Subject: "alice"}
		local := NewLocalTransport(m.authority, Identity{Issuer: "https://idp.example", Subject: "alice.2"}, "Alice", RoleHost)
		c := must[*Client](t)(NewClient(m.ctx, ClientOptions{Transport: local, AuthorityKey: m.authority.PublicKey(),
			Room: m.authority.Room(), ExpectIdentity: alice, Clock: m.clock}))
		_, err := c.Register(m.ctx)
		if !errors.Is(err, ErrIdentityMismatch) || !errors.Is(err, ErrAlarm) || c.Status().State != StateHalted {
			t.Fatalf("register under another subject: %v, state %v", err, c.Status().State)
		}
		if local.Credential() != (Hash{}) {
			t.Fatal("the client registered a key for another identity")
		}
	})
	t.Run("credential certifies another identity than the challenge", func(t *testing.T) {
		m := newMeeting(t, nil)
		var tr *evilTransport
		p := &party{m: m, name: "alice"}
		p.local = NewLocalTransport(m.authority, Identity{Issuer: "https://idp.example", Subject: "alice"}, "Alice", RoleHost)
		tr = &evilTransport{LocalTransport: p.local, register: func(honest []byte) []byte {
			c := must[*Credential](t)(ParseCredential(honest))
			swapped := *c
			swapped.Identity.Subject = "mallory"
			return must[*Credential](t)(issueCredential(m.authKey, &swapped)).raw
		}}
		c := must[*Client](t)(NewClient(m.ctx, ClientOptions{Transport: tr, AuthorityKey: m.authority.PublicKey(), Room: m.authority.Room(), Clock: m.clock}))
		if _, err := c.Register(m.ctx); !errors.Is(err, ErrIdentityMismatch) || !errors.Is(err, ErrAlarm) {
			t.Fatalf("register: %v", err)
		}
	})
	t.Run("device of alice's identity present before her is confirmed or rejected", func(t *testing.T) {
		m := newMeeting(t, nil)
		bob := m.join("bob")
		id := Identity{Issuer: "https://idp.example", Subject: "alice"}
		impostor := m.registerAs(m.authority, "impostor", id)
		must[*Roster](t)(m.authority.Admit(m.ctx, impostor.cred.Hash()))
		alice := m.registerAs(m.authority, "alice", id)
		must[*Roster](t)(m.authority.Admit(m.ctx, alice.cred.Hash()))
		settle(t, bob, impostor, alice)
		st := alice.client.Status()
		if len(st.Unconfirmed) != 1 || st.Unconfirmed[0] != impostor.cred.Fingerprint() {
			t.Fatalf("alice's unconfirmed devices: %v", st.Unconfirmed)
		}
		if err := alice.client.RejectDevice(impostor.cred.Fingerprint()); !errors.Is(err, ErrImpersonation) {
			t.Fatalf("RejectDevice: %v", err)
		}
		requireAlarm(t, alice, syncErr(alice), ErrImpersonation)
	})
}

// TestEvilGateway_ForkIsRefusedByBothSides runs two honest state machines under one authority key: the gateway
// shows alice and carol a roster with a ghost and bob one without. Nothing is wrong inside either view; the
// security codes differ, and the first commit that crosses views is refused on both sides.
func TestEvilGateway_ForkIsRefusedByBothSides(t *testing.T) {
	ctx := context.Background()
	m := newMeeting(t, nil)
	var aliceEvil, bobEvil *evilTransport
	alice := m.join("alice", evil(&aliceEvil))
	bob := m.join("bob", evil(&bobEvil))
	carol := m.join("carol")
	settle(t, alice, bob, carol)

	storeB := e2eestore.NewMemory(m.clock)
	for _, e := range must[[]e2eestore.Entry](t)(m.store.List(ctx, "")) {
		if err := storeB.Put(ctx, e.Key, e.Value, 0); err != nil {
			t.Fatal(err)
		}
	}
	viewA := m.authority
	viewB := must[*Authority](t)(NewAuthority(ctx, AuthorityOptions{Room: viewA.Room(), Instance: viewA.Instance(),
		SigningKey: m.authKey, Store: storeB, Clock: m.clock}))
	bobInB := NewLocalTransport(viewB, bob.cred.Identity, "bob", RoleParticipant)
	bobInB.cred = bob.cred.Hash()
	bobEvil.LocalTransport = bobInB

	ghost := m.register(viewA, "ghost")
	must[*Roster](t)(viewA.Admit(ctx, ghost.cred.Hash()))
	must[*Roster](t)(viewB.Rekey(ctx))
	settle(t, alice, carol, ghost)
	for range 2 {
		m.clock.Advance(3 * time.Second)
		if _, err := bob.client.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := alice.client.Status(), bob.client.Status()
	if a.Epoch != b.Epoch || a.SecurityCode == "" || b.SecurityCode == "" || a.SecurityCode == b.SecurityCode {
		t.Fatalf("forked views at epochs %d/%d show codes %q and %q", a.Epoch, b.Epoch, a.SecurityCode, b.SecurityCode)
	}

	// The gateway now relays each view's commits into the other.
	bobEvil.sealed = func(epoch uint64, honest []byte) []byte {
		return must[[]byte](t)(viewA.SealedFor(ctx, bob.cred.Hash(), epoch))
	}
	aliceEvil.sealed = func(epoch uint64, honest []byte) []byte {
		return must[[]byte](t)(viewB.SealedFor(ctx, alice.cred.Hash(), epoch))
	}
	requireAlarm(t, bob, syncErr(bob), ErrFork)
	requireAlarm(t, alice, syncErr(alice), ErrFork)
}

// TestEvilGateway_CannotComputeTheSecurityCode is item 3: in v1 the code was SHA-512 over the roster hash, which
// the gateway chooses and can grind. In v2 it comes from the epoch secret. Everything the gateway holds — every
// stored value, every roster and commit hash, the authority key — read as candidate authenticators (every
// 32-byte window) or fed to the v1 formula, never yields the members' code.
func TestEvilGateway_CannotComputeTheSecurityCode(t *testing.T) {
	e := newEvilRoom(t)
	code := e.alice.client.Status().SecurityCode
	var public [][]byte
	for _, it := range must[[]e2eestore.Entry](t)(e.m.store.List(e.m.ctx, "")) {
		public = append(public, it.Value)
	}
	public = append(public, e.authority.PublicKey(), e.head.raw)
	tried := 0
	for _, v := range public {
		for i := 0; i+32 <= len(v); i++ {
			w := [32]byte(v[i : i+32])
			if SecurityCode(w) == code || v1SecurityCode(w) == code {
				t.Fatalf("the gateway's own data yields the members' security code (offset %d)", i)
			}
			tried++
		}
	}
	if tried < 5000 {
		t.Fatalf("tried only %d candidates", tried)
	}
}

// v1SecurityCode is the v1 derivation from the roster head, kept here to show v2 no longer uses it.
func v1SecurityCode(head [32]byte) string {
	return SecurityCode([32]byte(labelled("meetguard/e2ee/v1 security code", head[:])[:32]))
}

func TestEvilGateway_AlarmsAreNotRaisedByAnHonestGateway(t *testing.T) {
	// The same rotations the attacks above ride on, done honestly, raise nothing.
	e := newEvilRoom(t)
	must[*Roster](t)(e.authority.SetLocked(e.m.ctx, true))
	must[*Roster](t)(e.authority.Rekey(e.m.ctx))
	must[*Roster](t)(e.authority.Rekey(e.m.ctx))
	must[*Roster](t)(e.authority.Remove(e.m.ctx, e.carol.cred.Hash()))
	e.m.clock.Advance(5 * time.Minute)
	settle(t, e.alice, e.bob)
	if err := syncErr(e.carol); !errors.Is(err, ErrRemoved) {
		t.Fatalf("carol: %v", err)
	}
	requireAgreement(t, e.alice, e.bob)
}
