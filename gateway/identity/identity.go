// Package identity defines who a caller is once the gateway has verified it.
//
// An Identity is built only from verified tokens (an ID token at login, a
// bearer access token for apps); nothing a client sends in a header or a body
// ever becomes part of one.
package identity

import (
	"context"
	"time"
)

// Via says how an identity was proved.
type Via string

const (
	// ViaSession is a browser with a session cookie from an OIDC login.
	ViaSession Via = "session"
	// ViaBearer is an app presenting a bearer JWT.
	ViaBearer Via = "bearer"
)

// Identity is a verified caller.
type Identity struct {
	Issuer        string    `json:"iss"`
	Subject       string    `json:"sub"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	ACR           string    `json:"acr,omitempty"`
	AMR           []string  `json:"amr,omitempty"`
	AuthTime      time.Time `json:"auth_time,omitzero"`
	Via           Via       `json:"via"`
	// SessionID is the server-side session that carries this identity, or
	// for bearer callers a stable hash of the token, so tickets and live
	// connections can be bound to one login.
	SessionID string `json:"-"`
}

// Key is the stable name of a person across sessions, tokens and gateway
// nodes: bans and rate limits key on it, so a new login does not escape them.
func (i Identity) Key() string {
	return i.Issuer + "|" + i.Subject
}

// DisplayName is what other participants see.
func (i Identity) DisplayName() string {
	switch {
	case i.Name != "":
		return i.Name
	case i.Email != "":
		return i.Email
	default:
		return i.Subject
	}
}

type ctxKey struct{}

// With returns ctx carrying a verified identity, for handlers behind the
// gateway's authentication.
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the verified identity the gateway stored, if any.
func From(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
