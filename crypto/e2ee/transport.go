package e2ee

import (
	"context"
	"sync"
)

// Transport carries a client's calls to its gateway. Every payload is a binary message of docs/e2ee.md; the
// gateway authenticates the session, so no call names the caller. An HTTP implementation maps each method to
// the endpoint in docs/e2ee.md section 11 and gateway errors back to this package's sentinels (at least
// ErrNotMember and ErrNoRoster for Roster, which a waiting client expects).
type Transport interface {
	// Challenge asks for a registration nonce (a Challenge).
	Challenge(ctx context.Context) ([]byte, error)
	// Register sends a Registration and returns the signed Credential.
	Register(ctx context.Context, registration []byte) ([]byte, error)
	// Roster returns the RosterUpdate after epoch since (0: the head).
	Roster(ctx context.Context, since uint64) ([]byte, error)
	// PostKeyPackage publishes the caller's fresh KeyPackage.
	PostKeyPackage(ctx context.Context, keyPackage []byte) error
	// KeyPackages returns every member's newest KeyPackage for epoch (the head), in roster order.
	KeyPackages(ctx context.Context, epoch uint64) ([]byte, error)
	// PostCommit sends the caller's Commit for epoch.
	PostCommit(ctx context.Context, epoch uint64, commit []byte) error
	// SealedKeys returns the caller's SealedSecrets for epoch: the newest commit's secret sealed to it, if any.
	SealedKeys(ctx context.Context, epoch uint64) ([]byte, error)
	// Wait returns once the gateway's change counter exceeds after, or when ctx ends.
	Wait(ctx context.Context, after uint64) (uint64, error)
}

// LocalTransport connects a client to an Authority in the same process, standing in for an authenticated
// HTTP session: it carries one identity and remembers the credential registered through it. It does not admit
// anyone; the caller plays the gateway's room logic and calls Authority.Admit. A member that registers again
// with a credential that renews its own is renewed in the roster (Authority.Renew), as the gateway does.
type LocalTransport struct {
	authority   *Authority
	identity    Identity
	displayName string
	role        Role

	mu   sync.Mutex
	cred Hash
}

// NewLocalTransport returns a transport for a session of id in a's room.
func NewLocalTransport(a *Authority, id Identity, displayName string, role Role) *LocalTransport {
	return &LocalTransport{authority: a, identity: id, displayName: displayName, role: role}
}

// Credential returns the hash of the credential registered through this transport, as a gateway session
// would remember it.
func (t *LocalTransport) Credential() Hash {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cred
}

// Challenge implements Transport.
func (t *LocalTransport) Challenge(ctx context.Context) ([]byte, error) {
	ch, err := t.authority.IssueNonce(ctx, t.identity)
	if err != nil {
		return nil, err
	}
	return ch.Marshal()
}

// Register implements Transport.
func (t *LocalTransport) Register(ctx context.Context, registration []byte) ([]byte, error) {
	r, err := ParseRegistration(registration)
	if err != nil {
		return nil, err
	}
	cred, err := t.authority.Register(ctx, RegisterRequest{Identity: t.identity, DisplayName: t.displayName, Role: t.role, Registration: r})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A member registering its device again renews its credential in one epoch, as the gateway does.
	if head := t.authority.Head(); !t.cred.IsZero() && head != nil && head.Has(t.cred) {
		old, err := t.authority.credential(ctx, t.cred)
		if err != nil {
			return nil, err
		}
		if cred.Renews(old) {
			if _, err := t.authority.Renew(ctx, t.cred, cred.Hash()); err != nil {
				return nil, err
			}
		}
	}
	t.cred = cred.Hash()
	return cred.Bytes(), nil
}

// Roster implements Transport.
func (t *LocalTransport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	return t.authority.Roster(ctx, t.Credential(), since)
}

// PostKeyPackage implements Transport.
func (t *LocalTransport) PostKeyPackage(ctx context.Context, keyPackage []byte) error {
	return t.authority.PostKeyPackage(ctx, t.Credential(), keyPackage)
}

// KeyPackages implements Transport.
func (t *LocalTransport) KeyPackages(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.authority.KeyPackages(ctx, t.Credential(), epoch)
}

// PostCommit implements Transport.
func (t *LocalTransport) PostCommit(ctx context.Context, epoch uint64, commit []byte) error {
	return t.authority.PostCommit(ctx, t.Credential(), epoch, commit)
}

// SealedKeys implements Transport.
func (t *LocalTransport) SealedKeys(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.authority.SealedFor(ctx, t.Credential(), epoch)
}

// Wait implements Transport.
func (t *LocalTransport) Wait(ctx context.Context, after uint64) (uint64, error) {
	return t.authority.Wait(ctx, after)
}
