package e2ee

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/crypto/sframe"
)

type regAttempt struct {
	m      *meeting
	req    RegisterRequest
	ch     *Challenge
	device ed25519.PrivateKey
}

// keyPackage signs a key package with device.
func (r *regAttempt) keyPackage(t *testing.T, device ed25519.PrivateKey, kem KEM, kemKey []byte, id Identity) *KeyPackage {
	t.Helper()
	return must[*KeyPackage](t)(newKeyPackage(device, &KeyPackage{Room: r.ch.Room, Instance: r.ch.Instance, Identity: id,
		SigningKey: device.Public().(ed25519.PublicKey), Seq: 1, KEM: kem, KEMKey: kemKey, NotAfter: r.m.clock.Now().Add(time.Hour)}))
}

// resign recomputes the proof of possession after a test changed the registration.
func (r *regAttempt) resign(t *testing.T, room string) {
	t.Helper()
	tbs := must[[]byte](t)(r.req.Registration.proofTBS(room, r.ch.Instance))
	r.req.Registration.Signature = sign(r.device, labelRegistration, tbs)
}

func TestAuthority_RegisterRefuses(t *testing.T) {
	x25519 := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).GenerateKey())
	otherXWing := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
	cases := []struct {
		name   string
		mutate func(t *testing.T, r *regAttempt)
		want   error
	}{
		{"nonce used twice", func(t *testing.T, r *regAttempt) {
			must[*Credential](t)(r.m.authority.Register(r.m.ctx, r.req))
		}, ErrNonce},
		{"nonce expired", func(t *testing.T, r *regAttempt) { r.m.clock.Advance(2 * time.Minute) }, ErrNonce},
		{"nonce issued to another subject", func(t *testing.T, r *regAttempt) {
			r.req.Identity.Subject = "mallory"
		}, ErrNonce},
		{"nonce never issued", func(t *testing.T, r *regAttempt) {
			rand.Read(r.req.Registration.Nonce[:])
			r.resign(t, r.ch.Room)
		}, ErrNonce},
		{"nonce burnt by a refused attempt", func(t *testing.T, r *regAttempt) {
			good := r.req.Registration.Signature
			r.req.Registration.Signature = make([]byte, ed25519.SignatureSize)
			if _, err := r.m.authority.Register(r.m.ctx, r.req); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("first attempt: %v", err)
			}
			r.req.Registration.Signature = good
		}, ErrNonce},
		{"proof signed by another key", func(t *testing.T, r *regAttempt) {
			_, r.device, _ = ed25519.GenerateKey(nil)
			r.resign(t, r.ch.Room)
		}, ErrBadSignature},
		{"proof made for another room", func(t *testing.T, r *regAttempt) { r.resign(t, "other-room") }, ErrBadSignature},
		{"key package swapped after signing", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KeyPackage = r.keyPackage(t, r.device, KEMXWing, otherXWing.PublicKey().Bytes(), r.req.Identity).raw
		}, ErrBadSignature},
		{"key package of another device", func(t *testing.T, r *regAttempt) {
			_, other, _ := ed25519.GenerateKey(nil)
			r.req.Registration.KeyPackage = r.keyPackage(t, other, KEMXWing, otherXWing.PublicKey().Bytes(), r.req.Identity).raw
			r.resign(t, r.ch.Room)
		}, ErrBadSignature},
		{"key package for another identity", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KeyPackage = r.keyPackage(t, r.device, KEMXWing, otherXWing.PublicKey().Bytes(), Identity{Issuer: "https://idp.example", Subject: "bob"}).raw
			r.resign(t, r.ch.Room)
		}, ErrIdentityMismatch},
		{"classic KEM in a post-quantum room", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KeyPackage = r.keyPackage(t, r.device, KEMX25519, x25519.PublicKey().Bytes(), r.req.Identity).raw
			r.resign(t, r.ch.Room)
		}, ErrKEMNotAllowed},
		{"key package garbage", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KeyPackage = []byte{0, 1, 2}
			r.resign(t, r.ch.Room)
		}, ErrMalformed},
		{"display name not UTF-8", func(t *testing.T, r *regAttempt) { r.req.DisplayName = "\xff\xfe" }, ErrMalformed},
		{"unknown role", func(t *testing.T, r *regAttempt) { r.req.Role = 9 }, ErrMalformed},
		{"missing registration", func(t *testing.T, r *regAttempt) { r.req.Registration = nil }, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeeting(t, nil)
			id := Identity{Issuer: "https://idp.example", Subject: "alice"}
			_, device, _ := ed25519.GenerateKey(nil)
			kemKey := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
			ch := must[*Challenge](t)(m.authority.IssueNonce(m.ctx, id))
			r := &regAttempt{m: m, ch: ch, device: device}
			reg := must[*Registration](t)(newRegistration(device, r.keyPackage(t, device, KEMXWing, kemKey.PublicKey().Bytes(), id), ch))
			r.req = RegisterRequest{Identity: id, DisplayName: "Alice", Role: RoleHost, Registration: reg}
			tc.mutate(t, r)
			if _, err := m.authority.Register(m.ctx, r.req); !errors.Is(err, tc.want) {
				t.Fatalf("Register = %v, want %v", err, tc.want)
			}
		})
	}
}

