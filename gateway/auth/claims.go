package auth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/session"
)

// subjectOf is the person's stable identifier in a token's claims: sub, or
// the configured subject claim (Options.SubjectClaim), so that the ID token
// of a browser login and an app's access token name the same person even
// when the provider gives each its own sub. A token without it is refused.
func (a *Authenticator) subjectOf(c map[string]any) (string, error) {
	name := a.opts.SubjectClaim
	if name == "" {
		name = "sub"
	}
	sub := str(c[name])
	if sub == "" {
		return "", fmt.Errorf("%w: no %s claim", ErrInvalidToken, name)
	}
	return sub, nil
}

// claimBool reads a boolean claim the way every path must (ID token,
// bearer token, userinfo): JSON true, or the string "true" that some
// providers send, exactly as go-oidc reads userinfo's email_verified.
// Anything else is false.
func claimBool(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// checkBearerClient enforces Options.BearerClients: when set, a bearer
// token must name one of those clients as the client it was issued to, so
// that another client which can obtain a token for the accepted audience
// (and supply groups, amr or acr through its own claim mappers) is refused.
// The client is the first present of azp (OIDC), client_id (RFC 9068), cid
// (Okta) and appid (Entra ID v1); a later claim never overrides an earlier
// one, so a token cannot name a listed client in a second claim.
func (a *Authenticator) checkBearerClient(c map[string]any) error {
	if len(a.opts.BearerClients) == 0 {
		return nil
	}
	client := ""
	for _, name := range []string{"azp", "client_id", "cid", "appid"} {
		if _, ok := c[name]; ok {
			client = str(c[name])
			break
		}
	}
	if client == "" || !slices.Contains(a.opts.BearerClients, client) {
		return fmt.Errorf("%w: bearer client %q not accepted", ErrInvalidToken, truncate(client, 64))
	}
	return nil
}

// sessionIdentity is the one way a browser session's identity is derived
// from the provider's answer, at login and on every refresh: the ID token's
// claims and, when it carries no email, the userinfo endpoint's (some
// providers put profile claims only there).
func (a *Authenticator) sessionIdentity(ctx context.Context, st *providerState, tok *oauth2.Token, idt *oidc.IDToken) (identity.Identity, error) {
	id, err := a.identityFrom(idt, identity.ViaSession)
	if err != nil {
		return identity.Identity{}, err
	}
	if id.Email == "" {
		if err := a.mergeUserInfo(ctx, st, tok, idt.Subject, &id); err != nil {
			a.opts.Logger.Info("userinfo unavailable; continuing with id token claims", zap.Error(err))
		}
	}
	return id, nil
}

// checkGroupsOverage refuses a token whose groups did not fit: Entra ID
// then leaves the groups claim out and names it in _claim_names (or sets
// hasgroups), pointing at Microsoft Graph. Reading that as "no groups"
// would silently make hosts guests; resolving it through Graph is not
// supported, so the caller is refused with the reason.
func (a *Authenticator) checkGroupsOverage(c map[string]any) error {
	if _, ok := c[a.opts.GroupsClaim]; ok {
		return nil
	}
	names, _ := c["_claim_names"].(map[string]any)
	if _, ok := names[a.opts.GroupsClaim]; ok || claimBool(c["hasgroups"]) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, ErrGroupsOverage)
	}
	return nil
}

// claimsStale reports whether s's claims are older than MaxClaimAge.
func (a *Authenticator) claimsStale(s session.Session, now time.Time) bool {
	if a.opts.MaxClaimAge <= 0 {
		return false
	}
	at := s.ClaimsAt
	if at.IsZero() {
		at = s.Created
	}
	return now.Sub(at) > a.opts.MaxClaimAge
}
