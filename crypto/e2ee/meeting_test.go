package e2ee

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// requireAgreement checks that all parties are at one epoch with one security code and that every sender's
// SFrame key is exactly the key every other party holds for that sender, by decrypting a real frame.
func requireAgreement(t *testing.T, parties ...*party) Status {
	t.Helper()
	first := parties[0].client.Status()
	for _, p := range parties {
		st := p.client.Status()
		if st.Epoch != first.Epoch || st.Roster != first.Roster || st.SecurityCode != first.SecurityCode {
			t.Fatalf("%s sees epoch %d code %q, %s sees epoch %d code %q", p.name, st.Epoch, st.SecurityCode,
				parties[0].name, first.Epoch, first.SecurityCode)
		}
		if len(st.Members) != len(parties) {
			t.Fatalf("%s sees %d members, want %d (%s)", p.name, len(st.Members), len(parties), names(parties))
		}
	}
	for _, s := range parties {
		send, err := s.client.EncryptionKey()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		frame := send.Encrypt(42, []byte("rtp"), []byte("frame from "+s.name))
		for _, r := range parties {
			if r == s {
				continue
			}
			recv, sender, err := r.client.DecryptionKey(send.KID())
			if err != nil {
				t.Fatalf("%s has no key for %s: %v", r.name, s.name, err)
			}
			if sender != s.cred.Hash() || !recv.Equal(send) {
				t.Fatalf("%s holds a different key for %s", r.name, s.name)
			}
			pt, err := recv.Decrypt([]byte("rtp"), frame)
			if err != nil || string(pt) != "frame from "+s.name {
				t.Fatalf("%s cannot decrypt %s's frame: %v", r.name, s.name, err)
			}
		}
	}
	return first
}

func TestMeeting_MembersAgreeRotateAndExcludeTheKicked(t *testing.T) {
	ctx := context.Background()
	m := newMeeting(t, nil)
	alice, bob, carol := m.join("alice"), m.join("bob"), m.join("carol")
	settle(t, alice, bob, carol)
	three := requireAgreement(t, alice, bob, carol)
	if three.Epoch != 3 || len(three.SecurityCode) != 47 {
		t.Fatalf("epoch %d code %q, want epoch 3 and 8 groups of 5 digits", three.Epoch, three.SecurityCode)
	}

	// A fourth joins: a new epoch everywhere, new keys, a new code.
	aliceOld, _ := alice.client.EncryptionKey()
	oldFrame := aliceOld.Encrypt(7, nil, []byte("in flight"))
	dave := m.join("dave")
	settle(t, alice, bob, carol, dave)
	four := requireAgreement(t, alice, bob, carol, dave)
	if four.Epoch != 4 || four.SecurityCode == three.SecurityCode {
		t.Fatalf("after join: epoch %d code %q (was %q)", four.Epoch, four.SecurityCode, three.SecurityCode)
	}
	if aliceNew, _ := alice.client.EncryptionKey(); aliceNew.Equal(aliceOld) {
		t.Fatal("alice kept her epoch-3 key after the join")
	}

	// The replaced epoch's keys decrypt for the grace period, and not after it.
	key, _, err := bob.client.DecryptionKey(aliceOld.KID())
	if err != nil {
		t.Fatalf("bob dropped alice's previous key inside the grace period: %v", err)
	}
	if pt, err := key.Decrypt(nil, oldFrame); err != nil || string(pt) != "in flight" {
		t.Fatalf("frame in flight: %q %v", pt, err)
	}
	m.clock.Advance(2*time.Second + time.Millisecond)
	if _, _, err := bob.client.DecryptionKey(aliceOld.KID()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("previous key after grace: %v, want ErrNoKey", err)
	}
	settle(t, alice, bob, carol, dave)
	for _, k := range bob.client.ReceiveKeys() {
		if k.Epoch != four.Epoch {
			t.Fatalf("bob still holds a key of epoch %d", k.Epoch)
		}
	}

	// Carol is kicked: the others move on, carol learns she was removed and can open nothing of the new epoch.
	if _, err := m.authority.Remove(ctx, carol.cred.Hash()); err != nil {
		t.Fatal(err)
	}
	settle(t, alice, bob, dave)
	five := requireAgreement(t, alice, bob, dave)
	if err := syncErr(carol); !errors.Is(err, ErrRemoved) {
		t.Fatalf("carol sync after kick: %v, want ErrRemoved", err)
	}
	if st := carol.client.Status(); st.State != StateRemoved || len(carol.client.ReceiveKeys()) != 0 {
		t.Fatalf("carol: state %v with %d keys", st.State, len(carol.client.ReceiveKeys()))
	}
	if _, err := m.authority.SealedFor(ctx, carol.cred.Hash(), five.Epoch); !errors.Is(err, ErrNotMember) {
		t.Fatalf("gateway served carol's keys after the kick: %v", err)
	}
	opened := 0
	for _, r := range []*party{alice, bob, dave} {
		raw, err := m.authority.SealedFor(ctx, r.cred.Hash(), five.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := parseSealedKeys(raw)
		if err != nil || len(keys) != 2 {
			t.Fatalf("%s's sealed keys: %d, %v", r.name, len(keys), err)
		}
		for _, sk := range keys {
			h := sk.header
			for _, recipient := range []Hash{r.cred.Hash(), carol.cred.Hash()} {
				info := senderKeyInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Sender, recipient)
				if _, err := openBaseKey(carol.client.kemKey, info, sk.sealed); !errors.Is(err, ErrUndecryptable) {
					t.Fatalf("carol opened a key sealed to %s: %v", r.name, err)
				}
			}
			// The intended recipient can: the check above is not vacuous.
			info := senderKeyInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Sender, r.cred.Hash())
			if _, err := openBaseKey(r.client.kemKey, info, sk.sealed); err != nil {
				t.Fatalf("%s cannot open her own sealed key: %v", r.name, err)
			}
			opened++
		}
	}
	if opened != 6 {
		t.Fatalf("checked %d sealed keys, want 6", opened)
	}
}

