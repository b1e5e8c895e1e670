package e2ee

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/meetguard/meetguard/crypto/sframe"
)

// epochSecretInfo is the HPKE info that binds a sealed epoch secret to everything it is for (docs/e2ee.md
// section 5): it cannot be moved to another room, instance, epoch, generation, roster, committer, recipient or
// key package.
func epochSecretInfo(room, instance string, epoch uint64, generation uint8, rosterHash, committer, recipient, keyPackage Hash) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddBytes([]byte(labelEpochSecret))
	b.AddUint8(0)
	addString16(b, room)
	addString16(b, instance)
	b.AddUint64(epoch)
	b.AddUint8(generation)
	b.AddBytes(rosterHash[:])
	b.AddBytes(committer[:])
	b.AddBytes(recipient[:])
	b.AddBytes(keyPackage[:])
	// Room and instance were validated where they entered the protocol, so this cannot fail.
	return b.BytesOrPanic()
}

func sealSecret(recipient hpke.PublicKey, info, secret []byte) ([]byte, error) {
	sealed, err := hpke.Seal(recipient, hpkeKDF(), hpkeAEAD(), info, secret)
	if err != nil {
		return nil, fmt.Errorf("e2ee: seal epoch secret: %w", err)
	}
	return sealed, nil
}

func openSecret(key hpke.PrivateKey, info, sealed []byte) ([]byte, error) {
	pt, err := hpke.Open(key, hpkeKDF(), hpkeAEAD(), info, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecryptable, err)
	}
	if len(pt) != secretSize {
		clear(pt)
		return nil, fmt.Errorf("%w: epoch secret of %d bytes", ErrUndecryptable, len(pt))
	}
	return pt, nil
}

const secretSize = 32

// epochKeys is what members derive from one epoch secret: the authenticator behind the security code and the
// base key of every sender's every stream. Only members hold the epoch secret, so the gateway can neither
// compute nor steer any of it.
type epochKeys struct {
	epoch      uint64
	generation uint8
	commit     Hash // the commit header hash
	prk        []byte
	auth       [32]byte
}

// newEpochKeys runs the key schedule of docs/e2ee.md section 5:
//
//	prk           = HKDF-Extract(SHA-256, salt = commit_hash, ikm = epoch_secret)
//	authenticator = HKDF-Expand(prk, "meetguard/e2ee/v2 authenticator" || 0x00 || authority_key || roster_hash, 32)
func newEpochKeys(secret []byte, h *commitHeader, authority ed25519.PublicKey) (*epochKeys, error) {
	prk, err := hkdf.Extract(sha256.New, secret, h.hash[:])
	if err != nil {
		return nil, err
	}
	info := labelled(labelAuthenticator, append(append([]byte{}, authority...), h.RosterHash[:]...))
	a, err := hkdf.Expand(sha256.New, prk, string(info), 32)
	if err != nil {
		return nil, err
	}
	k := &epochKeys{epoch: h.Epoch, generation: h.Generation, commit: h.hash, prk: prk}
	copy(k.auth[:], a)
	return k, nil
}

// Streams per sender: the KID's low byte. A sender uses one stream id per media track (audio, camera, screen).
const MaxStreams = 256

// baseKey is the SFrame base key of one sender's stream:
// HKDF-Expand(prk, "meetguard/e2ee/v2 sender key" || 0x00 || uint16(sender_index) || uint8(stream), 32).
func (k *epochKeys) baseKey(senderIndex int, stream uint8) ([]byte, error) {
	info := labelled(labelSenderKey, []byte{byte(senderIndex >> 8), byte(senderIndex), stream})
	return hkdf.Expand(sha256.New, k.prk, string(info), secretSize)
}

// sframeKey derives the SFrame key of one sender's stream.
func (k *epochKeys) sframeKey(senderIndex int, stream uint8) (*sframe.Key, error) {
	base, err := k.baseKey(senderIndex, stream)
	if err != nil {
		return nil, err
	}
	defer clear(base)
	return sframe.DeriveKey(KID(k.epoch, k.generation, senderIndex, stream), base)
}

func (k *epochKeys) wipe() {
	clear(k.prk)
	clear(k.auth[:])
}

// KID is the SFrame key id of one stream of one sender: epoch << 32 | generation << 24 | sender index << 8 |
// stream. Each (sender, stream) has its own key and salt, so two tracks of one sender never share a nonce.
func KID(epoch uint64, generation uint8, senderIndex int, stream uint8) uint64 {
	return epoch<<32 | uint64(generation)<<24 | uint64(senderIndex&0xffff)<<8 | uint64(stream)
}

// SplitKID is KID's inverse.
func SplitKID(kid uint64) (epoch uint64, generation uint8, senderIndex int, stream uint8) {
	return kid >> 32, uint8(kid >> 24), int(kid>>8) & 0xffff, uint8(kid)
}

// SecurityCode is the 40-digit code, in eight groups of five, that participants compare aloud. It is derived
// from the epoch authenticator, which only holders of the epoch secret can compute: the gateway cannot search
// for a fork whose codes match, so every group compared costs it a factor 100 000 in the chance of going unseen
// (docs/e2ee.md section 5).
func SecurityCode(authenticator [32]byte) string {
	d := sha512.Sum512(labelled("meetguard/e2ee/v2 security code", authenticator[:]))
	groups := make([]string, 8)
	for i := range groups {
		var v uint64
		for _, c := range d[5*i : 5*i+5] {
			v = v<<8 | uint64(c)
		}
		groups[i] = fmt.Sprintf("%05d", v%100000)
	}
	return strings.Join(groups, " ")
}
