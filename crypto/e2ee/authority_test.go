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

	"github.com/meetguard/meetguard/crypto/sframe"
)

type regAttempt struct {
	m      *meeting
	req    RegisterRequest
	ch     *Challenge
	device ed25519.PrivateKey
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
		{"KEM key swapped after signing", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KEMKey = otherXWing.PublicKey().Bytes()
		}, ErrBadSignature},
		{"classic KEM in a post-quantum room", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KEM, r.req.Registration.KEMKey = KEMX25519, x25519.PublicKey().Bytes()
			r.resign(t, r.ch.Room)
		}, ErrKEMNotAllowed},
		{"unknown KEM", func(t *testing.T, r *regAttempt) { r.req.Registration.KEM = 0x0010 }, ErrUnsupportedKEM},
		{"KEM key of the wrong size", func(t *testing.T, r *regAttempt) {
			r.req.Registration.KEMKey = r.req.Registration.KEMKey[:100]
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
			reg := must[*Registration](t)(newRegistration(device, KEMXWing, kemKey.PublicKey().Bytes(), ch))
			r := &regAttempt{m: m, ch: ch, device: device,
				req: RegisterRequest{Identity: id, DisplayName: "Alice", Role: RoleHost, Registration: reg}}
			tc.mutate(t, r)
			if _, err := m.authority.Register(m.ctx, r.req); !errors.Is(err, tc.want) {
				t.Fatalf("Register = %v, want %v", err, tc.want)
			}
		})
	}
}

// buildBundle seals fresh keys from sender to every other member of head, as a client would.
func buildBundle(t *testing.T, head *Roster, sender Hash, device ed25519.PrivateKey, creds map[Hash]*Credential, gen uint16) *bundle {
	t.Helper()
	base := make([]byte, baseKeySize)
	rand.Read(base)
	var entries []bundleEntry
	var leaves []Hash
	for _, h := range head.Members {
		if h == sender {
			continue
		}
		info := senderKeyInfo(head.Room, head.Instance, head.Epoch, gen, head.Hash(), sender, h)
		sealed := must[[]byte](t)(sealBaseKey(creds[h].kemPub, info, base))
		entries = append(entries, bundleEntry{recipient: h, sealed: sealed})
		leaves = append(leaves, leafHash(h, sealed))
	}
	return &bundle{entries: entries, header: must[*bundleHeader](t)(signBundleHeader(device, &bundleHeader{
		Room: head.Room, Instance: head.Instance, Epoch: head.Epoch, Generation: gen, RosterHash: head.Hash(),
		Sender: sender, Suite: sframe.CipherSuite, LeafCount: uint32(len(entries)), Root: merkleRoot(leaves)}))}
}

// resignBundle re-signs a bundle after a test changed its header or entries, as its sender would.
func resignBundle(t *testing.T, b *bundle, device ed25519.PrivateKey) {
	t.Helper()
	var leaves []Hash
	for _, e := range b.entries {
		leaves = append(leaves, leafHash(e.recipient, e.sealed))
	}
	h := *b.header
	h.LeafCount, h.Root = uint32(len(leaves)), merkleRoot(leaves)
	b.header = must[*bundleHeader](t)(signBundleHeader(device, &h))
}