// buildCommit seals a fresh epoch secret from committer to every other member's key package, as a client would.
func buildCommit(t *testing.T, m *meeting, committer *party, gen uint8) *commit {
	t.Helper()
	head := m.authority.Head()
	kps := must[[]*KeyPackage](t)(parseKeyPackages(must[[]byte](t)(m.authority.KeyPackages(m.ctx, committer.cred.Hash(), head.Epoch))))
	secret := make([]byte, secretSize)
	rand.Read(secret)
	var entries []commitEntry
	var leaves []Hash
	var kems []KEM
	for i, h := range head.Members {
		kems = append(kems, kps[i].KEM)
		if h == committer.cred.Hash() {
			continue
		}
		info := epochSecretInfo(head.Room, head.Instance, head.Epoch, gen, head.Hash(), committer.cred.Hash(), h, kps[i].Hash())
		sealed := must[[]byte](t)(sealSecret(kps[i].kemPub, info, secret))
		entries = append(entries, commitEntry{recipient: h, keyPackage: kps[i].Hash(), sealed: sealed})
		leaves = append(leaves, leafHash(h, kps[i].Hash(), sealed))
	}
	return &commit{entries: entries, header: must[*commitHeader](t)(signCommitHeader(committer.client.device, &commitHeader{
		Room: head.Room, Instance: head.Instance, Epoch: head.Epoch, Generation: gen, RosterHash: head.Hash(),
		Committer: committer.cred.Hash(), Suite: sframe.CipherSuite, KEMs: kems, LeafCount: uint32(len(entries)), Root: must[Hash](t)(merkleRoot(leaves))}))}
}

// resignCommit re-signs a commit after a test changed its header or entries, as its committer would.
func resignCommit(t *testing.T, c *commit, device ed25519.PrivateKey) {
	t.Helper()
	var leaves []Hash
	for _, e := range c.entries {
		leaves = append(leaves, leafHash(e.recipient, e.keyPackage, e.sealed))
	}
	h := *c.header
	h.LeafCount, h.Root = uint32(len(leaves)), must[Hash](t)(merkleRoot(leaves))
	c.header = must[*commitHeader](t)(signCommitHeader(device, &h))
}

func reheader(t *testing.T, c *commit, device ed25519.PrivateKey, f func(*commitHeader)) []byte {
	t.Helper()
	h := *c.header
	f(&h)
	c.header = must[*commitHeader](t)(signCommitHeader(device, &h))
	return must[[]byte](t)(c.marshal())
}

