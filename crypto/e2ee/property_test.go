package e2ee

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestMeeting_ForwardSecrecyOfKEMKeys is item 5: bob's KEM private keys and epoch secrets are stolen at epoch
// N. Of every epoch secret ever sealed to bob, the stolen keys open none of epochs <= N-2 and none sealed after
// bob's next key package (epochs >= N+2); the secrets bob still held are not those of epochs <= N-2.
func TestMeeting_ForwardSecrecyOfKEMKeys(t *testing.T) {
	m := newMeeting(t, nil)
	var bobTap *evilTransport
	alice, bob, carol := m.join("alice"), m.join("bob", evil(&bobTap)), m.join("carol")
	parties := []*party{alice, bob, carol}
	settle(t, parties...)
	prks := map[uint64][]byte{}
	next := func() uint64 {
		must[*Roster](t)(m.authority.Rekey(m.ctx))
		m.clock.Advance(3 * time.Second) // past the grace period and the key package rate limit
		settle(t, parties...)
		bob.client.mu.Lock()
		defer bob.client.mu.Unlock()
		prks[bob.client.current.keys.epoch] = slices.Clone(bob.client.current.keys.prk)
		return bob.client.head.Epoch
	}
	for range 5 {
		next()
	}
	n := next()
	bob.client.mu.Lock()
	var stolenKEM []*ownKeyPackage
	stolenKEM = append(stolenKEM, bob.client.kps...)
	var stolenPRK [][]byte
	for _, e := range append([]*epochState{bob.client.current}, bob.client.old...) {
		stolenPRK = append(stolenPRK, slices.Clone(e.keys.prk))
	}
	bob.client.mu.Unlock()
	for range 3 {
		next()
	}

	opened := map[uint64]bool{}
	checked := map[uint64]bool{}
	for _, raw := range bobTap.seen {
		for _, s := range must[[]*sealedSecret](t)(parseSealedSecrets(raw)) {
			h := s.header
			checked[h.Epoch] = true
			info := epochSecretInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Committer, bob.cred.Hash(), s.keyPackage)
			for _, k := range stolenKEM {
				if _, err := openSecret(k.priv, info, s.sealed); err == nil {
					opened[h.Epoch] = true
				}
			}
		}
	}
	for e := range opened {
		if e <= n-2 || e >= n+2 {
			t.Errorf("a KEM key stolen at epoch %d opens the secret of epoch %d", n, e)
		}
	}
	if !opened[n+1] && checked[n+1] {
		t.Errorf("the stolen key does not even open epoch %d: the test shows nothing", n+1)
	}
	if !checked[n-2] && !checked[n-3] || !checked[n+2] && !checked[n+3] {
		t.Fatalf("bob received no secret around epoch %d to check (%v)", n, checked)
	}
	for e, prk := range prks {
		if e > n-2 {
			continue
		}
		for _, s := range stolenPRK {
			if slices.Equal(s, prk) {
				t.Errorf("bob still held the epoch secret of epoch %d at epoch %d", e, n)
			}
		}
	}
}

// TestMeeting_ClientReportsLockChangesAndAdditions is item 8: unlock, admit, lock between two of bob's syncs
// look adjacent to nothing: bob's status reports each change.
func TestMeeting_ClientReportsLockChangesAndAdditions(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	must[*Roster](t)(m.authority.SetLocked(m.ctx, true))
	settle(t, alice, bob)
	carol := m.register(m.authority, "carol")
	unlocked := must[*Roster](t)(m.authority.SetLocked(m.ctx, false))
	added := must[*Roster](t)(m.authority.Admit(m.ctx, carol.cred.Hash()))
	relocked := must[*Roster](t)(m.authority.SetLocked(m.ctx, true))
	settle(t, alice, bob, carol)
	var got []Change
	for _, ch := range bob.client.Status().Changes {
		if ch.Epoch >= unlocked.Epoch {
			got = append(got, ch)
		}
	}
	want := []Change{
		{Epoch: unlocked.Epoch, Kind: ChangeUnlocked},
		{Epoch: added.Epoch, Kind: ChangeAdded, Member: carol.cred.Hash(), DisplayName: "carol", Fingerprint: carol.cred.Fingerprint(), Unlocked: true},
		{Epoch: relocked.Epoch, Kind: ChangeLocked},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("bob's reported changes:\n got %+v\nwant %+v", got, want)
	}
}

