package e2ee

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
)

// Identity is who the gateway authenticated: the OIDC issuer and subject. It never comes from the client.
type Identity struct {
	Issuer  string
	Subject string
}

// String is "subject (issuer)", for messages.
func (id Identity) String() string { return fmt.Sprintf("%q (%s)", id.Subject, id.Issuer) }

// Matches reports whether id is the expected identity; an empty expected issuer matches any issuer.
func (id Identity) Matches(expected Identity) bool {
	return id.Subject == expected.Subject && (expected.Issuer == "" || id.Issuer == expected.Issuer)
}

func (id Identity) validate() error {
	if err := checkText("identity", "issuer", id.Issuer, 1, maxIssuer); err != nil {
		return err
	}
	return checkText("identity", "subject", id.Subject, 1, maxSubject)
}

// Role is the admission role the policy granted.
type Role uint8

// Roles as the policy names them (host | participant | viewer).
const (
	RoleHost        Role = 1
	RoleParticipant Role = 2
	RoleViewer      Role = 3
)

// ParseRole maps a policy role name to a Role.
func ParseRole(s string) (Role, error) {
	switch s {
	case "host":
		return RoleHost, nil
	case "participant":
		return RoleParticipant, nil
	case "viewer":
		return RoleViewer, nil
	}
	return 0, malformed("role", "name", "unknown role %q", s)
}

func (r Role) String() string {
	switch r {
	case RoleHost:
		return "host"
	case RoleParticipant:
		return "participant"
	case RoleViewer:
		return "viewer"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

func (r Role) valid() bool { return r >= RoleHost && r <= RoleViewer }

// KEM is the HPKE KEM identifier of a member's key-encapsulation key.
type KEM uint16

// The KEMs a credential may carry. X-Wing is the default; X25519 only where the room's policy allows classic KEM.
const (
	KEMXWing  KEM = 0x647a // MLKEM768-X25519, draft-ietf-hpke-pq
	KEMX25519 KEM = 0x0020 // DHKEM(X25519, HKDF-SHA256), RFC 9180
)

func (k KEM) String() string {
	switch k {
	case KEMXWing:
		return "X-Wing"
	case KEMX25519:
		return "X25519"
	}
	return fmt.Sprintf("kem(%#04x)", uint16(k))
}

// hpkeKEM returns the HPKE implementation of k.
func (k KEM) hpkeKEM() (hpke.KEM, error) {
	switch k {
	case KEMXWing:
		return hpke.MLKEM768X25519(), nil
	case KEMX25519:
		return hpke.DHKEM(ecdh.X25519()), nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedKEM, k)
}

// publicKey parses a serialised KEM public key, refusing anything HPKE would not accept.
func (k KEM) publicKey(b []byte) (hpke.PublicKey, error) {
	kem, err := k.hpkeKEM()
	if err != nil {
		return nil, err
	}
	pk, err := kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v key: %v", ErrMalformed, k, err)
	}
	return pk, nil
}

// The HPKE suite around the KEM is fixed by the protocol version.
func hpkeKDF() hpke.KDF   { return hpke.HKDFSHA256() }
func hpkeAEAD() hpke.AEAD { return hpke.AES128GCM() }