func TestAuthority_PostCommitRefuses(t *testing.T) {
	type post struct {
		sender Hash
		epoch  uint64
		raw    []byte
	}
	cases := []struct {
		name   string
		attack func(t *testing.T, m *meeting, alice, bob, carol *party) post
		want   error
	}{
		{"garbage", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			return post{alice.cred.Hash(), 3, []byte("not a commit")}
		}, ErrMalformed},
		{"committer is not the caller", func(t *testing.T, m *meeting, alice, bob, _ *party) post {
			return post{bob.cred.Hash(), 3, must[[]byte](t)(buildCommit(t, m, alice, 1).marshal())}
		}, ErrWrongSender},
		{"committer not a member", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			outsider := m.register(m.authority, "outsider")
			c := buildCommit(t, m, alice, 1)
			raw := reheader(t, c, outsider.client.device, func(h *commitHeader) { h.Committer = outsider.cred.Hash() })
			return post{outsider.cred.Hash(), 3, raw}
		}, ErrNotMember},
		{"epoch no longer current", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			c := buildCommit(t, m, alice, 1)
			must[*Roster](t)(m.authority.Rekey(m.ctx))
			return post{alice.cred.Hash(), 3, must[[]byte](t)(c.marshal())}
		}, ErrStaleEpoch},
		{"epoch from the future", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			raw := reheader(t, buildCommit(t, m, alice, 1), alice.client.device, func(h *commitHeader) { h.Epoch = 9 })
			return post{alice.cred.Hash(), 9, raw}
		}, ErrUnknownEpoch},
		{"header epoch differs from the request", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			return post{alice.cred.Hash(), 2, must[[]byte](t)(buildCommit(t, m, alice, 1).marshal())}
		}, ErrMalformed},
		{"sealed to another roster", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			raw := reheader(t, buildCommit(t, m, alice, 1), alice.client.device, func(h *commitHeader) { h.RosterHash = Hash{0x0f} })
			return post{alice.cred.Hash(), 3, raw}
		}, ErrFork},
		{"for another room", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			raw := reheader(t, buildCommit(t, m, alice, 1), alice.client.device, func(h *commitHeader) { h.Room = "other-room" })
			return post{alice.cred.Hash(), 3, raw}
		}, ErrContextMismatch},
		{"unsupported SFrame suite", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			raw := reheader(t, buildCommit(t, m, alice, 1), alice.client.device, func(h *commitHeader) { h.Suite = 0x0001 })
			return post{alice.cred.Hash(), 3, raw}
		}, ErrMalformed},
		{"classic KEM listed in a post-quantum room", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			raw := reheader(t, buildCommit(t, m, alice, 1), alice.client.device, func(h *commitHeader) { h.KEMs[0] = KEMX25519 })
			return post{alice.cred.Hash(), 3, raw}
		}, ErrKEMNotAllowed},
		{"a member left out", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			c := buildCommit(t, m, alice, 1)
			c.entries = c.entries[:1]
			resignCommit(t, c, alice.client.device)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(c.marshal())}
		}, ErrMalformed},
		{"entries out of roster order", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			c := buildCommit(t, m, alice, 1)
			c.entries[0], c.entries[1] = c.entries[1], c.entries[0]
			resignCommit(t, c, alice.client.device)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(c.marshal())}
		}, ErrMalformed},
		{"entry changed under the signature", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			c := buildCommit(t, m, alice, 1)
			c.entries[0].sealed = slices.Clone(c.entries[1].sealed)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(c.marshal())}
		}, ErrBadSignature},
		{"signed by another key", func(t *testing.T, m *meeting, alice, bob, _ *party) post {
			c := buildCommit(t, m, alice, 1)
			resignCommit(t, c, bob.client.device)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(c.marshal())}
		}, ErrBadSignature},
		{"generation already committed", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			return post{alice.cred.Hash(), 3, must[[]byte](t)(buildCommit(t, m, alice, 0).marshal())}
		}, ErrConflict},
		{"generation skipped", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			return post{alice.cred.Hash(), 3, must[[]byte](t)(buildCommit(t, m, alice, 5).marshal())}
		}, ErrUnknownEpoch},
		{"re-key faster than the rate limit", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			return post{alice.cred.Hash(), 3, must[[]byte](t)(buildCommit(t, m, alice, 1).marshal())}
		}, ErrRateLimited},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var events []Event
			var mu sync.Mutex
			m := newMeeting(t, func(o *AuthorityOptions) {
				o.OnEvent = func(_ context.Context, e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
			})
			alice, bob, carol := m.join("alice"), m.join("bob"), m.join("carol")
			settle(t, alice, bob, carol)
			if tc.want != ErrRateLimited {
				m.clock.Advance(5 * time.Second) // clear of the re-key rate limit
			}
			p := tc.attack(t, m, alice, bob, carol)
			err := m.authority.PostCommit(m.ctx, p.sender, p.epoch, p.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("PostCommit = %v, want %v", err, tc.want)
			}
			if tc.want == ErrConflict {
				return // a lost race is not a rejection
			}
			mu.Lock()
			last := events[len(events)-1]
			mu.Unlock()
			if last.Kind != EventRejected || last.Op != "post_commit" || !errors.Is(last.Err, tc.want) {
				t.Fatalf("last audit event %+v, want a post_commit rejection", last)
			}
		})
	}
}

