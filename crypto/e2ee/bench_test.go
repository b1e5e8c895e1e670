package e2ee

import (
	"context"
	"crypto/hpke"
	"fmt"
	"syscall"
	"testing"
	"time"
)

var benchKEMs = []struct {
	name string
	kem  KEM
}{{"X-Wing", KEMXWing}, {"X25519", KEMX25519}}

func benchKeyPair(b *testing.B, k KEM) hpke.PrivateKey {
	kem := must[hpke.KEM](b)(k.hpkeKEM())
	return must[hpke.PrivateKey](b)(kem.GenerateKey())
}

func BenchmarkSealPerRecipient(b *testing.B) {
	info := epochSecretInfo("board-room", "instance", 7, 0, Hash{1}, Hash{2}, Hash{3}, Hash{4})
	secret := make([]byte, secretSize)
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			pub := benchKeyPair(b, k.kem).PublicKey()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sealSecret(pub, info, secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenPerRecipient(b *testing.B) {
	info := epochSecretInfo("board-room", "instance", 7, 0, Hash{1}, Hash{2}, Hash{3}, Hash{4})
	secret := make([]byte, secretSize)
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			priv := benchKeyPair(b, k.kem)
			sealed := must[[]byte](b)(sealSecret(priv.PublicKey(), info, secret))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := openSecret(priv, info, sealed); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sealed)), "sealed-B")
		})
	}
}

// benchRoom is a room of n members of one KEM in one epoch; the first two parties have synced.
func benchRoom(b *testing.B, k KEM, n int) (*meeting, []*party) {
	b.Helper()
	m := newMeeting(b, func(o *AuthorityOptions) { o.AllowClassicKEM = true; o.MaxMembers = n; o.RekeyInterval = 1 })
	var hashes []Hash
	var parties []*party
	for i := range n {
		p := m.register(m.authority, fmt.Sprintf("member-%03d", i), withKEM(k), withClassicAllowed())
		hashes = append(hashes, p.cred.Hash())
		parties = append(parties, p)
	}
	must[*Roster](b)(m.authority.Admit(m.ctx, hashes...))
	for _, p := range parties[:2] {
		if _, err := p.client.Sync(m.ctx); err != nil {
			b.Fatal(err)
		}
	}
	return m, parties
}

// BenchmarkRosterVerifyPerEpoch is a member of a 302-member room accepting the next epoch: signature,
// continuity and the checks on every member (credentials already verified).
func BenchmarkRosterVerifyPerEpoch(b *testing.B) {
	m, parties := benchRoom(b, KEMX25519, 302)
	c := parties[0].client
	head := c.head
	next := must[*Roster](b)(m.authority.Rekey(m.ctx))
	update := &rosterUpdate{rosters: [][]byte{next.raw}}
	b.ReportAllocs()
	for b.Loop() {
		c.head = head
		if err := c.applyRoster(update); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(next.raw)), "roster-B")
}

// BenchmarkRekey302 is one re-key of a 302-member room. client-commit is the one sender's work: verify 301 key
// packages, draw the epoch secret, seal it to 301 members, sign. gateway-post is the Authority validating and
// storing the commit. recipient-accept is one member verifying and opening its sealed secret, deriving the
// epoch keys and making its next KEM key. The bytes each member downloads per re-key are download-B/member.
func BenchmarkRekey302(b *testing.B) {
	ctx := context.Background()
	for _, k := range benchKEMs {
		m, parties := benchRoom(b, k.kem, 302)
		committer, recipient := parties[0], parties[1]
		head := committer.client.head
		kps := must[[]*KeyPackage](b)(parseKeyPackages(must[[]byte](b)(m.authority.KeyPackages(ctx, committer.cred.Hash(), head.Epoch))))
		kems := make([]KEM, len(kps))
		for i, kp := range kps {
			kems[i] = kp.KEM
		}
		_, body, _ := must3b(b)(committer.client.sealCommit(head, 0, kps, kems))
		if err := m.authority.PostCommit(ctx, committer.cred.Hash(), head.Epoch, body); err != nil {
			b.Fatal(err)
		}
		keys := must[[]byte](b)(m.authority.SealedFor(ctx, recipient.cred.Hash(), head.Epoch))
		ss := must[[]*sealedSecret](b)(parseSealedSecrets(keys))[0]
		b.Run(k.name+"/client-commit", func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			defer func() { b.ReportMetric(float64((processCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op") }()
			for b.Loop() {
				if _, err := committer.client.checkKeyPackages(head, kps, m.clock.Now()); err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := committer.client.sealCommit(head, 0, kps, kems); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(body)), "upload-B")
		})
		b.Run(k.name+"/gateway-post", func(b *testing.B) {
			co := must[*commit](b)(parseCommit(body))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				now := must[*Roster](b)(m.authority.Rekey(ctx)) // same members, so the entries still fit
				h := *co.header
				h.Epoch, h.RosterHash, h.Generation = now.Epoch, now.Hash(), 0
				co.header = must[*commitHeader](b)(signCommitHeader(committer.client.device, &h))
				next := must[[]byte](b)(co.marshal())
				b.StartTimer()
				if err := m.authority.PostCommit(ctx, committer.cred.Hash(), now.Epoch, next); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/recipient-accept", func(b *testing.B) {
			c := recipient.client
			b.ReportAllocs()
			for b.Loop() {
				c.mu.Lock()
				c.current = nil
				c.mu.Unlock()
				if err := c.acceptSealedSecret(ctx, head, ss); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(keys)), "download-B/member")
			b.ReportMetric(float64(len(body)+301*len(keys)), "gateway-B/rekey")
		})
	}
}

// processCPU is the CPU time this process has used: on a shared machine the wall time of a benchmark says more
// about the neighbours than about the code, so the re-key benchmark reports both.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func must3b(b *testing.B) func(h *commitHeader, body, secret []byte, err error) (*commitHeader, []byte, []byte) {
	return func(h *commitHeader, body, secret []byte, err error) (*commitHeader, []byte, []byte) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
		return h, body, secret
	}
}
