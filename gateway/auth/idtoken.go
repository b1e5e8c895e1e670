package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// notAnAccessToken refuses a verified JWT that is an ID token, or that is
// not marked as an access token when the provider marks them. An ID token
// proves a login to the client that asked for it; it is not a credential
// for an API. It travels where access tokens never do (the RP-initiated
// logout URL as id_token_hint: browser history, the provider's logs,
// Referer), and it outlives the session it came from. Its audience is the
// client ID, which oidc.audiences accepts by default, so without this
// check any ID token of the gateway's own client works as a bearer token.
//
// ID tokens are recognised by what only they carry: nonce (OIDC Core
// §2, sent by every login of this gateway), at_hash and c_hash (§3.1.3.6,
// §3.3.2.11), and Keycloak's typ claim "ID". requiredTyp, when set (the
// provider types its access tokens, RFC 9068 "at+jwt"), must be the JWS
// header's typ.
func notAnAccessToken(raw string, idt *oidc.IDToken, requiredTyp string) error {
	var c struct {
		Nonce  *string `json:"nonce"`
		AtHash *string `json:"at_hash"`
		CHash  *string `json:"c_hash"`
		Typ    any     `json:"typ"`
	}
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	switch {
	case c.Nonce != nil:
		return fmt.Errorf("%w: an ID token (nonce claim) is not a bearer credential", ErrInvalidToken)
	case c.AtHash != nil || c.CHash != nil:
		return fmt.Errorf("%w: an ID token (at_hash/c_hash claim) is not a bearer credential", ErrInvalidToken)
	case c.Typ == "ID":
		return fmt.Errorf("%w: an ID token (typ claim ID) is not a bearer credential", ErrInvalidToken)
	}
	if requiredTyp == "" {
		return nil
	}
	if typ := jwsType(raw); !sameMediaType(typ, requiredTyp) {
		return fmt.Errorf("%w: token type %q, want %q (oidc.access_token_type)", ErrInvalidToken, typ, requiredTyp)
	}
	return nil
}

// jwsType is the typ of a compact JWS's protected header ("" if none).
// The token was verified before this is called.
func jwsType(raw string) string {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Typ
}

// sameMediaType compares JWS typ values as RFC 7515 §4.1.9 says: case
// does not matter and "application/" may be left out.
func sameMediaType(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		return strings.TrimPrefix(s, "application/")
	}
	return a != "" && norm(a) == norm(b)
}