// TestAuthority_KeyPackagePostsAreCheckedAndRateLimited is item 6's limit and item 1's check at the gateway.
func TestAuthority_KeyPackagePostsAreCheckedAndRateLimited(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	m.clock.Advance(time.Second)
	fresh := func(device ed25519.PrivateKey, seq uint64) []byte {
		kem := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
		return must[*KeyPackage](t)(newKeyPackage(device, &KeyPackage{Room: m.authority.Room(), Instance: m.authority.Instance(),
			Identity: alice.cred.Identity, SigningKey: device.Public().(ed25519.PublicKey), Seq: seq, KEM: KEMXWing,
			KEMKey: kem.PublicKey().Bytes(), NotAfter: m.clock.Now().Add(time.Minute)})).raw
	}
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(bob.client.device, 100)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("key package of another device: %v", err)
	}
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(alice.client.device, 100)); err != nil {
		t.Fatal(err)
	}
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(alice.client.device, 101)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second post within a second: %v, want ErrRateLimited", err)
	}
	m.clock.Advance(time.Second)
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(alice.client.device, 99)); !errors.Is(err, ErrReplay) {
		t.Fatalf("older sequence: %v, want ErrReplay", err)
	}
	outsider := m.register(m.authority, "outsider")
	if err := m.authority.PostKeyPackage(m.ctx, outsider.cred.Hash(), fresh(outsider.client.device, 5)); !errors.Is(err, ErrNotMember) {
		t.Fatalf("outsider: %v", err)
	}
}

func TestAuthority_RosterAndKeysOnlyForMembers(t *testing.T) {
	m := newMeeting(t, nil)
	if _, err := m.authority.Roster(m.ctx, Hash{1}, 0); !errors.Is(err, ErrNoRoster) {
		t.Fatalf("roster before any admission: %v", err)
	}
	alice, carol := m.join("alice"), m.join("carol")
	waiting := m.register(m.authority, "waiting")
	if _, err := m.authority.Roster(m.ctx, waiting.cred.Hash(), 0); !errors.Is(err, ErrNotMember) {
		t.Fatalf("roster for a registered, unadmitted client: %v", err)
	}
	if _, err := m.authority.SealedFor(m.ctx, waiting.cred.Hash(), 2); !errors.Is(err, ErrNotMember) {
		t.Fatalf("keys for an unadmitted client: %v", err)
	}
	if _, err := m.authority.Roster(m.ctx, alice.cred.Hash(), 3); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("roster since a future epoch: %v", err)
	}
	must[*Roster](t)(m.authority.Remove(m.ctx, carol.cred.Hash()))
	raw, err := m.authority.Roster(m.ctx, carol.cred.Hash(), 2)
	if err != nil {
		t.Fatalf("a removed member cannot learn of its removal: %v", err)
	}
	if u := must[*rosterUpdate](t)(parseRosterUpdate(raw)); len(u.rosters) != 1 || len(u.credentials) != 0 {
		t.Fatalf("removal update: %d rosters, %d credentials", len(u.rosters), len(u.credentials))
	}
	if _, err := m.authority.Roster(m.ctx, carol.cred.Hash(), 0); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removed member fetched the head: %v", err)
	}
	if _, err := m.authority.SealedFor(m.ctx, alice.cred.Hash(), 2); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("keys of a replaced epoch: %v", err)
	}
}

