package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// KeyPackage is a device's own signed statement of the KEM key it wants epoch secrets sealed to, in one room,
// meeting instance and identity, until an expiry (docs/e2ee.md section 4.4). It is signed by the device's
// Ed25519 key, which the gateway's credential binds to the identity; the gateway relays key packages but cannot
// make one, so it cannot substitute a KEM key it holds for a member's. A device publishes a fresh key package
// after every epoch secret it opens and at least every KeyPackageRefresh, and erases the private halves of the
// ones it has superseded.
type KeyPackage struct {
	Room       string
	Instance   string
	Identity   Identity // the identity the device believes it holds; must equal its credential's
	SigningKey ed25519.PublicKey
	Seq        uint64 // the device's counter: every key package it makes has a higher one
	KEM        KEM
	KEMKey     []byte
	NotAfter   time.Time // millisecond precision

	raw    []byte // KeyPackage: tbs<u16> || signature
	tbs    []byte
	sig    []byte
	hash   Hash
	kemPub hpke.PublicKey
}

func (k *KeyPackage) encodeTBS() ([]byte, error) {
	const what = "key_package"
	if err := checkText(what, "room", k.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText(what, "instance", k.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if err := k.Identity.validate(); err != nil {
		return nil, err
	}
	if len(k.SigningKey) != ed25519.PublicKeySize {
		return nil, malformed(what, "signing_key", "want %d bytes", ed25519.PublicKeySize)
	}
	if _, err := k.KEM.publicKey(k.KEMKey); err != nil {
		return nil, fmt.Errorf("key_package.kem_key: %w", err)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, k.Room)
	addString16(b, k.Instance)
	addString16(b, k.Identity.Issuer)
	addString16(b, k.Identity.Subject)
	b.AddBytes(k.SigningKey)
	b.AddUint64(k.Seq)
	b.AddUint16(uint16(k.KEM))
	addBytes16(b, k.KEMKey)
	b.AddUint64(unixMillis(k.NotAfter))
	return finish(what, b)
}

// newKeyPackage signs k with the device key (whose public half must be k.SigningKey).
func newKeyPackage(device ed25519.PrivateKey, k *KeyPackage) (*KeyPackage, error) {
	tbs, err := k.encodeTBS()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, tbs)
	b.AddBytes(sign(device, labelKeyPackage, tbs))
	raw, err := finish("key_package", b)
	if err != nil {
		return nil, err
	}
	return ParseKeyPackage(raw)
}

// ParseKeyPackage parses a key package strictly. It does not verify the signature: call Verify.
func ParseKeyPackage(b []byte) (*KeyPackage, error) {
	outer := newParser("key_package", b)
	tbs := outer.bytes16("tbs", 1, 1<<16-1)
	outer.fixed("signature", ed25519.SignatureSize)
	if err := outer.end(); err != nil {
		return nil, err
	}
	p := newParser("key_package", tbs)
	p.version()
	k := &KeyPackage{
		Room:     p.text("room", 1, maxRoom),
		Instance: p.text("instance", 1, maxInstance),
		Identity: Identity{Issuer: p.text("issuer", 1, maxIssuer), Subject: p.text("subject", 1, maxSubject)},
	}
	k.SigningKey = bytes.Clone(p.fixed("signing_key", ed25519.PublicKeySize))
	k.Seq = p.u64("seq")
	k.KEM = KEM(p.u16("kem_id"))
	k.KEMKey = bytes.Clone(p.bytes16("kem_key", 1, 1<<16-1))
	k.NotAfter = p.unixMillis("not_after_ms")
	if err := p.end(); err != nil {
		return nil, err
	}
	pk, err := k.KEM.publicKey(k.KEMKey)
	if err != nil {
		return nil, fmt.Errorf("key_package.kem_key: %w", err)
	}
	k.kemPub = pk
	k.raw = bytes.Clone(b)
	k.tbs = k.raw[2 : 2+len(tbs)]
	k.sig = k.raw[2+len(tbs):]
	k.hash = digest(labelKeyPackage, k.tbs)
	return k, nil
}

// Bytes returns the signed encoding.
func (k *KeyPackage) Bytes() []byte { return bytes.Clone(k.raw) }

// Hash names the key package in commits.
func (k *KeyPackage) Hash() Hash { return k.hash }

// Verify checks the device's own signature.
func (k *KeyPackage) Verify() error {
	if !verify(k.SigningKey, labelKeyPackage, k.tbs, k.sig) {
		return fmt.Errorf("%w: key package not signed by its device key", ErrBadSignature)
	}
	return nil
}

// checkFor verifies that k is the member's own, current key package: signed by the device key that cred
// certifies, for cred's room, instance and identity, and not expired at now. Every client runs it on every
// member's key package before it seals an epoch secret to it.
func (k *KeyPackage) checkFor(cred *Credential, now time.Time) error {
	switch {
	case !bytes.Equal(k.SigningKey, cred.SigningKey):
		return fmt.Errorf("%w: key package of another device", ErrBadSignature)
	case k.Verify() != nil:
		return fmt.Errorf("%w: key package not signed by the member's device key", ErrBadSignature)
	case k.Room != cred.Room || k.Instance != cred.Instance:
		return fmt.Errorf("%w: key package for room %q instance %q", ErrContextMismatch, k.Room, k.Instance)
	case k.Identity != cred.Identity:
		return fmt.Errorf("%w: key package names %s, credential %s", ErrIdentityMismatch, k.Identity, cred.Identity)
	case !k.NotAfter.After(now):
		return fmt.Errorf("%w: key package expired %v", ErrCredentialExpired, k.NotAfter)
	}
	return nil
}

// keyPackageList is what KeyPackages returns: the newest key package of each member of the head, in roster
// order (docs/e2ee.md section 4.7).
func marshalKeyPackages(items [][]byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, it := range items {
			addBytes16(b, it)
		}
	})
	return finish("key_packages", b)
}

func parseKeyPackages(b []byte) ([]*KeyPackage, error) {
	p := newParser("key_packages", b)
	items := p.list("key_packages", p.bytes32("key_packages", 0, 1<<31), 2, maxMembers)
	if err := p.end(); err != nil {
		return nil, err
	}
	out := make([]*KeyPackage, 0, len(items))
	for _, it := range items {
		k, err := ParseKeyPackage(it)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}
