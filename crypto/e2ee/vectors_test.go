package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/sframe"
)

var update = flag.Bool("update", false, "rewrite crypto/testdata/e2ee-vectors.json and the fuzz seed corpora")

const vectorsPath = "../testdata/e2ee-vectors.json"

type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// vectors is the published file: every encoding and derivation of docs/e2ee.md from fixed inputs. Only the
// HPKE ciphertexts are random (HPKE encapsulation is); a client checks it can open them.
type vectors struct {
	Description string        `json:"description"`
	Room        string        `json:"room"`
	Instance    string        `json:"instance"`
	Authority   vecAuthority  `json:"authority"`
	Devices     []vecDevice   `json:"devices"`
	Rosters     []vecRoster   `json:"rosters"`
	SenderKeys  []vecSender   `json:"sender_keys"`
	Bundle      vecBundle     `json:"bundle"`
	Codes       []vecCodeOnly `json:"security_codes"`
}

type vecAuthority struct {
	Seed      hexBytes `json:"seed"`
	PublicKey hexBytes `json:"public_key"`
}

type vecDevice struct {
	Name                 string   `json:"name"`
	SigningSeed          hexBytes `json:"signing_seed"`
	SigningPublicKey     hexBytes `json:"signing_public_key"`
	KEMID                uint16   `json:"kem_id"`
	KEMIKM               hexBytes `json:"kem_ikm"`
	KEMPrivateKey        hexBytes `json:"kem_private_key"`
	KEMPublicKey         hexBytes `json:"kem_public_key"`
	Issuer               string   `json:"issuer"`
	Subject              string   `json:"subject"`
	DisplayName          string   `json:"display_name"`
	Role                 uint8    `json:"role"`
	NotAfter             uint64   `json:"not_after"`
	Challenge            hexBytes `json:"challenge"`
	RegistrationProofTBS hexBytes `json:"registration_proof_tbs"`
	Registration         hexBytes `json:"registration"`
	CredentialTBS        hexBytes `json:"credential_tbs"`
	Credential           hexBytes `json:"credential"`
	CredentialHash       hexBytes `json:"credential_hash"`
}

type vecRoster struct {
	Epoch        uint64     `json:"epoch"`
	IssuedMS     uint64     `json:"issued_ms"`
	Locked       bool       `json:"locked"`
	Members      []hexBytes `json:"members"`
	TBS          hexBytes   `json:"tbs"`
	Encoding     hexBytes   `json:"encoding"`
	Hash         hexBytes   `json:"hash"`
	SecurityCode string     `json:"security_code"`
}

type vecSender struct {
	Sender      string   `json:"sender"`
	Recipient   string   `json:"recipient"`
	Epoch       uint64   `json:"epoch"`
	Generation  uint16   `json:"generation"`
	SenderIndex int      `json:"sender_index"`
	Info        hexBytes `json:"info"`
	BaseKey     hexBytes `json:"base_key"`
	KID         uint64   `json:"kid"`
	SFrameKey   hexBytes `json:"sframe_key"`
	SFrameSalt  hexBytes `json:"sframe_salt"`
}

type vecBundle struct {
	Sender     string        `json:"sender"`
	Epoch      uint64        `json:"epoch"`
	Generation uint16        `json:"generation"`
	Entries    []vecEntry    `json:"entries"`
	Root       hexBytes      `json:"root"`
	HeaderTBS  hexBytes      `json:"header_tbs"`
	Header     hexBytes      `json:"header"`
	Encoding   hexBytes      `json:"encoding"`
	SealedKeys []vecSealedTo `json:"sealed_keys"`
}

type vecEntry struct {
	Recipient string   `json:"recipient"`
	Sealed    hexBytes `json:"sealed"`
	Leaf      hexBytes `json:"leaf_hash"`
}

type vecSealedTo struct {
	Recipient string   `json:"recipient"`
	Encoding  hexBytes `json:"encoding"`
}

type vecCodeOnly struct {
	Head hexBytes `json:"head"`
	Code string   `json:"code"`
}

func seedOf(parts ...string) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint(parts)))
	return h[:]
}

type vecParty struct {
	device ed25519.PrivateKey
	kemKey hpke.PrivateKey
	cred   *Credential
}

