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

// vectors is the published file: every encoding and derivation of docs/e2ee.md (protocol v2) from fixed inputs.
// Only the HPKE ciphertexts are random (HPKE encapsulation is); a second implementation checks it can open them
// and reproduces everything else byte for byte.
type vectors struct {
	Description string        `json:"description"`
	Room        string        `json:"room"`
	Instance    string        `json:"instance"`
	Authority   vecAuthority  `json:"authority"`
	Devices     []vecDevice   `json:"devices"`
	Rosters     []vecRoster   `json:"rosters"`
	Commit      vecCommit     `json:"commit"`
	Epoch       vecEpoch      `json:"epoch_keys"`
	Frames      []vecFrame    `json:"sframe_frames"`
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
	Fingerprint          string   `json:"fingerprint"`
	KEMID                uint16   `json:"kem_id"`
	KEMIKM               hexBytes `json:"kem_ikm"`
	KEMPrivateKey        hexBytes `json:"kem_private_key"`
	KEMPublicKey         hexBytes `json:"kem_public_key"`
	Issuer               string   `json:"issuer"`
	Subject              string   `json:"subject"`
	DisplayName          string   `json:"display_name"`
	Role                 uint8    `json:"role"`
	NotAfter             uint64   `json:"not_after"`
	KeyPackageNotAfterMS uint64   `json:"key_package_not_after_ms"`
	KeyPackageTBS        hexBytes `json:"key_package_tbs"`
	KeyPackage           hexBytes `json:"key_package"`
	KeyPackageHash       hexBytes `json:"key_package_hash"`
	Challenge            hexBytes `json:"challenge"`
	RegistrationProofTBS hexBytes `json:"registration_proof_tbs"`
	Registration         hexBytes `json:"registration"`
	CredentialTBS        hexBytes `json:"credential_tbs"`
	Credential           hexBytes `json:"credential"`
	CredentialHash       hexBytes `json:"credential_hash"`
}

type vecRoster struct {
	Epoch    uint64     `json:"epoch"`
	IssuedMS uint64     `json:"issued_ms"`
	Locked   bool       `json:"locked"`
	Members  []hexBytes `json:"members"`
	TBS      hexBytes   `json:"tbs"`
	Encoding hexBytes   `json:"encoding"`
	Hash     hexBytes   `json:"hash"`
}

type vecCommit struct {
	Committer     string        `json:"committer"`
	Epoch         uint64        `json:"epoch"`
	Generation    uint8         `json:"generation"`
	EpochSecret   hexBytes      `json:"epoch_secret"`
	KEMs          []uint16      `json:"kems"`
	Entries       []vecEntry    `json:"entries"`
	Root          hexBytes      `json:"root"`
	HeaderTBS     hexBytes      `json:"header_tbs"`
	Header        hexBytes      `json:"header"`
	HeaderHash    hexBytes      `json:"header_hash"`
	Encoding      hexBytes      `json:"encoding"`
	SealedSecrets []vecSealedTo `json:"sealed_secrets"`
}

type vecEntry struct {
	Recipient  string   `json:"recipient"`
	KeyPackage hexBytes `json:"key_package_hash"`
	Info       hexBytes `json:"hpke_info"`
	Sealed     hexBytes `json:"sealed"`
	Leaf       hexBytes `json:"leaf_hash"`
}

type vecSealedTo struct {
	Recipient string   `json:"recipient"`
	Encoding  hexBytes `json:"encoding"`
}

type vecEpoch struct {
	AuthenticatorInfo hexBytes `json:"authenticator_info"`
	Authenticator     hexBytes `json:"authenticator"`
	SecurityCode      string   `json:"security_code"`
}

type vecFrame struct {
	Sender      string   `json:"sender"`
	SenderIndex int      `json:"sender_index"`
	Stream      uint8    `json:"stream"`
	KID         uint64   `json:"kid"`
	BaseKey     hexBytes `json:"base_key"`
	SFrameKey   hexBytes `json:"sframe_key"`
	SFrameSalt  hexBytes `json:"sframe_salt"`
	CTR         uint64   `json:"ctr"`
	Metadata    hexBytes `json:"metadata"`
	Plaintext   hexBytes `json:"plaintext"`
	Ciphertext  hexBytes `json:"ciphertext"`
}

type vecCodeOnly struct {
	Authenticator hexBytes `json:"authenticator"`
	Code          string   `json:"code"`
}

func seedOf(parts ...string) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint(parts)))
	return h[:]
}

type vecParty struct {
	device ed25519.PrivateKey
	kemKey hpke.PrivateKey
	kp     *KeyPackage
	cred   *Credential
}