// TestMeeting_RandomHonestStepsNeverAlarm is the property test: random joins (new people and second devices
// of people already present), leaves, re-keys and timer rotations over an honest gateway. After every step no
// client raised an alarm, every member decrypts every other member's frames, and every removed member, once
// its grace period is over, decrypts nothing sent after its removal.
func TestMeeting_RandomHonestStepsNeverAlarm(t *testing.T) {
	steps := 1000
	if testing.Short() {
		steps = 150
	}
	rng := rand.New(rand.NewPCG(12, 2026))
	m := newMeeting(t, func(o *AuthorityOptions) { o.RekeyInterval = time.Second })
	var members, removed []*party
	people := map[string]Identity{}
	n := 0
	join := func(id Identity) {
		n++
		p := m.registerAs(m.authority, fmt.Sprintf("device-%d", n), id)
		must[*Roster](t)(m.authority.Admit(m.ctx, p.cred.Hash()))
		members = append(members, p)
	}
	join(Identity{Issuer: "https://idp.example", Subject: "person-0"})
	people["person-0"] = members[0].cred.Identity
	for step := range steps {
		switch op := rng.IntN(10); {
		case len(members) < 2 || op < 3 && len(members) < 8: // a new person
			subject := fmt.Sprintf("person-%d", len(people))
			people[subject] = Identity{Issuer: "https://idp.example", Subject: subject}
			join(people[subject])
		case op < 5 && len(members) < 8: // another device of someone present
			join(members[rng.IntN(len(members))].cred.Identity)
		case op < 8: // someone leaves
			i := rng.IntN(len(members))
			gone := members[i]
			members = slices.Delete(members, i, i+1)
			must[*Roster](t)(m.authority.Remove(m.ctx, gone.cred.Hash()))
			removed = append(removed, gone)
		case op < 9:
			must[*Roster](t)(m.authority.Rekey(m.ctx))
		default: // a timer rotation inside the epoch
			m.clock.Advance(5 * time.Minute)
		}
		m.clock.Advance(3 * time.Second) // past the grace period: replaced keys are gone
		settle(t, members...)
		requireAgreementQuiet(t, step, members)
		for _, r := range removed {
			if err := syncErr(r); !errors.Is(err, ErrRemoved) {
				t.Fatalf("step %d: %s after removal: %v", step, r.name, err)
			}
			frame := must[[]byte](t)(members[0].client.Encrypt(0, nil, []byte("after")))
			if _, _, err := r.client.Decrypt(nil, frame); err == nil {
				t.Fatalf("step %d: removed %s decrypted a frame", step, r.name)
			}
		}
		if len(removed) > 4 {
			removed = removed[1:]
		}
	}
}

// requireAgreementQuiet is requireAgreement for many steps: one stream, messages only on failure.
func requireAgreementQuiet(t *testing.T, step int, parties []*party) {
	t.Helper()
	code := parties[0].client.Status().SecurityCode
	for _, s := range parties {
		st := s.client.Status()
		if st.State != StateMember || st.SecurityCode != code || len(st.Unconfirmed) > len(st.Members) {
			t.Fatalf("step %d: %s: state %v code %q, want %q", step, s.name, st.State, st.SecurityCode, code)
		}
		frame, err := s.client.Encrypt(0, nil, []byte(s.name))
		if err != nil {
			t.Fatalf("step %d: %s: %v", step, s.name, err)
		}
		for _, r := range parties {
			if r == s {
				continue
			}
			if pt, sender, err := r.client.Decrypt(nil, frame); err != nil || string(pt) != s.name || sender != s.cred.Hash() {
				t.Fatalf("step %d: %s cannot decrypt %s: %v", step, r.name, s.name, err)
			}
		}
	}
}
