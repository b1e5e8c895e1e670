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

	"github.com/meetguard/meetguard/crypto/sframe"
)

// evilTransport is a gateway that deviates from the protocol for one client: it can rewrite what the honest
// Authority would answer. The evil gateway also holds the authority signing key (meeting.authKey), as an
// attacker who owns the gateway does.
type evilTransport struct {
	*LocalTransport
	roster func(since uint64, honest []byte) []byte
	sealed func(epoch uint64, honest []byte) []byte
}

func (e *evilTransport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	raw, err := e.LocalTransport.Roster(ctx, since)
	if err != nil || e.roster == nil {
		return raw, err
	}
	return e.roster(since, raw), nil
}

func (e *evilTransport) SealedKeys(ctx context.Context, epoch uint64) ([]byte, error) {
	raw, err := e.LocalTransport.SealedKeys(ctx, epoch)
	if err != nil || e.sealed == nil {
		return raw, err
	}
	return e.sealed(epoch, raw), nil
}

func evil(out **evilTransport) joinOption {
	return withTransport(func(l *LocalTransport) Transport {
		*out = &evilTransport{LocalTransport: l}
		return *out
	})
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// nextRoster is the successor of prev with the given members, as the gateway would sign it.
func nextRoster(prev *Roster, members []Hash, locked bool) *Roster {
	ms := slices.Clone(members)
	slices.SortFunc(ms, compareHash)
	return &Roster{Room: prev.Room, Instance: prev.Instance, Epoch: prev.Epoch + 1, IssuedAt: prev.IssuedAt,
		Prev: prev.Hash(), Locked: locked, Members: ms}
}

func with(members []Hash, add ...Hash) []Hash { return append(slices.Clone(members), add...) }

func without(members []Hash, drop Hash) []Hash {
	return slices.DeleteFunc(slices.Clone(members), func(h Hash) bool { return h == drop })
}

// forgeCredential mints a credential for id with fresh device keys, signed by signer.
func forgeCredential(t *testing.T, signer ed25519.PrivateKey, room, instance string, id Identity) (*Credential, ed25519.PrivateKey, hpke.PrivateKey) {
	t.Helper()
	_, device, _ := ed25519.GenerateKey(nil)
	kemKey := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
	cred, err := issueCredential(signer, &Credential{
		Room: room, Instance: instance, Identity: id, DisplayName: id.Subject, Role: RoleParticipant,
		SigningKey: device.Public().(ed25519.PublicKey), KEM: KEMXWing, KEMKey: kemKey.PublicKey().Bytes(),
		NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred, device, kemKey
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

// sealedKeysFrom parses a SealedKeys message and returns the item whose sender is s.
func sealedKeyFrom(t *testing.T, raw []byte, sender Hash) *sealedKey {
	t.Helper()
	for _, sk := range must[[]*sealedKey](t)(parseSealedKeys(raw)) {
		if sk.header.Sender == sender {
			return sk
		}
	}
	t.Fatalf("no sealed key from %s", sender.Short())
	return nil
}

func sealedKeysBytes(t *testing.T, keys ...*sealedKey) []byte {
	t.Helper()
	var items [][]byte
	for _, sk := range keys {
		items = append(items, must[[]byte](t)(sk.marshal()))
	}
	return must[[]byte](t)(marshalSealedKeys(items))
}

func mergeSealedKeys(t *testing.T, lists ...[]byte) []byte {
	t.Helper()
	var all []*sealedKey
	for _, l := range lists {
		all = append(all, must[[]*sealedKey](t)(parseSealedKeys(l))...)
	}
	return sealedKeysBytes(t, all...)
}

// evilRoom is three settled members at epoch 3; alice and bob talk through transports the gateway controls.
type evilRoom struct {
	m                   *meeting
	alice, bob, carol   *party
	aliceEvil, bobEvil  *evilTransport
	authority           *Authority
	head                *Roster
	room, instance      string
	ghostID             Identity
	attackerSigningKey  ed25519.PrivateKey
	aliceSealedAtEpoch3 []byte
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
	e.aliceSealedAtEpoch3 = must[[]byte](t)(m.authority.SealedFor(m.ctx, e.alice.cred.Hash(), 3))
	return e
}

func TestEvilGateway_EachDeviationIsRefused(t *testing.T) {
	cases := []struct {
		name   string
		attack func(t *testing.T, e *evilRoom) (victim *party, member Hash, err error)
		want   error
	}{
		{"ghost credential signed by another key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, _, _ := forgeCredential(t, e.attackerSigningKey, e.room, e.instance, e.ghostID)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, ghost.Hash()), false)))
			e.aliceEvil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrBadSignature},
		{"ghost credential from another meeting instance", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, _, _ := forgeCredential(t, e.m.authKey, e.room, "yesterday's meeting", e.ghostID)
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
			ghost, _, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID)
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
		{"old epoch's bundle replayed into the new epoch", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			must[*Roster](t)(e.authority.Rekey(e.m.ctx))
			e.aliceEvil.sealed = serve(e.aliceSealedAtEpoch3)
			first := must[[]*sealedKey](t)(parseSealedKeys(e.aliceSealedAtEpoch3))[0].header.Sender
			return e.alice, first, syncErr(e.alice)
		}, ErrReplay},
		{"older generation replayed after a timer re-key", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			gen0 := sealedKeyFrom(t, e.aliceSealedAtEpoch3, e.bob.cred.Hash())
			e.m.clock.Advance(5 * time.Minute)
			settle(t, e.alice, e.bob, e.carol)
			e.aliceEvil.sealed = serve(sealedKeysBytes(t, gen0))
			return e.alice, e.bob.cred.Hash(), syncErr(e.alice)
		}, ErrReplay},
		{"swapped KEM key in a member's credential", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			dave := e.m.join("dave")
			e.aliceEvil.roster = func(_ uint64, honest []byte) []byte {
				u := must[*rosterUpdate](t)(parseRosterUpdate(honest))
				for i, raw := range u.credentials {
					c := must[*Credential](t)(ParseCredential(raw))
					if c.Hash() == dave.cred.Hash() {
						gatewayKEM := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
						swapped := *c
						swapped.KEMKey = gatewayKEM.PublicKey().Bytes()
						u.credentials[i] = must[*Credential](t)(issueCredential(e.m.authKey, &swapped)).raw
					}
				}
				return must[[]byte](t)(u.marshal())
			}
			return e.alice, dave.cred.Hash(), syncErr(e.alice)
		}, ErrCredentialMismatch},
		{"member re-issued with the gateway's keys for everyone", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			bobPrime, _, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.bob.cred.Identity)
			members := with(without(e.head.Members, e.bob.cred.Hash()), bobPrime.Hash())
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, members, false)))
			e.bobEvil.roster = serve(updateBytes(t, []*Roster{r}, bobPrime))
			return e.bob, bobPrime.Hash(), syncErr(e.bob)
		}, ErrImpersonation},
		{"bundle re-signed by the gateway", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			sk := sealedKeyFrom(t, e.aliceSealedAtEpoch3, e.bob.cred.Hash())
			h := *sk.header
			gatewayBase := make([]byte, baseKeySize)
			rand.Read(gatewayBase)
			info := senderKeyInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Sender, e.alice.cred.Hash())
			sealed := must[[]byte](t)(sealBaseKey(e.alice.cred.kemPub, info, gatewayBase))
			root, ok := rootFromPath(leafHash(e.alice.cred.Hash(), sealed), uint64(sk.index), uint64(h.LeafCount), sk.proof)
			if !ok {
				t.Fatal("cannot recompute root")
			}
			h.Root = root
			forged := &sealedKey{header: must[*bundleHeader](t)(signBundleHeader(e.attackerSigningKey, &h)), index: sk.index, proof: sk.proof, sealed: sealed}
			e.aliceEvil.sealed = serve(sealedKeysBytes(t, forged))
			return e.alice, e.bob.cred.Hash(), syncErr(e.alice)
		}, ErrBadSignature},
		{"sealed key swapped under the sender's signature", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			sk := sealedKeyFrom(t, e.aliceSealedAtEpoch3, e.bob.cred.Hash())
			carols := sealedKeyFrom(t, e.aliceSealedAtEpoch3, e.carol.cred.Hash())
			sk.sealed = carols.sealed
			e.aliceEvil.sealed = serve(sealedKeysBytes(t, sk))
			return e.alice, e.bob.cred.Hash(), syncErr(e.alice)
		}, ErrBadSignature},
		{"bundle from a non-member", func(t *testing.T, e *evilRoom) (*party, Hash, error) {
			ghost, ghostDevice, _ := forgeCredential(t, e.m.authKey, e.room, e.instance, e.ghostID)
			base := make([]byte, baseKeySize)
			rand.Read(base)
			info := senderKeyInfo(e.room, e.instance, e.head.Epoch, 0, e.head.Hash(), ghost.Hash(), e.alice.cred.Hash())
			sealed := must[[]byte](t)(sealBaseKey(e.alice.cred.kemPub, info, base))
			leaves := make([]Hash, len(e.head.Members))
			idx, _ := e.head.Index(e.alice.cred.Hash())
			leaves[idx] = leafHash(e.alice.cred.Hash(), sealed)
			root, paths := merkleTree(leaves)
			h := must[*bundleHeader](t)(signBundleHeader(ghostDevice, &bundleHeader{Room: e.room, Instance: e.instance,
				Epoch: e.head.Epoch, RosterHash: e.head.Hash(), Sender: ghost.Hash(), Suite: sframe.CipherSuite,
				LeafCount: uint32(len(leaves)), Root: root}))
			forged := &sealedKey{header: h, index: uint32(idx), proof: paths[idx], sealed: sealed}
			e.aliceEvil.sealed = serve(mergeSealedKeys(t, sealedKeysBytes(t, forged), e.aliceSealedAtEpoch3))
			return e.alice, ghost.Hash(), syncErr(e.alice)
		}, ErrNotMember},
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

