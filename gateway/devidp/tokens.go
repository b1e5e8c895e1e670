package devidp

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// claims is the payload of both token kinds; fields that do not apply to one
// kind are left empty and omitted.
type claims struct {
	jwt.Claims
	AuthTime      int64    `json:"auth_time"`
	AZP           string   `json:"azp,omitempty"`
	ClientID      string   `json:"client_id,omitempty"` // access tokens (RFC 9068)
	Scope         string   `json:"scope,omitempty"`     // access tokens
	Nonce         string   `json:"nonce,omitempty"`     // ID tokens
	AtHash        string   `json:"at_hash,omitempty"`   // ID tokens
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups"`
	ACR           string   `json:"acr,omitempty"`
	AMR           []string `json:"amr,omitempty"`
}

// tokenSet is a token endpoint response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
type tokenSet struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

var errBadToken = errors.New("token is not valid")

// mint signs an access token and an ID token for g. nonce is only set in
// ID tokens answering an authorization code.
func (p *Provider) mint(g grant, u User, now time.Time) (tokenSet, error) {
	exp := now.Add(p.tokenTTL)
	base := claims{
		Claims: jwt.Claims{
			Issuer:   p.issuer,
			Subject:  u.Subject,
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
		},
		AuthTime:      g.authTime.Unix(),
		AZP:           g.clientID,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Name:          u.Name,
		Groups:        append([]string{}, u.Groups...), // never null
		ACR:           u.ACR,
		AMR:           u.AMR,
	}

	at := base
	at.ID = randomToken()[:22]
	at.Audience = append(jwt.Audience{g.clientID}, g.audience...)
	at.NotBefore = jwt.NewNumericDate(now)
	at.ClientID = g.clientID
	at.Scope = strings.Join(g.scopes, " ")
	access, err := jwt.Signed(p.atSigner).Claims(at).Serialize()
	if err != nil {
		return tokenSet{}, fmt.Errorf("signing access token: %w", err)
	}

	id := base
	id.Audience = jwt.Audience{g.clientID}
	id.Nonce = g.nonce
	id.AtHash = halfHash(access)
	idToken, err := jwt.Signed(p.idSigner).Claims(id).Serialize()
	if err != nil {
		return tokenSet{}, fmt.Errorf("signing id token: %w", err)
	}
	return tokenSet{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(p.tokenTTL / time.Second),
		IDToken:     idToken,
		Scope:       at.Scope,
	}, nil
}

// halfHash is the at_hash of OIDC Core §3.1.3.6 for a SHA-256 based alg.
func halfHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// parseOwn verifies a token this provider signed: our key, our issuer and the
// expected "typ", so that an ID token is never accepted as an access token.
// Expiry is checked only when checkExpiry is set (an expired id_token_hint is
// still a fine hint at logout).
func (p *Provider) parseOwn(raw, typ string, checkExpiry bool) (claims, error) {
	var c claims
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{signingAlg})
	if err != nil {
		return c, fmt.Errorf("%w: %w", errBadToken, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID != p.kid {
		return c, fmt.Errorf("%w: unknown key", errBadToken)
	}
	if got, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(got, typ) {
		return c, fmt.Errorf("%w: typ %q, want %q", errBadToken, got, typ)
	}
	if err := tok.Claims(&p.key.PublicKey, &c); err != nil {
		return c, fmt.Errorf("%w: %w", errBadToken, err)
	}
	if c.Issuer != p.issuer {
		return c, fmt.Errorf("%w: %w", errBadToken, jwt.ErrInvalidIssuer)
	}
	if checkExpiry {
		if c.Expiry == nil {
			return c, fmt.Errorf("%w: no exp", errBadToken)
		}
		if err := c.ValidateWithLeeway(jwt.Expected{Time: p.now()}, 0); err != nil {
			return c, fmt.Errorf("%w: %w", errBadToken, err)
		}
	}
	return c, nil
}

func (p *Provider) userBySubject(sub string) (User, bool) {
	for _, u := range p.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}

// userByName finds a user by subject or, case-insensitively, by email.
func (p *Provider) userByName(name string) (User, bool) {
	for _, u := range p.users {
		if u.Subject == name || strings.EqualFold(u.Email, name) {
			return u, true
		}
	}
	return User{}, false
}
