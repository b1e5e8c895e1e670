package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Challenge is the gateway's nonce for one registration (docs/e2ee.md section 4.1).
type Challenge struct {
	Room     string
	Instance string
	// Identity is who the gateway authenticated: the identity it will certify. The client checks it against the
	// identity it expects before it signs a key package for it.
	Identity Identity
	Nonce    [32]byte
	Expires  time.Time // millisecond precision
}

// Marshal encodes the challenge for the client.
func (c *Challenge) Marshal() ([]byte, error) {
	if err := checkText("challenge", "room", c.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText("challenge", "instance", c.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if err := c.Identity.validate(); err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, c.Room)
	addString16(b, c.Instance)
	addString16(b, c.Identity.Issuer)
	addString16(b, c.Identity.Subject)
	b.AddBytes(c.Nonce[:])
	b.AddUint64(unixMillis(c.Expires))
	return finish("challenge", b)
}

// ParseChallenge parses a challenge strictly.
func ParseChallenge(b []byte) (*Challenge, error) {
	p := newParser("challenge", b)
	p.version()
	c := &Challenge{Room: p.text("room", 1, maxRoom), Instance: p.text("instance", 1, maxInstance)}
	c.Identity = Identity{Issuer: p.text("issuer", 1, maxIssuer), Subject: p.text("subject", 1, maxSubject)}
	copy(c.Nonce[:], p.fixed("nonce", 32))
	c.Expires = p.unixMillis("expires_ms")
	if err := p.end(); err != nil {
		return nil, err
	}
	return c, nil
}

// Registration is what a client sends to register its device (docs/e2ee.md section 4.2): its signing key, its
// first key package, and a signature by the device key over the challenge, proving possession of the signing key.
type Registration struct {
	Nonce      [32]byte
	SigningKey ed25519.PublicKey
	KeyPackage []byte // a KeyPackage, signed by the same device key
	Signature  []byte
}

func (r *Registration) proofTBS(room, instance string) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	addString16(b, room)
	addString16(b, instance)
	b.AddBytes(r.Nonce[:])
	b.AddBytes(r.SigningKey)
	addBytes16(b, r.KeyPackage)
	return finish("registration_proof", b)
}

// newRegistration builds and signs the registration for challenge ch.
func newRegistration(device ed25519.PrivateKey, kp *KeyPackage, ch *Challenge) (*Registration, error) {
	r := &Registration{
		Nonce:      ch.Nonce,
		SigningKey: device.Public().(ed25519.PublicKey),
		KeyPackage: kp.Bytes(),
	}
	tbs, err := r.proofTBS(ch.Room, ch.Instance)
	if err != nil {
		return nil, err
	}
	r.Signature = sign(device, labelRegistration, tbs)
	return r, nil
}

// verifyProof checks the proof of possession for this room and instance.
func (r *Registration) verifyProof(room, instance string) error {
	tbs, err := r.proofTBS(room, instance)
	if err != nil {
		return err
	}
	if !verify(r.SigningKey, labelRegistration, tbs, r.Signature) {
		return fmt.Errorf("%w: registration proof of possession", ErrBadSignature)
	}
	return nil
}

// Marshal encodes the registration for the gateway.
func (r *Registration) Marshal() ([]byte, error) {
	if len(r.SigningKey) != ed25519.PublicKeySize {
		return nil, malformed("registration", "signing_key", "want %d bytes", ed25519.PublicKeySize)
	}
	if len(r.KeyPackage) == 0 || len(r.KeyPackage) > 1<<16-1 {
		return nil, malformed("registration", "key_package", "length %d", len(r.KeyPackage))
	}
	if len(r.Signature) != ed25519.SignatureSize {
		return nil, malformed("registration", "signature", "want %d bytes", ed25519.SignatureSize)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	b.AddBytes(r.Nonce[:])
	b.AddBytes(r.SigningKey)
	addBytes16(b, r.KeyPackage)
	b.AddBytes(r.Signature)
	return finish("registration", b)
}

// ParseRegistration parses a client's registration strictly. The gateway calls it on the request body; the
// key package and the proof are checked by Authority.Register.
func ParseRegistration(b []byte) (*Registration, error) {
	p := newParser("registration", b)
	p.version()
	r := &Registration{}
	copy(r.Nonce[:], p.fixed("nonce", 32))
	r.SigningKey = bytes.Clone(p.fixed("signing_key", ed25519.PublicKeySize))
	r.KeyPackage = bytes.Clone(p.bytes16("key_package", 1, 1<<16-1))
	r.Signature = bytes.Clone(p.fixed("signature", ed25519.SignatureSize))
	if err := p.end(); err != nil {
		return nil, err
	}
	return r, nil
}
