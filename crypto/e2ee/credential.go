package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Credential is the gateway's signed statement that a device's signing key belongs to an identity in one
// meeting (docs/e2ee.md section 4.3). It certifies nothing else: the device's KEM keys travel in key packages the
// device signs itself, so the gateway cannot substitute them. Like x509.Certificate, its fields are parsed from
// its encoding; verification and hashing use the encoding, never the fields.
type Credential struct {
	Room        string
	Instance    string
	Identity    Identity
	DisplayName string
	Role        Role
	SigningKey  ed25519.PublicKey
	NotAfter    time.Time

	raw  []byte // Credential: tbs<u16> || signature
	tbs  []byte
	sig  []byte
	hash Hash
}

func (c *Credential) encodeTBS() ([]byte, error) {
	const what = "credential"
	if err := checkText(what, "room", c.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if err := checkText(what, "instance", c.Instance, 1, maxInstance); err != nil {
		return nil, err
	}
	if err := c.Identity.validate(); err != nil {
		return nil, err
	}
	if err := checkText(what, "display_name", c.DisplayName, 0, maxDisplayName); err != nil {
		return nil, err
	}
	if !c.Role.valid() {
		return nil, malformed(what, "role", "unknown role %d", c.Role)
	}
	if len(c.SigningKey) != ed25519.PublicKeySize {
		return nil, malformed(what, "signing_key", "want %d bytes, got %d", ed25519.PublicKeySize, len(c.SigningKey))
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(wireVersion)
	addString16(b, c.Room)
	addString16(b, c.Instance)
	addString16(b, c.Identity.Issuer)
	addString16(b, c.Identity.Subject)
	addString16(b, c.DisplayName)
	b.AddUint8(uint8(c.Role))
	b.AddBytes(c.SigningKey)
	b.AddUint64(unixSeconds(c.NotAfter))
	return finish(what, b)
}

// issueCredential signs c with the authority key and returns the parsed result.
func issueCredential(key ed25519.PrivateKey, c *Credential) (*Credential, error) {
	tbs, err := c.encodeTBS()
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	addBytes16(b, tbs)
	b.AddBytes(sign(key, labelCredential, tbs))
	raw, err := finish("credential", b)
	if err != nil {
		return nil, err
	}
	return ParseCredential(raw)
}

// ParseCredential parses a signed credential strictly. It does not verify the signature: call Verify.
func ParseCredential(b []byte) (*Credential, error) {
	outer := newParser("credential", b)
	tbs := outer.bytes16("tbs", 1, 1<<16-1)
	outer.fixed("signature", ed25519.SignatureSize)
	if err := outer.end(); err != nil {
		return nil, err
	}
	p := newParser("credential", tbs)
	p.version()
	c := &Credential{
		Room:        p.text("room", 1, maxRoom),
		Instance:    p.text("instance", 1, maxInstance),
		Identity:    Identity{Issuer: p.text("issuer", 1, maxIssuer), Subject: p.text("subject", 1, maxSubject)},
		DisplayName: p.text("display_name", 0, maxDisplayName),
	}
	c.Role = Role(p.u8("role"))
	if p.ok() && !c.Role.valid() {
		p.fail("role", "unknown role %d", c.Role)
	}
	c.SigningKey = bytes.Clone(p.fixed("signing_key", ed25519.PublicKeySize))
	c.NotAfter = p.unixSeconds("not_after")
	if err := p.end(); err != nil {
		return nil, err
	}
	c.raw = bytes.Clone(b)
	c.tbs = c.raw[2 : 2+len(tbs)]
	c.sig = c.raw[2+len(tbs):]
	c.hash = digest(labelCredential, c.tbs)
	return c, nil
}

// Bytes returns the signed encoding.
func (c *Credential) Bytes() []byte { return bytes.Clone(c.raw) }

// Hash is the credential hash that rosters list and HPKE info binds.
func (c *Credential) Hash() Hash { return c.hash }

// Verify checks the authority's signature.
func (c *Credential) Verify(authority ed25519.PublicKey) error {
	if !verify(authority, labelCredential, c.tbs, c.sig) {
		return fmt.Errorf("%w: credential %s", ErrBadSignature, c.hash.Short())
	}
	return nil
}

// Fingerprint is the short, stable name of the credential's device key that a roster view shows next to each
// device: 64 bits of SHA-256 over the signing key, as four groups of four hex digits.
func (c *Credential) Fingerprint() string { return DeviceFingerprint(c.SigningKey) }

// DeviceFingerprint is Fingerprint for a bare Ed25519 device key.
func DeviceFingerprint(key ed25519.PublicKey) string {
	d := sha256.Sum256(labelled(labelDevice, key))
	h := hex.EncodeToString(d[:8])
	return h[0:4] + "-" + h[4:8] + "-" + h[8:12] + "-" + h[12:16]
}