// TestEvilGateway_ForkIsRefusedByBothSides runs two honest state machines under one authority key: the gateway
// shows alice and carol a roster with a ghost and bob one without. Nothing is wrong inside either view; the
// security codes differ, and the first key that crosses views is refused on both sides.
func TestEvilGateway_ForkIsRefusedByBothSides(t *testing.T) {
	ctx := context.Background()
	m := newMeeting(t, nil)
	var aliceEvil, bobEvil *evilTransport
	alice := m.join("alice", evil(&aliceEvil))
	bob := m.join("bob", evil(&bobEvil))
	carol := m.join("carol")
	settle(t, alice, bob, carol)

	storeB := NewMemoryStore(m.clock)
	for _, e := range must[[]Entry](t)(m.store.List(ctx, "")) {
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
	if _, err := bob.client.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := alice.client.Status(), bob.client.Status()
	if a.Epoch != b.Epoch || a.SecurityCode == b.SecurityCode {
		t.Fatalf("forked views at epochs %d/%d show codes %q and %q", a.Epoch, b.Epoch, a.SecurityCode, b.SecurityCode)
	}

	// The gateway now relays each view's keys into the other.
	bobEvil.sealed = func(epoch uint64, honest []byte) []byte {
		return mergeSealedKeys(t, honest, must[[]byte](t)(viewA.SealedFor(ctx, bob.cred.Hash(), epoch)))
	}
	aliceEvil.sealed = func(epoch uint64, honest []byte) []byte {
		return mergeSealedKeys(t, honest, must[[]byte](t)(viewB.SealedFor(ctx, alice.cred.Hash(), epoch)))
	}
	requireAlarm(t, bob, syncErr(bob), ErrFork)
	al := requireAlarm(t, alice, syncErr(alice), ErrFork)
	if al.Member != bob.cred.Hash() {
		t.Fatalf("alice's alarm names %s, want bob", al.Member.Short())
	}
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