func TestAuthority_MembershipRules(t *testing.T) {
	t.Run("locked room admits nobody until unlocked", func(t *testing.T) {
		m := newMeeting(t, nil)
		m.join("alice")
		bob := m.register(m.authority, "bob")
		must[*Roster](t)(m.authority.SetLocked(m.ctx, true))
		if _, err := m.authority.Admit(m.ctx, bob.cred.Hash()); !errors.Is(err, ErrLocked) {
			t.Fatalf("admit to a locked room: %v", err)
		}
		must[*Roster](t)(m.authority.SetLocked(m.ctx, false))
		if r := must[*Roster](t)(m.authority.Admit(m.ctx, bob.cred.Hash())); r.Epoch != 4 || len(r.Members) != 2 {
			t.Fatalf("admit after unlock: epoch %d, %d members", r.Epoch, len(r.Members))
		}
	})
	t.Run("unknown credentials and non-members", func(t *testing.T) {
		m := newMeeting(t, nil)
		if _, err := m.authority.Admit(m.ctx, Hash{9}); !errors.Is(err, ErrUnknownCredential) {
			t.Fatalf("admit unknown: %v", err)
		}
		if _, err := m.authority.Remove(m.ctx, Hash{9}); !errors.Is(err, ErrNotMember) {
			t.Fatalf("remove non-member: %v", err)
		}
	})
	t.Run("admitting a member again creates no epoch", func(t *testing.T) {
		m := newMeeting(t, nil)
		alice := m.join("alice")
		if r := must[*Roster](t)(m.authority.Admit(m.ctx, alice.cred.Hash())); r.Epoch != 1 {
			t.Fatalf("re-admission moved to epoch %d", r.Epoch)
		}
	})
	t.Run("room full", func(t *testing.T) {
		m := newMeeting(t, func(o *AuthorityOptions) { o.MaxMembers = 2 })
		m.join("alice")
		m.join("bob")
		carol := m.register(m.authority, "carol")
		if _, err := m.authority.Admit(m.ctx, carol.cred.Hash()); !errors.Is(err, ErrRoomFull) {
			t.Fatalf("third member in a room of two: %v", err)
		}
	})
	t.Run("expired credentials are refused and pruned", func(t *testing.T) {
		m := newMeeting(t, func(o *AuthorityOptions) { o.CredentialTTL = time.Hour })
		alice := m.join("alice")
		bob := m.register(m.authority, "bob")
		m.clock.Advance(time.Hour)
		if _, err := m.authority.Admit(m.ctx, bob.cred.Hash()); !errors.Is(err, ErrCredentialExpired) {
			t.Fatalf("admit expired: %v", err)
		}
		if r := must[*Roster](t)(m.authority.Rekey(m.ctx)); r.Has(alice.cred.Hash()) {
			t.Fatal("expired member kept in the next epoch")
		}
	})
}

// TestAuthority_KeyPackageRateLimitHoldsAcrossNodes: two gateway nodes share one store. A member that posted
// a key package through node A and posts again through node B within the interval is refused: the limit is
// the cluster's, not each node's (with a per-process limit, N nodes allowed N posts per interval).
func TestAuthority_KeyPackageRateLimitHoldsAcrossNodes(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	nodeB := must[*Authority](t)(NewAuthority(m.ctx, AuthorityOptions{Room: m.authority.Room(),
		Instance: m.authority.Instance(), SigningKey: m.authKey, Store: m.store, Clock: m.clock}))
	m.clock.Advance(time.Second)
	fresh := func(seq uint64) []byte {
		kem := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
		return must[*KeyPackage](t)(newKeyPackage(alice.client.device, &KeyPackage{Room: m.authority.Room(),
			Instance: m.authority.Instance(), Identity: alice.cred.Identity,
			SigningKey: alice.client.device.Public().(ed25519.PublicKey), Seq: seq, KEM: KEMXWing,
			KEMKey: kem.PublicKey().Bytes(), NotAfter: m.clock.Now().Add(time.Minute)})).raw
	}
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(100)); err != nil {
		t.Fatalf("post through node A: %v", err)
	}
	if err := nodeB.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(101)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second post within the interval, through node B: %v, want ErrRateLimited", err)
	}
	if err := m.authority.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(102)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third post within the interval, back through node A: %v, want ErrRateLimited", err)
	}
	// Another member's slot is its own.
	bobKP := must[*KeyPackage](t)(newKeyPackage(bob.client.device, &KeyPackage{Room: m.authority.Room(),
		Instance: m.authority.Instance(), Identity: bob.cred.Identity, SigningKey: bob.client.device.Public().(ed25519.PublicKey),
		Seq: 100, KEM: KEMXWing, KEMKey: must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey()).PublicKey().Bytes(),
		NotAfter: m.clock.Now().Add(time.Minute)})).raw
	if err := nodeB.PostKeyPackage(m.ctx, bob.cred.Hash(), bobKP); err != nil {
		t.Fatalf("bob's post through node B: %v", err)
	}
	m.clock.Advance(time.Second)
	if err := nodeB.PostKeyPackage(m.ctx, alice.cred.Hash(), fresh(103)); err != nil {
		t.Fatalf("post through node B after the interval: %v", err)
	}
	if kp := must[*KeyPackage](t)(m.authority.KeyPackageOf(m.ctx, alice.cred.Hash())); kp.Seq != 103 {
		t.Fatalf("node A serves key package %d, want 103", kp.Seq)
	}
}