func TestMeeting_SenderRekeysOnTimerAndOldGenerationExpires(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	before, _ := alice.client.EncryptionKey()
	m.clock.Advance(5 * time.Minute)
	settle(t, alice, bob)
	after, _ := alice.client.EncryptionKey()
	if after.KID() != before.KID()+1 || after.Equal(before) {
		t.Fatalf("timer re-key: KID %#x -> %#x", before.KID(), after.KID())
	}
	requireAgreement(t, alice, bob)
	if _, _, err := bob.client.DecryptionKey(before.KID()); err != nil {
		t.Fatalf("generation 0 dropped inside grace: %v", err)
	}
	m.clock.Advance(2 * time.Second)
	if _, _, err := bob.client.DecryptionKey(before.KID()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("generation 0 after grace: %v, want ErrNoKey", err)
	}
}

func TestMeeting_ClassicKEMOnlyWherePolicyAllows(t *testing.T) {
	m := newMeeting(t, func(o *AuthorityOptions) { o.AllowClassicKEM = true })
	alice, bob := m.join("alice"), m.join("bob", withKEM(KEMX25519))
	settle(t, alice, bob)
	st := requireAgreement(t, alice, bob)
	kems := map[KEM]bool{}
	for _, mem := range st.Members {
		kems[mem.KEM] = true
	}
	if !kems[KEMXWing] || !kems[KEMX25519] {
		t.Fatalf("members' KEMs are not visible to everyone: %+v", st.Members)
	}

	strict := newMeeting(t, nil)
	p := &party{name: "carol"}
	p.local = NewLocalTransport(strict.authority, Identity{Issuer: "https://idp.example", Subject: "carol"}, "carol", RoleParticipant)
	c, err := NewClient(strict.ctx, ClientOptions{Transport: p.local, AuthorityKey: strict.authority.PublicKey(), Room: strict.authority.Room(), KEM: KEMX25519, Clock: strict.clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(strict.ctx); !errors.Is(err, ErrKEMNotAllowed) {
		t.Fatalf("X25519 registration in a PQ-only room: %v, want ErrKEMNotAllowed", err)
	}
}

func TestMeeting_JoinerWaitsUntilAdmitted(t *testing.T) {
	m := newMeeting(t, nil)
	alice := m.join("alice")
	bob := m.register(m.authority, "bob")
	st, err := bob.client.Sync(m.ctx)
	if err != nil || st.State != StateWaiting || st.SecurityCode != "" {
		t.Fatalf("unadmitted bob: state %v code %q err %v", st.State, st.SecurityCode, err)
	}
	if _, err := m.authority.Admit(m.ctx, bob.cred.Hash()); err != nil {
		t.Fatal(err)
	}
	settle(t, alice, bob)
	requireAgreement(t, alice, bob)
}

func TestMeeting_RunFollowsEpochsUntilRemoved(t *testing.T) {
	m := newMeeting(t, nil)
	alice := m.join("alice")
	bob := m.register(m.authority, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	statuses := make(chan Status, 16)
	done := make(chan error, 1)
	go func() { done <- bob.client.Run(ctx, func(s Status) { statuses <- s }) }()
	if _, err := m.authority.Admit(ctx, bob.cred.Hash()); err != nil {
		t.Fatal(err)
	}
	for st := range statuses {
		if st.State == StateMember {
			break
		}
	}
	if _, err := alice.client.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.authority.Remove(ctx, bob.cred.Hash()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrRemoved) {
		t.Fatalf("Run returned %v, want ErrRemoved", err)
	}
	var last Status
	for len(statuses) > 0 {
		last = <-statuses
	}
	if last.State != StateRemoved {
		t.Fatalf("last status %v, want removed", last.State)
	}
}

func TestSecurityCode_DiffersForAnyRosterDifference(t *testing.T) {
	base := Hash{1}
	codes := map[string]bool{SecurityCode(base): true}
	for i := range 64 {
		h := base
		h[i/8] ^= 1 << (i % 8)
		c := SecurityCode(h)
		if codes[c] {
			t.Fatalf("flipping bit %d of the head kept the code", i)
		}
		codes[c] = true
	}
	if c := SecurityCode(base); !bytes.Equal([]byte(c), []byte(SecurityCode(base))) || len(c) != 47 {
		t.Fatalf("code %q is not deterministic 8x5 digits", c)
	}
}
