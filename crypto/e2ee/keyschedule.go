package e2ee

import (
	"crypto/hpke"
	"crypto/sha512"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// senderKeyInfo is the HPKE info that binds a sealed base key to everything it is for (docs/e2ee.md section 5).
func senderKeyInfo(room, instance string, epoch uint64, generation uint16, rosterHash, sender, recipient Hash) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddBytes([]byte(labelSenderKey))
	b.AddUint8(0)
	addString16(b, room)
	addString16(b, instance)
	b.AddUint64(epoch)
	b.AddUint16(generation)
	b.AddBytes(rosterHash[:])
	b.AddBytes(sender[:])
	b.AddBytes(recipient[:])
	// Room and instance were validated where they entered the protocol, so this cannot fail.
	return b.BytesOrPanic()
}

func sealBaseKey(recipient hpke.PublicKey, info, baseKey []byte) ([]byte, error) {
	sealed, err := hpke.Seal(recipient, hpkeKDF(), hpkeAEAD(), info, baseKey)
	if err != nil {
		return nil, fmt.Errorf("e2ee: seal base key: %w", err)
	}
	return sealed, nil
}

func openBaseKey(key hpke.PrivateKey, info, sealed []byte) ([]byte, error) {
	pt, err := hpke.Open(key, hpkeKDF(), hpkeAEAD(), info, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecryptable, err)
	}
	if len(pt) != baseKeySize {
		clear(pt)
		return nil, fmt.Errorf("%w: base key of %d bytes", ErrUndecryptable, len(pt))
	}
	return pt, nil
}

const baseKeySize = 32

// KID is the SFrame key id of a sender's key: epoch << 32 | sender index << 16 | generation, where the sender
// index is the sender's position in the epoch's sorted member list.
func KID(epoch uint64, senderIndex int, generation uint16) uint64 {
	return epoch<<32 | uint64(senderIndex&0xffff)<<16 | uint64(generation)
}

// SecurityCode is the 40-digit code, in eight groups of five, that participants compare aloud. It is derived
// from the roster-chain head, so it differs whenever members, lock state or history differ.
func SecurityCode(head Hash) string {
	d := sha512.Sum512(labelled(labelSecurityCode, head[:]))
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
