package e2ee

import (
	"context"
	"crypto/hpke"
	"fmt"
	"testing"
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
	info := senderKeyInfo("board-room", "instance", 7, 0, Hash{1}, Hash{2}, Hash{3})
	base := make([]byte, baseKeySize)
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			pub := benchKeyPair(b, k.kem).PublicKey()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sealBaseKey(pub, info, base); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenPerRecipient(b *testing.B) {
	info := senderKeyInfo("board-room", "instance", 7, 0, Hash{1}, Hash{2}, Hash{3})
	base := make([]byte, baseKeySize)
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			priv := benchKeyPair(b, k.kem)
			sealed := must[[]byte](b)(sealBaseKey(priv.PublicKey(), info, base))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := openBaseKey(priv, info, sealed); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sealed)), "sealed-B")
		})
	}
}

// BenchmarkCredentialVerify is what a client does per new member: parse (including the KEM public key) and
// check the authority's signature.
func BenchmarkCredentialVerify(b *testing.B) {
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			m := newMeeting(b, func(o *AuthorityOptions) { o.AllowClassicKEM = true })
			p := m.register(m.authority, "alice", withKEM(k.kem))
			raw, pub := p.cred.Bytes(), m.authority.PublicKey()
			b.ReportAllocs()
			for b.Loop() {
				c, err := ParseCredential(raw)
				if err != nil || c.Verify(pub) != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchRoom is a room of n members of one KEM in one epoch; the first two parties have synced.
func benchRoom(b *testing.B, k KEM, n int) (*meeting, []*party) {
	b.Helper()
	m := newMeeting(b, func(o *AuthorityOptions) { o.AllowClassicKEM = true; o.MaxMembers = n })
	var hashes []Hash
	var parties []*party
	for i := range n {
		p := m.register(m.authority, fmt.Sprintf("member-%03d", i), withKEM(k))
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

// BenchmarkRekey302 is one sender's full re-key in a 302-member room: sealing to 301 members and signing
// (client-seal), validating and storing the bundle (gateway-post), and one recipient verifying and opening its
// sealed key (recipient-accept; a recipient does this once per sender). Bytes on the wire are metrics.
func BenchmarkRekey302(b *testing.B) {
	ctx := context.Background()
	for _, k := range benchKEMs {
		m, parties := benchRoom(b, k.kem, 302)
		sender, recipient := parties[0], parties[1]
		head := sender.client.head
		_, raw, err := sender.client.seal(head, 1)
		if err != nil {
			b.Fatal(err)
		}
		// The recipient's share is taken from the honest post; gateway-post below re-signs later generations.
		if err := m.authority.PostBundle(ctx, sender.cred.Hash(), head.Epoch, raw); err != nil {
			b.Fatal(err)
		}
		keys := must[[]byte](b)(m.authority.SealedFor(ctx, recipient.cred.Hash(), head.Epoch))
		var sk *sealedKey
		for _, s := range must[[]*sealedKey](b)(parseSealedKeys(keys)) {
			if s.header.Sender == sender.cred.Hash() {
				sk = s
			}
		}
		b.Run(k.name+"/client-seal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := sender.client.seal(head, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw)), "upload-B/sender")
		})
		gen := uint16(100) // shared by -count repetitions: the gateway refuses a generation it has seen
		b.Run(k.name+"/gateway-post", func(b *testing.B) {
			bu := must[*bundle](b)(parseBundle(raw))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				h := *bu.header
				gen++
				h.Generation = gen
				bu.header = must[*bundleHeader](b)(signBundleHeader(sender.client.device, &h))
				next := must[[]byte](b)(bu.marshal())
				b.StartTimer()
				if err := m.authority.PostBundle(ctx, sender.cred.Hash(), head.Epoch, next); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/recipient-accept", func(b *testing.B) {
			item := float64(len(sk.raw) + 2)
			c := recipient.client
			b.ReportAllocs()
			for b.Loop() {
				clear(c.accepted)
				clear(c.generations)
				if err := c.acceptSealedKey(head, sk); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(item, "download-B/sender")
			b.ReportMetric(301*item+4, "download-B/recipient")
			b.ReportMetric(302*(float64(len(raw))+301*item+4), "gateway-B/epoch")
		})
	}
}