func TestAuthority_ResumesFromItsStoreOnly(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	again := must[*Authority](t)(NewAuthority(m.ctx, AuthorityOptions{Room: m.authority.Room(),
		Instance: m.authority.Instance(), SigningKey: m.authKey, Store: m.store, Clock: m.clock}))
	if again.Head().Hash() != m.authority.Head().Hash() {
		t.Fatal("restarted authority lost the head")
	}
	alice.local.authority, bob.local.authority = again, again
	must[*Roster](t)(again.Rekey(m.ctx))
	settle(t, alice, bob)

	_, otherKey, _ := ed25519.GenerateKey(nil)
	if _, err := NewAuthority(m.ctx, AuthorityOptions{Room: m.authority.Room(), Instance: m.authority.Instance(),
		SigningKey: otherKey, Store: m.store}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("authority with another key on this store: %v", err)
	}
}

// TestAuthority_LoserOfAnEpochRaceReloadsAndRetries is item 9: two gateway nodes share one store; the node
// that did not sign the last epoch still lands its kick, on top of the other node's epoch, without a fork.
func TestAuthority_LoserOfAnEpochRaceReloadsAndRetries(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	stale := must[*Authority](t)(NewAuthority(m.ctx, AuthorityOptions{Room: m.authority.Room(),
		Instance: m.authority.Instance(), SigningKey: m.authKey, Store: m.store, Clock: m.clock}))
	carol := m.join("carol") // epoch 3, signed by the first node
	settle(t, alice, bob, carol)
	r, err := stale.Remove(m.ctx, bob.cred.Hash())
	if err != nil {
		t.Fatalf("kick on the second node: %v", err)
	}
	if r.Epoch != 4 || r.Has(bob.cred.Hash()) || !r.Has(carol.cred.Hash()) || !r.Has(alice.cred.Hash()) {
		t.Fatalf("kick landed as epoch %d with members %d", r.Epoch, len(r.Members))
	}
	if r.Prev != must[*Roster](t)(m.authority.roster(m.ctx, 3)).Hash() {
		t.Fatal("the second node forked the chain")
	}
	settle(t, alice, carol) // alice's and carol's transports still talk to the first node, which reloads too
	if err := syncErr(bob); !errors.Is(err, ErrRemoved) {
		t.Fatalf("bob after the kick: %v", err)
	}
}

func TestAuthority_AuditsRegistrationsEpochsAndRejections(t *testing.T) {
	var events []Event
	m := newMeeting(t, func(o *AuthorityOptions) {
		o.OnEvent = func(_ context.Context, e Event) { events = append(events, e) }
	})
	alice := m.join("alice")
	_, _ = m.authority.Roster(m.ctx, Hash{7}, 0)
	var kinds []EventKind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
		if e.Room != m.authority.Room() || e.Instance != m.authority.Instance() {
			t.Fatalf("event without room and instance: %+v", e)
		}
	}
	want := []EventKind{EventRegistered, EventEpoch, EventRejected}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if events[0].Credential != alice.cred.Hash() || events[0].Identity.Subject != "alice" || events[1].Epoch != 1 {
		t.Fatalf("events carry the wrong facts: %+v", events)
	}
}

func TestAuthority_PurgeLeavesNothingBehind(t *testing.T) {
	m := newMeeting(t, nil)
	alice, bob := m.join("alice"), m.join("bob")
	settle(t, alice, bob)
	if err := m.authority.Purge(m.ctx); err != nil {
		t.Fatal(err)
	}
	if left := must[[]e2eestore.Entry](t)(m.store.List(m.ctx, "")); len(left) != 0 || m.authority.Head() != nil {
		t.Fatalf("after purge: %d entries, head %v", len(left), m.authority.Head())
	}
	if _, err := m.authority.Roster(m.ctx, alice.cred.Hash(), 0); !errors.Is(err, ErrNoRoster) {
		t.Fatalf("roster after purge: %v", err)
	}
}