// buildVectors derives every value from fixed inputs. sealed supplies the commit's HPKE ciphertexts by
// recipient name; nil draws new ones (only when regenerating).
func buildVectors(t *testing.T, sealed map[string][]byte) (*vectors, map[string]*vecParty) {
	t.Helper()
	v := &vectors{
		Description: "meetguard e2ee protocol v2 test vectors (docs/e2ee.md). Byte strings are hex. Regenerate with: go test ./crypto/e2ee -run TestPublishedVectors -update",
		Room:        "board-room",
		Instance:    "2026-03-02T09:00Z#1",
	}
	authority := ed25519.NewKeyFromSeed(seedOf("authority"))
	authorityPub := authority.Public().(ed25519.PublicKey)
	v.Authority = vecAuthority{Seed: authority.Seed(), PublicKey: hexBytes(authorityPub)}
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
		id := Identity{Issuer: "https://idp.example", Subject: s.name}
		ch := &Challenge{Room: v.Room, Instance: v.Instance, Identity: id, Expires: start.Add(2 * time.Minute)}
		copy(ch.Nonce[:], seedOf("nonce", s.name))
		p.kp = must[*KeyPackage](t)(newKeyPackage(p.device, &KeyPackage{Room: v.Room, Instance: v.Instance, Identity: id,
			SigningKey: p.device.Public().(ed25519.PublicKey), Seq: 1, KEM: s.kem, KEMKey: p.kemKey.PublicKey().Bytes(),
			NotAfter: start.Add(10 * time.Minute)}))
		reg := must[*Registration](t)(newRegistration(p.device, p.kp, ch))
		p.cred = must[*Credential](t)(issueCredential(authority, &Credential{Room: v.Room, Instance: v.Instance,
			Identity: id, DisplayName: s.display, Role: s.role, SigningKey: p.device.Public().(ed25519.PublicKey),
			NotAfter: start.Add(24 * time.Hour)}))
		parties[s.name] = p
		v.Devices = append(v.Devices, vecDevice{
			Name: s.name, SigningSeed: p.device.Seed(), SigningPublicKey: hexBytes(p.device.Public().(ed25519.PublicKey)),
			Fingerprint: p.cred.Fingerprint(),
			KEMID:       uint16(s.kem), KEMIKM: ikm, KEMPrivateKey: must[[]byte](t)(p.kemKey.Bytes()), KEMPublicKey: p.kemKey.PublicKey().Bytes(),
			Issuer: id.Issuer, Subject: id.Subject, DisplayName: s.display, Role: uint8(s.role), NotAfter: unixSeconds(p.cred.NotAfter),
			KeyPackageNotAfterMS: unixMillis(p.kp.NotAfter), KeyPackageTBS: p.kp.tbs, KeyPackage: p.kp.raw, KeyPackageHash: p.kp.hash[:],
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
			Encoding: prev.raw, Hash: prev.hash[:]}
		for _, m := range prev.Members {
			vr.Members = append(vr.Members, slices.Clone(m[:]))
		}
		v.Rosters = append(v.Rosters, vr)
	}
	head := prev
	byHash := map[Hash]string{}
	for name, p := range parties {
		byHash[p.cred.Hash()] = name
	}

	// Alice commits epoch 3, generation 0.
	alice := parties["alice"]
	secret := seedOf("epoch secret", "3", "0")
	co := vecCommit{Committer: "alice", Epoch: head.Epoch, EpochSecret: secret}
	var entries []commitEntry
	var leaves []Hash
	var order []string
	var kems []KEM
	for _, m := range head.Members {
		name := byHash[m]
		kems = append(kems, parties[name].kp.KEM)
		co.KEMs = append(co.KEMs, uint16(parties[name].kp.KEM))
		if name == "alice" {
			continue
		}
		kp := parties[name].kp
		info := epochSecretInfo(v.Room, v.Instance, head.Epoch, 0, head.Hash(), alice.cred.Hash(), m, kp.Hash())
		s := sealed[name]
		if s == nil {
			s = must[[]byte](t)(sealSecret(kp.kemPub, info, secret))
		}
		leaf := leafHash(m, kp.Hash(), s)
		entries = append(entries, commitEntry{recipient: m, keyPackage: kp.Hash(), sealed: s})
		leaves = append(leaves, leaf)
		order = append(order, name)
		co.Entries = append(co.Entries, vecEntry{Recipient: name, KeyPackage: kp.hash[:], Info: info, Sealed: s, Leaf: leaf[:]})
	}
	root, paths, err := merkleTree(leaves)
	if err != nil {
		t.Fatal(err)
	}
	header := must[*commitHeader](t)(signCommitHeader(alice.device, &commitHeader{Room: v.Room, Instance: v.Instance,
		Epoch: head.Epoch, RosterHash: head.Hash(), Committer: alice.cred.Hash(), Suite: 0x0004, KEMs: kems,
		LeafCount: uint32(len(leaves)), Root: root}))
	co.Root, co.HeaderTBS, co.Header, co.HeaderHash = root[:], header.tbs, header.raw, header.hash[:]
	co.Encoding = must[[]byte](t)((&commit{header: header, entries: entries}).marshal())
	for i, name := range order {
		s := &sealedSecret{header: header, index: uint32(i), proof: paths[i], keyPackage: entries[i].keyPackage, sealed: entries[i].sealed}
		co.SealedSecrets = append(co.SealedSecrets, vecSealedTo{Recipient: name, Encoding: must[[]byte](t)(s.marshal())})
	}
	v.Commit = co

	keys := must[*epochKeys](t)(newEpochKeys(secret, header, authorityPub))
	v.Epoch = vecEpoch{
		AuthenticatorInfo: labelled(labelAuthenticator, append(slices.Clone([]byte(authorityPub)), head.hash[:]...)),
		Authenticator:     keys.auth[:], SecurityCode: SecurityCode(keys.auth),
	}
	for _, name := range []string{"alice", "bob"} {
		index, _ := head.Index(parties[name].cred.Hash())
		for stream := range uint8(2) {
			base := must[[]byte](t)(keys.baseKey(index, stream))
			key := must[*sframe.Key](t)(keys.sframeKey(index, stream))
			k, salt := key.Material()
			md, pt := []byte("rtp header"), []byte(fmt.Sprintf("%s stream %d", name, stream))
			v.Frames = append(v.Frames, vecFrame{Sender: name, SenderIndex: index, Stream: stream, KID: key.KID(), BaseKey: base,
				SFrameKey: k[:], SFrameSalt: salt[:], CTR: 7, Metadata: md, Plaintext: pt, Ciphertext: key.Encrypt(7, md, pt)})
		}
	}
	for _, a := range [][]byte{make([]byte, 32), seedOf("any authenticator")} {
		v.Codes = append(v.Codes, vecCodeOnly{Authenticator: a, Code: SecurityCode([32]byte(a))})
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
	for _, e := range published.Commit.Entries {
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

	// Opening the published sealed secrets the way a client does: signature, inclusion proof, HPKE.
	head := must[*Roster](t)(ParseRoster(published.Rosters[len(published.Rosters)-1].Encoding))
	alice := parties["alice"]
	for _, s := range published.Commit.SealedSecrets {
		ss := must[*sealedSecret](t)(parseSealedSecret(s.Encoding))
		me := parties[s.Recipient]
		if !ss.header.verify(alice.cred.SigningKey) || ss.keyPackage != me.kp.Hash() ||
			!verifyInclusion(leafHash(me.cred.Hash(), ss.keyPackage, ss.sealed), uint64(ss.index), uint64(ss.header.LeafCount), ss.proof, ss.header.Root) {
			t.Fatalf("%s: published sealed secret does not verify", s.Recipient)
		}
		info := epochSecretInfo(head.Room, head.Instance, head.Epoch, 0, head.Hash(), alice.cred.Hash(), me.cred.Hash(), ss.keyPackage)
		secret, err := openSecret(me.kemKey, info, ss.sealed)
		if err != nil || !bytes.Equal(secret, published.Commit.EpochSecret) {
			t.Fatalf("%s: opened %x, %v", s.Recipient, secret, err)
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
	var kps [][]byte
	for _, d := range v.Devices {
		kps = append(kps, d.KeyPackage)
	}
	seeds := map[string]map[string][]byte{
		"FuzzParseChallenge":     {"alice": v.Devices[0].Challenge},
		"FuzzParseRegistration":  {"alice-xwing": v.Devices[0].Registration, "carol-x25519": v.Devices[2].Registration},
		"FuzzParseCredential":    {"alice": v.Devices[0].Credential, "carol": v.Devices[2].Credential},
		"FuzzParseKeyPackage":    {"alice-xwing": v.Devices[0].KeyPackage, "carol-x25519": v.Devices[2].KeyPackage},
		"FuzzParseKeyPackages":   {"three": must[[]byte](t)(marshalKeyPackages(kps))},
		"FuzzParseRoster":        {"epoch1": v.Rosters[0].Encoding, "epoch3-locked": v.Rosters[2].Encoding},
		"FuzzParseRosterUpdate":  {"three-epochs": must[[]byte](t)(u.marshal())},
		"FuzzParseCommit":        {"alice-epoch3": v.Commit.Encoding},
		"FuzzParseSealedSecrets": {"bob": must[[]byte](t)(marshalSealedSecrets([][]byte{v.Commit.SealedSecrets[0].Encoding}))},
	}
	for target, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
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