// buildVectors derives every value from fixed inputs. sealed supplies the bundle's HPKE ciphertexts by
// recipient name; nil draws new ones (only when regenerating).
func buildVectors(t *testing.T, sealed map[string][]byte) (*vectors, map[string]*vecParty) {
	t.Helper()
	v := &vectors{
		Description: "meetguard e2ee protocol v1 test vectors (docs/e2ee.md). Byte strings are hex. Regenerate with: go test ./crypto/e2ee -run TestPublishedVectors -update",
		Room:        "board-room",
		Instance:    "2026-03-02T09:00Z#1",
	}
	authority := ed25519.NewKeyFromSeed(seedOf("authority"))
	v.Authority = vecAuthority{Seed: authority.Seed(), PublicKey: hexBytes(authority.Public().(ed25519.PublicKey))}
	start := time.UnixMilli(1772442000000).UTC()
	parties := map[string]*vecParty{}
	specs := []struct {
		name, display string
		role          Role
		kem           KEM
	}{{"alice", "Alice Example", RoleHost, KEMXWing}, {"bob", "Bob Example", RoleParticipant, KEMXWing}, {"carol", "Carol Example", RoleViewer, KEMX25519}}
	for _, s := range specs {
		p := &vecParty{device: ed25519.NewKeyFromSeed(seedOf("signing", s.name))}
		kem := must[hpke.KEM](t)(s.kem.hpkeKEM())
		ikm := seedOf("kem", s.name)
		p.kemKey = must[hpke.PrivateKey](t)(kem.DeriveKeyPair(ikm))
		ch := &Challenge{Room: v.Room, Instance: v.Instance, Expires: start.Add(2 * time.Minute)}
		copy(ch.Nonce[:], seedOf("nonce", s.name))
		reg := must[*Registration](t)(newRegistration(p.device, s.kem, p.kemKey.PublicKey().Bytes(), ch))
		id := Identity{Issuer: "https://idp.example", Subject: s.name}
		p.cred = must[*Credential](t)(issueCredential(authority, &Credential{Room: v.Room, Instance: v.Instance,
			Identity: id, DisplayName: s.display, Role: s.role, SigningKey: p.device.Public().(ed25519.PublicKey),
			KEM: s.kem, KEMKey: p.kemKey.PublicKey().Bytes(), NotAfter: start.Add(24 * time.Hour)}))
		parties[s.name] = p
		v.Devices = append(v.Devices, vecDevice{
			Name: s.name, SigningSeed: p.device.Seed(), SigningPublicKey: hexBytes(p.device.Public().(ed25519.PublicKey)),
			KEMID: uint16(s.kem), KEMIKM: ikm, KEMPrivateKey: must[[]byte](t)(p.kemKey.Bytes()), KEMPublicKey: p.kemKey.PublicKey().Bytes(),
			Issuer: id.Issuer, Subject: id.Subject, DisplayName: s.display, Role: uint8(s.role), NotAfter: unixSeconds(p.cred.NotAfter),
			Challenge:            must[[]byte](t)(ch.Marshal()),
			RegistrationProofTBS: must[[]byte](t)(reg.proofTBS(v.Room, v.Instance)),
			Registration:         must[[]byte](t)(reg.Marshal()),
			CredentialTBS:        p.cred.tbs, Credential: p.cred.raw, CredentialHash: p.cred.hash[:],
		})
	}

	var prev *Roster
	var members []Hash
	for i, name := range []string{"alice", "bob", "carol"} {
		members = append(members, parties[name].cred.Hash())
		slices.SortFunc(members, compareHash)
		r := &Roster{Room: v.Room, Instance: v.Instance, Epoch: uint64(i + 1), IssuedAt: start.Add(time.Duration(i) * time.Second),
			Locked: i == 2, Members: slices.Clone(members)}
		if prev != nil {
			r.Prev = prev.Hash()
		}
		prev = must[*Roster](t)(issueRoster(authority, r))
		vr := vecRoster{Epoch: prev.Epoch, IssuedMS: unixMillis(prev.IssuedAt), Locked: prev.Locked, TBS: prev.tbs,
			Encoding: prev.raw, Hash: prev.hash[:], SecurityCode: SecurityCode(prev.Hash())}
		for _, m := range prev.Members {
			vr.Members = append(vr.Members, slices.Clone(m[:]))
		}
		v.Rosters = append(v.Rosters, vr)
	}
	head := prev

	alice := parties["alice"]
	senderIndex, _ := head.Index(alice.cred.Hash())
	base := seedOf("base key", "alice", "3", "0")
	kid := KID(head.Epoch, senderIndex, 0)
	key := must[*sframe.Key](t)(sframe.DeriveKey(kid, base))
	k, salt := key.Material()
	bu := vecBundle{Sender: "alice", Epoch: head.Epoch}
	var entries []bundleEntry
	var leaves []Hash
	var order []string
	for _, m := range head.Members {
		for _, name := range []string{"bob", "carol"} {
			if parties[name].cred.Hash() != m {
				continue
			}
			info := senderKeyInfo(v.Room, v.Instance, head.Epoch, 0, head.Hash(), alice.cred.Hash(), m)
			v.SenderKeys = append(v.SenderKeys, vecSender{Sender: "alice", Recipient: name, Epoch: head.Epoch,
				SenderIndex: senderIndex, Info: info, BaseKey: base, KID: kid, SFrameKey: k[:], SFrameSalt: salt[:]})
			s := sealed[name]
			if s == nil {
				s = must[[]byte](t)(sealBaseKey(parties[name].cred.kemPub, info, base))
			}
			leaf := leafHash(m, s)
			entries = append(entries, bundleEntry{recipient: m, sealed: s})
			leaves = append(leaves, leaf)
			order = append(order, name)
			bu.Entries = append(bu.Entries, vecEntry{Recipient: name, Sealed: s, Leaf: leaf[:]})
		}
	}
	root, paths := merkleTree(leaves)
	header := must[*bundleHeader](t)(signBundleHeader(alice.device, &bundleHeader{Room: v.Room, Instance: v.Instance,
		Epoch: head.Epoch, RosterHash: head.Hash(), Sender: alice.cred.Hash(), Suite: sframe.CipherSuite,
		LeafCount: uint32(len(leaves)), Root: root}))
	bu.Root, bu.HeaderTBS, bu.Header = root[:], header.tbs, header.raw
	bu.Encoding = must[[]byte](t)((&bundle{header: header, entries: entries}).marshal())
	for i, name := range order {
		sk := &sealedKey{header: header, index: uint32(i), proof: paths[i], sealed: entries[i].sealed}
		bu.SealedKeys = append(bu.SealedKeys, vecSealedTo{Recipient: name, Encoding: must[[]byte](t)(sk.marshal())})
	}
	v.Bundle = bu
	for _, head := range [][]byte{make([]byte, 32), seedOf("any head")} {
		v.Codes = append(v.Codes, vecCodeOnly{Head: head, Code: SecurityCode(Hash(head))})
	}
	return v, parties
}