func TestAuthority_PostBundleRefuses(t *testing.T) {
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
			return post{alice.cred.Hash(), 3, []byte("not a bundle")}
		}, ErrMalformed},
		{"sender is not the caller", func(t *testing.T, m *meeting, alice, bob, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			return post{bob.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrWrongSender},
		{"sender not a member", func(t *testing.T, m *meeting, _, _, _ *party) post {
			outsider := m.register(m.authority, "outsider")
			head := m.authority.Head()
			creds := map[Hash]*Credential{}
			for _, h := range head.Members {
				creds[h] = must[*Credential](t)(m.authority.credential(m.ctx, h))
			}
			b := buildBundle(t, head, outsider.cred.Hash(), outsider.client.device, creds, 0)
			return post{outsider.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrNotMember},
		{"epoch no longer current", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			must[*Roster](t)(m.authority.Rekey(m.ctx))
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrStaleEpoch},
		{"epoch from the future", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			h := *b.header
			h.Epoch = 9
			b.header = must[*bundleHeader](t)(signBundleHeader(alice.client.device, &h))
			return post{alice.cred.Hash(), 9, must[[]byte](t)(b.marshal())}
		}, ErrUnknownEpoch},
		{"header epoch differs from the request", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			return post{alice.cred.Hash(), 2, must[[]byte](t)(b.marshal())}
		}, ErrMalformed},
		{"sealed to another roster", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			h := *b.header
			h.RosterHash = Hash{0x0f}
			b.header = must[*bundleHeader](t)(signBundleHeader(alice.client.device, &h))
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrFork},
		{"for another room", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			h := *b.header
			h.Room = "other-room"
			b.header = must[*bundleHeader](t)(signBundleHeader(alice.client.device, &h))
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrContextMismatch},
		{"unsupported SFrame suite", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			h := *b.header
			h.Suite = 0x0001
			b.header = must[*bundleHeader](t)(signBundleHeader(alice.client.device, &h))
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrMalformed},
		{"a member left out", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			b.entries = b.entries[:1]
			resignBundle(t, b, alice.client.device)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrMalformed},
		{"entries out of roster order", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			b.entries[0], b.entries[1] = b.entries[1], b.entries[0]
			resignBundle(t, b, alice.client.device)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrMalformed},
		{"entry changed under the signature", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 1)
			b.entries[0].sealed = slices.Clone(b.entries[1].sealed)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrBadSignature},
		{"signed by another key", func(t *testing.T, m *meeting, alice, bob, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), bob.client.device, alice.client.creds, 1)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(b.marshal())}
		}, ErrBadSignature},
		{"generation replayed", func(t *testing.T, m *meeting, alice, _, _ *party) post {
			b := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 7)
			raw := must[[]byte](t)(b.marshal())
			if err := m.authority.PostBundle(m.ctx, alice.cred.Hash(), 3, raw); err != nil {
				t.Fatal(err)
			}
			older := buildBundle(t, m.authority.Head(), alice.cred.Hash(), alice.client.device, alice.client.creds, 6)
			return post{alice.cred.Hash(), 3, must[[]byte](t)(older.marshal())}
		}, ErrReplay},
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
			p := tc.attack(t, m, alice, bob, carol)
			err := m.authority.PostBundle(m.ctx, p.sender, p.epoch, p.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("PostBundle = %v, want %v", err, tc.want)
			}
			mu.Lock()
			last := events[len(events)-1]
			mu.Unlock()
			if last.Kind != EventRejected || last.Op != "post_bundle" || !errors.Is(last.Err, tc.want) {
				t.Fatalf("last audit event %+v, want a post_bundle rejection", last)
			}
		})
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

func TestAuthority_SecondSignerOnOneStoreCannotFork(t *testing.T) {
	m := newMeeting(t, nil)
	m.join("alice")
	stale := must[*Authority](t)(NewAuthority(m.ctx, AuthorityOptions{Room: m.authority.Room(),
		Instance: m.authority.Instance(), SigningKey: m.authKey, Store: m.store, Clock: m.clock}))
	must[*Roster](t)(m.authority.Rekey(m.ctx))
	if _, err := stale.Rekey(m.ctx); !errors.Is(err, ErrConflict) {
		t.Fatalf("second signer of epoch 2: %v, want ErrConflict", err)
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
	if left := must[[]Entry](t)(m.store.List(m.ctx, "")); len(left) != 0 || m.authority.Head() != nil {
		t.Fatalf("after purge: %d entries, head %v", len(left), m.authority.Head())
	}
	if _, err := m.authority.Roster(m.ctx, alice.cred.Hash(), 0); !errors.Is(err, ErrNoRoster) {
		t.Fatalf("roster after purge: %v", err)
	}
}
