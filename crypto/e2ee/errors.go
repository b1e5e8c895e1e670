package e2ee

import (
	"errors"
	"fmt"
)

// Errors of malformed or refused input, shared by the Authority and the Client. docs/e2ee.md section 11 maps
// them to HTTP statuses.
var (
	ErrMalformed          = errors.New("e2ee: malformed message")
	ErrBadSignature       = errors.New("e2ee: bad signature")
	ErrContextMismatch    = errors.New("e2ee: message for another room or meeting instance")
	ErrUnsupportedKEM     = errors.New("e2ee: unsupported KEM")
	ErrKEMNotAllowed      = errors.New("e2ee: classic KEM not allowed in this room")
	ErrNonce              = errors.New("e2ee: nonce unknown, used, expired or issued to someone else")
	ErrWrongSender        = errors.New("e2ee: bundle sender is not the caller")
	ErrNotMember          = errors.New("e2ee: not a member of the epoch")
	ErrUnknownCredential  = errors.New("e2ee: unknown credential")
	ErrUnknownEpoch       = errors.New("e2ee: unknown epoch")
	ErrNoRoster           = errors.New("e2ee: no roster yet")
	ErrStaleEpoch         = errors.New("e2ee: epoch is no longer current")
	ErrLocked             = errors.New("e2ee: room is locked")
	ErrConflict           = errors.New("e2ee: concurrent roster change")
	ErrRoomFull           = errors.New("e2ee: room is full")
	ErrReplay             = errors.New("e2ee: replay")
	ErrFork               = errors.New("e2ee: roster fork")
	ErrGap                = errors.New("e2ee: roster gap")
	ErrLockedRoster       = errors.New("e2ee: locked roster gained a member")
	ErrCredentialMismatch = errors.New("e2ee: roster member without a matching credential")
	ErrCredentialExpired  = errors.New("e2ee: credential expired")
	ErrImpersonation      = errors.New("e2ee: another device holds this identity")
	ErrClone              = errors.New("e2ee: two roster entries share a device key")
	ErrIdentityMismatch   = errors.New("e2ee: identity is not the expected one")
	ErrRateLimited        = errors.New("e2ee: too many posts")
	ErrStaleKeyPackage    = errors.New("e2ee: key package superseded")
	ErrUndecryptable      = errors.New("e2ee: sealed key does not open")
)

// Client states that callers branch on.
var (
	// ErrAlarm matches every *AlarmError: evidence that the gateway deviated from the protocol.
	ErrAlarm = errors.New("e2ee: alarm")
	// ErrHalted is returned by every call on a client that raised an alarm; it wraps that alarm too.
	ErrHalted = errors.New("e2ee: client halted")
	// ErrRemoved is returned once the client's credential left the roster.
	ErrRemoved = errors.New("e2ee: removed from the meeting")
	// ErrNotRegistered is returned before Register succeeded.
	ErrNotRegistered = errors.New("e2ee: not registered")
	// ErrNoKey is returned when no live SFrame key exists for a request.
	ErrNoKey = errors.New("e2ee: no key")
)

// AlarmError is what a client raises when gateway-relayed material proves the gateway deviated from the
// protocol. errors.Is matches both ErrAlarm and Kind (ErrFork, ErrGap, ErrReplay, ...).
type AlarmError struct {
	Kind   error  // the sentinel naming the deviation
	Epoch  uint64 // the epoch concerned
	Member Hash   // the credential concerned, zero if none
	Detail string
}

func (e *AlarmError) Error() string {
	s := fmt.Sprintf("%v at epoch %d", e.Kind, e.Epoch)
	if !e.Member.IsZero() {
		s += " member " + e.Member.Short()
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return "alarm: " + s
}

// Unwrap lets errors.Is match the kind and ErrAlarm.
func (e *AlarmError) Unwrap() []error { return []error{e.Kind, ErrAlarm} }

func alarm(kind error, epoch uint64, member Hash, format string, args ...any) *AlarmError {
	return &AlarmError{Kind: kind, Epoch: epoch, Member: member, Detail: fmt.Sprintf(format, args...)}
}

func malformed(what, field, format string, args ...any) error {
	return fmt.Errorf("%w: %s.%s: %s", ErrMalformed, what, field, fmt.Sprintf(format, args...))
}