func TestPublishedVectors(t *testing.T) {
	if *update {
		v, _ := buildVectors(t, nil)
		out := must[[]byte](t)(json.MarshalIndent(v, "", "  "))
		if err := os.WriteFile(vectorsPath, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		writeFuzzSeeds(t, v)
		return
	}
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -update)", err)
	}
	var published vectors
	if err := json.Unmarshal(raw, &published); err != nil {
		t.Fatal(err)
	}
	sealed := map[string][]byte{}
	for _, e := range published.Bundle.Entries {
		sealed[e.Recipient] = e.Sealed
	}
	got, parties := buildVectors(t, sealed)
	gv, pv := reflect.ValueOf(*got), reflect.ValueOf(published)
	for i := range gv.NumField() {
		a := must[[]byte](t)(json.Marshal(gv.Field(i).Interface()))
		b := must[[]byte](t)(json.Marshal(pv.Field(i).Interface()))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s:\n got %s\nwant %s", gv.Type().Field(i).Name, vectorsPath, a, b)
		}
	}

	// Opening the published sealed keys the way a client does: signature, inclusion proof, HPKE.
	head := must[*Roster](t)(ParseRoster(published.Rosters[len(published.Rosters)-1].Encoding))
	alice := parties["alice"]
	for _, s := range published.Bundle.SealedKeys {
		sk := must[*sealedKey](t)(parseSealedKey(s.Encoding))
		me := parties[s.Recipient]
		if !sk.header.verify(alice.cred.SigningKey) ||
			!verifyInclusion(leafHash(me.cred.Hash(), sk.sealed), uint64(sk.index), uint64(sk.header.LeafCount), sk.proof, sk.header.Root) {
			t.Fatalf("%s: published sealed key does not verify", s.Recipient)
		}
		info := senderKeyInfo(head.Room, head.Instance, head.Epoch, 0, head.Hash(), alice.cred.Hash(), me.cred.Hash())
		base, err := openBaseKey(me.kemKey, info, sk.sealed)
		if err != nil || !bytes.Equal(base, published.SenderKeys[0].BaseKey) {
			t.Fatalf("%s: opened %x, %v", s.Recipient, base, err)
		}
	}
	kems := map[uint16]bool{}
	for _, d := range published.Devices {
		kems[d.KEMID] = true
	}
	if !kems[uint16(KEMXWing)] || !kems[uint16(KEMX25519)] {
		t.Fatal("vectors must cover both KEMs")
	}
}

// writeFuzzSeeds stores valid encodings as seed corpora, so fuzzing starts from real messages.
func writeFuzzSeeds(t *testing.T, v *vectors) {
	t.Helper()
	u := &rosterUpdate{version: 3}
	for _, r := range v.Rosters {
		u.rosters = append(u.rosters, r.Encoding)
	}
	for _, d := range v.Devices {
		u.credentials = append(u.credentials, d.Credential)
	}
	var sealedItems [][]byte
	for _, s := range v.Bundle.SealedKeys {
		sealedItems = append(sealedItems, s.Encoding)
	}
	seeds := map[string]map[string][]byte{
		"FuzzParseChallenge":    {"alice": v.Devices[0].Challenge},
		"FuzzParseRegistration": {"alice-xwing": v.Devices[0].Registration, "carol-x25519": v.Devices[2].Registration},
		"FuzzParseCredential":   {"alice-xwing": v.Devices[0].Credential, "carol-x25519": v.Devices[2].Credential},
		"FuzzParseRoster":       {"epoch1": v.Rosters[0].Encoding, "epoch3-locked": v.Rosters[2].Encoding},
		"FuzzParseRosterUpdate": {"three-epochs": must[[]byte](t)(u.marshal())},
		"FuzzParseBundle":       {"alice-epoch3": v.Bundle.Encoding},
		"FuzzParseSealedKeys":   {"bob-and-carol": must[[]byte](t)(marshalSealedKeys(sealedItems))},
	}
	for target, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
