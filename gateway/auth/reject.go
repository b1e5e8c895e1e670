package auth

import (
	"errors"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Reasons a bearer token was refused, as RejectReason names them (the
// auth.rejected audit record's reason).
const (
	RejectMalformed     = "malformed"      // not a bearer JWT: bad header, encoding, too large, unsigned
	RejectBadSignature  = "bad_signature"  // a known key does not verify it (forgery), or a refused algorithm
	RejectUnknownKey    = "unknown_key"    // signed by a key the provider does not publish
	RejectExpired       = "expired"        // past exp
	RejectNotYetValid   = "not_yet_valid"  // before nbf/iat
	RejectWrongAudience = "wrong_audience" // for another client
	RejectWrongIssuer   = "wrong_issuer"   // from another provider
	RejectInvalid       = "invalid"        // anything else (bad claims)
)

// RejectReason says why err, an ErrInvalidToken from Authenticate or
// VerifyBearer, refused a bearer token. go-oidc reports most failures as
// text only, so its messages are matched as a fallback to the typed errors.
func RejectReason(err error) string {
	var expired *oidc.TokenExpiredError
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case errors.As(err, &expired):
		return RejectExpired
	case strings.Contains(msg, errUnknownKey.Error()):
		return RejectUnknownKey
	case strings.Contains(msg, errBadSignature.Error()), strings.Contains(msg, "unexpected signature algorithm"):
		return RejectBadSignature
	case strings.Contains(msg, "audience"):
		return RejectWrongAudience
	case strings.Contains(msg, "issued by a different provider"):
		return RejectWrongIssuer
	case strings.Contains(msg, "nbf") || strings.Contains(msg, "not valid before") || strings.Contains(msg, "issued in the future"):
		return RejectNotYetValid
	case strings.Contains(msg, "malformed") || strings.Contains(msg, "not a bearer token") || strings.Contains(msg, "too large") ||
		strings.Contains(msg, "not signed") || strings.Contains(msg, "signatures") || strings.Contains(msg, "failed to unmarshal claims"):
		return RejectMalformed
	}
	return RejectInvalid
}
