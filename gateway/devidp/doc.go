// Package devidp is a small OpenID Connect provider for `meetguard dev` and
// for tests: authorization code flow with mandatory PKCE S256, refresh tokens
// with rotation and reuse detection, JWT access tokens, a JWKS, userinfo and
// RP-initiated logout. It is real enough that the gateway's production OIDC
// code (go-oidc and x/oauth2) runs against it unchanged.
//
// It also serves a non-interactive endpoint, POST {issuer}/dev/token, that
// mints tokens for any demo user without a password so that scripts can call
// the gateway. Anyone who can reach it can therefore become anyone: the
// provider must never be served on anything but a loopback address and must
// never be used as a production identity provider. It keeps all state in
// memory and generates its signing key at start, so every restart logs
// everyone out.
package devidp
