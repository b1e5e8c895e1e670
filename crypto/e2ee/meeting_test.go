package e2ee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/sframe"
)

// requireAgreement checks that all parties are at one epoch with one security code and that every party
// decrypts a real frame of every other party's two streams, named as that sender.
func requireAgreement(t *testing.T, parties ...*party) Status {
	t.Helper()
	first := parties[0].client.Status()
	for _, p := range parties {
		st := p.client.Status()
		if st.Epoch != first.Epoch || st.Roster != first.Roster || st.SecurityCode != first.SecurityCode || st.SecurityCode == "" {
			t.Fatalf("%s sees epoch %d code %q, %s sees epoch %d code %q", p.name, st.Epoch, st.SecurityCode,
				parties[0].name, first.Epoch, first.SecurityCode)
		}
		if len(st.Members) != len(parties) {
			t.Fatalf("%s sees %d members, want %d (%s)", p.name, len(st.Members), len(parties), names(parties))
		}
	}
	for _, s := range parties {
		for stream := range uint8(2) {
			msg := fmt.Sprintf("frame %d from %s", stream, s.name)
			frame, err := s.client.Encrypt(stream, []byte("rtp"), []byte(msg))
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			for _, r := range parties {
				if r == s {
					continue
				}
				pt, sender, err := r.client.Decrypt([]byte("rtp"), frame)
				if err != nil || string(pt) != msg || sender != s.cred.Hash() {
					t.Fatalf("%s cannot decrypt %s's stream %d: %q %v", r.name, s.name, stream, pt, err)
				}
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
	aliceOld, _ := alice.client.EncryptionKey(0)
	oldFrame := must[[]byte](t)(alice.client.Encrypt(0, nil, []byte("in flight")))
	dave := m.join("dave")
	settle(t, alice, bob, carol, dave)
	four := requireAgreement(t, alice, bob, carol, dave)
	if four.Epoch != 4 || four.SecurityCode == three.SecurityCode {
		t.Fatalf("after join: epoch %d code %q (was %q)", four.Epoch, four.SecurityCode, three.SecurityCode)
	}
	if aliceNew, _ := alice.client.EncryptionKey(0); aliceNew.Equal(aliceOld) {
		t.Fatal("alice kept her epoch-3 key after the join")
	}

	// The replaced epoch's keys decrypt for the grace period, and not after it.
	if pt, _, err := bob.client.Decrypt(nil, oldFrame); err != nil || string(pt) != "in flight" {
		t.Fatalf("frame in flight inside the grace period: %q %v", pt, err)
	}
	m.clock.Advance(2*time.Second + time.Millisecond)
	if _, _, err := bob.client.DecryptionKey(aliceOld.KID()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("previous key after grace: %v, want ErrNoKey", err)
	}

	// Carol is kicked: the others move on, carol learns she was removed and none of the KEM keys she held opens
	// the new epoch's secret.
	carol.client.mu.Lock()
	var carolKEM []*ownKeyPackage
	carolKEM = append(carolKEM, carol.client.kps...)
	carol.client.mu.Unlock()
	if _, err := m.authority.Remove(ctx, carol.cred.Hash()); err != nil {
		t.Fatal(err)
	}
	settle(t, alice, bob, dave)
	five := requireAgreement(t, alice, bob, dave)
	if err := syncErr(carol); !errors.Is(err, ErrRemoved) {
		t.Fatalf("carol sync after kick: %v, want ErrRemoved", err)
	}
	if st := carol.client.Status(); st.State != StateRemoved || st.SecurityCode != "" {
		t.Fatalf("carol: state %v code %q", st.State, st.SecurityCode)
	}
	if _, err := m.authority.SealedFor(ctx, carol.cred.Hash(), five.Epoch); !errors.Is(err, ErrNotMember) {
		t.Fatalf("gateway served carol's keys after the kick: %v", err)
	}
	opened := 0
	for _, r := range []*party{alice, bob, dave} {
		secrets := must[[]*sealedSecret](t)(parseSealedSecrets(must[[]byte](t)(m.authority.SealedFor(ctx, r.cred.Hash(), five.Epoch))))
		for _, s := range secrets {
			h := s.header
			info := epochSecretInfo(h.Room, h.Instance, h.Epoch, h.Generation, h.RosterHash, h.Committer, r.cred.Hash(), s.keyPackage)
			for _, k := range carolKEM {
				if _, err := openSecret(k.priv, info, s.sealed); !errors.Is(err, ErrUndecryptable) {
					t.Fatalf("carol opened the secret sealed to %s: %v", r.name, err)
				}
			}
			opened++
		}
	}
	if opened != 2 { // the committer has no entry of its own
		t.Fatalf("checked %d sealed secrets, want 2", opened)
	}
}

func TestMeeting_EpochSecretRotatesOnTimerAndOldGenerationExpires(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	before, _ := alice.client.EncryptionKey(0)
	code := alice.client.Status().SecurityCode
	frame := must[[]byte](t)(alice.client.Encrypt(0, nil, []byte("gen 0")))
	m.clock.Advance(5 * time.Minute)
	settle(t, alice, bob)
	after, _ := alice.client.EncryptionKey(0)
	_, g0, _, _ := SplitKID(before.KID())
	_, g1, _, _ := SplitKID(after.KID())
	if g0 != 0 || g1 != 1 || after.Equal(before) {
		t.Fatalf("timer re-key: KID %#x -> %#x", before.KID(), after.KID())
	}
	if st := requireAgreement(t, alice, bob); st.Generation != 1 || st.SecurityCode == code {
		t.Fatalf("generation %d, code %q (was %q)", st.Generation, st.SecurityCode, code)
	}
	if _, _, err := bob.client.Decrypt(nil, frame); err != nil {
		t.Fatalf("generation 0 dropped inside grace: %v", err)
	}
	m.clock.Advance(2 * time.Second)
	if _, _, err := bob.client.DecryptionKey(before.KID()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("generation 0 after grace: %v, want ErrNoKey", err)
	}
}

// TestMeeting_PostQuantumRequiredByDefault is item 10: one classic-KEM member in a room whose policy allows it
// cannot silently downgrade a client that requires post-quantum keys (the default); a client that allows
// classic KEMs sees every member's KEM.
func TestMeeting_PostQuantumRequiredByDefault(t *testing.T) {
	m := newMeeting(t, func(o *AuthorityOptions) { o.AllowClassicKEM = true })
	alice, bob := m.join("alice"), m.join("bob", withKEM(KEMX25519))
	for range 3 {
		_, _ = bob.client.Sync(m.ctx)
		_, _ = alice.client.Sync(m.ctx)
		m.clock.Advance(3 * time.Second)
	}
	st := alice.client.Status()
	if st.SecurityCode != "" || !errors.Is(st.Err, ErrKEMNotAllowed) {
		t.Fatalf("alice (PQ required) with a classic member: code %q err %v", st.SecurityCode, st.Err)
	}
	if _, err := alice.client.EncryptionKey(0); !errors.Is(err, ErrNoKey) {
		t.Fatalf("alice holds a key protected by a classic KEM: %v", err)
	}

	m2 := newMeeting(t, func(o *AuthorityOptions) { o.AllowClassicKEM = true })
	carol, dave := m2.join("carol", withClassicAllowed()), m2.join("dave", withKEM(KEMX25519))
	settle(t, carol, dave)
	st = requireAgreement(t, carol, dave)
	kems := map[KEM]bool{}
	for _, mem := range st.Members {
		kems[mem.KEM] = true
	}
	if !kems[KEMXWing] || !kems[KEMX25519] {
		t.Fatalf("members' KEMs are not visible to everyone: %+v", st.Members)
	}

	strict := newMeeting(t, nil)
	p := &party{name: "erin"}
	p.local = NewLocalTransport(strict.authority, Identity{Issuer: "https://idp.example", Subject: "erin"}, "erin", RoleParticipant)
	c := must[*Client](t)(NewClient(strict.ctx, ClientOptions{Transport: p.local, AuthorityKey: strict.authority.PublicKey(),
		Room: strict.authority.Room(), KEM: KEMX25519, AllowClassicKEM: true, Clock: strict.clock}))
	if _, err := c.Register(strict.ctx); !errors.Is(err, ErrKEMNotAllowed) {
		t.Fatalf("X25519 registration in a PQ-only room: %v, want ErrKEMNotAllowed", err)
	}
	if _, err := NewClient(strict.ctx, ClientOptions{Transport: p.local, AuthorityKey: strict.authority.PublicKey(),
		Room: strict.authority.Room(), KEM: KEMX25519}); !errors.Is(err, ErrKEMNotAllowed) {
		t.Fatalf("X25519 client without AllowClassicKEM: %v", err)
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
	statuses := make(chan Status, 64)
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

func TestSecurityCode_DiffersForAnyAuthenticatorDifference(t *testing.T) {
	base := [32]byte{1}
	codes := map[string]bool{SecurityCode(base): true}
	for i := range 64 {
		h := base
		h[i/8] ^= 1 << (i % 8)
		c := SecurityCode(h)
		if codes[c] {
			t.Fatalf("flipping bit %d of the authenticator kept the code", i)
		}
		codes[c] = true
	}
	if c := SecurityCode(base); !bytes.Equal([]byte(c), []byte(SecurityCode(base))) || len(c) != 47 {
		t.Fatalf("code %q is not deterministic 8x5 digits", c)
	}
}

// TestMeeting_TwoStreamsOfOneSenderNeverShareANonce is item 7: audio and video of one sender have their own
// KIDs, keys and salts, so equal counters never give equal nonces; and a replayed frame is refused.
func TestMeeting_TwoStreamsOfOneSenderNeverShareANonce(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	audio := must[[]byte](t)(alice.client.Encrypt(0, nil, []byte("audio")))
	video := must[[]byte](t)(alice.client.Encrypt(1, nil, []byte("video")))
	ka, ca, _ := must3(t)(sframe.ParseHeader(audio))
	kv, cv, _ := must3(t)(sframe.ParseHeader(video))
	if ka == kv || ca != cv {
		t.Fatalf("audio KID %#x ctr %d, video KID %#x ctr %d: want distinct KIDs at the same counter", ka, ca, kv, cv)
	}
	keyA, _ := alice.client.EncryptionKey(0)
	keyV, _ := alice.client.EncryptionKey(1)
	kA, sA := keyA.Material()
	kV, sV := keyV.Material()
	if kA == kV || sA == sV {
		t.Fatal("two streams of one sender share a key or a salt: equal counters would reuse a nonce")
	}
	if _, _, err := bob.client.Decrypt(nil, audio); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.client.Decrypt(nil, audio); !errors.Is(err, sframe.ErrReplay) {
		t.Fatalf("replayed frame: %v, want sframe.ErrReplay", err)
	}
}

func must3(t *testing.T) func(a, b uint64, c int, err error) (uint64, uint64, int) {
	return func(a, b uint64, c int, err error) (uint64, uint64, int) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b, c
	}
}

// lossyTransport delivers the first commit but loses the answer, as a timed-out HTTP request can.
type lossyTransport struct {
	*LocalTransport
	lost bool
}

func (l *lossyTransport) PostCommit(ctx context.Context, epoch uint64, commit []byte) error {
	err := l.LocalTransport.PostCommit(ctx, epoch, commit)
	if err == nil && !l.lost {
		l.lost = true
		return context.DeadlineExceeded
	}
	return err
}

// TestMeeting_CommitWhoseAnswerWasLostRecovers: a committer that never learnt its commit was accepted cannot
// open it (no entry is sealed to a committer); it commits the next generation and everyone converges.
func TestMeeting_CommitWhoseAnswerWasLostRecovers(t *testing.T) {
	m := newMeeting(t, nil)
	var lossy *lossyTransport
	alice := m.join("alice", withTransport(func(l *LocalTransport) Transport { lossy = &lossyTransport{LocalTransport: l}; return lossy }))
	bob := m.join("bob")
	_, _ = alice.client.Sync(m.ctx) // sees epoch 2; commits if designated
	m.clock.Advance(3 * time.Second)
	_, _ = alice.client.Sync(m.ctx) // past the commit timeout: commits in any case
	if !lossy.lost {
		t.Fatal("alice never committed: the test shows nothing")
	}
	_, _ = alice.client.Sync(m.ctx)  // finds it lost the race for generation 0 and has nothing sealed to it
	m.clock.Advance(5 * time.Second) // the gateway's re-key rate limit
	settle(t, alice, bob)
	requireAgreement(t, alice, bob)
}
