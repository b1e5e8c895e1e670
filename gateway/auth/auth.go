// Package auth proves who a caller is with OpenID Connect: browser login
// (authorization code with PKCE, server-side sessions behind an encrypted
// cookie) and bearer JWTs for apps.
//
// It must never accept an identity it did not verify itself, never redirect
// a browser off its own origin, and never write a token or cookie to a log.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/session"
)

// Errors callers branch on. Each means "not authenticated"; the HTTP edge
// decides what the person is told.
var (
	ErrNoCredentials       = errors.New("no credentials")
	ErrInvalidToken        = errors.New("invalid token")
	ErrSessionEnded        = errors.New("session ended")
	ErrProviderUnavailable = errors.New("identity provider unavailable")
	// ErrGroupsOverage: the token says the person's groups did not fit in
	// it (Entra ID's _claim_names), so the groups it carries are not all.
	ErrGroupsOverage = errors.New("groups overage: the token does not carry all the person's groups")
)

// Auditor records security events; the audit log implements it.
type Auditor interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
}

// Options configures an Authenticator.
type Options struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Audiences accepted in bearer tokens.
	Audiences []string
	// AccessTokenType, when set (e.g. "at+jwt", RFC 9068), is the JWS
	// header typ every bearer token must carry. ID tokens are refused
	// either way (notAnAccessToken).
	AccessTokenType string
	GroupsClaim     string
	// SubjectClaim names the claim that identifies a person in ID and
	// bearer tokens alike; "" means sub.
	SubjectClaim string
	// BearerClients, when not empty, are the only clients (azp,
	// client_id, cid or appid: see checkBearerClient) whose bearer tokens
	// are accepted.
	BearerClients []string
	// PublicURL is the gateway's own origin; callback and logout URLs hang
	// off it, and https there means Secure, __Host- cookies.
	PublicURL *url.URL
	// HTTPClient talks to the provider; it must have timeouts.
	HTTPClient         *http.Client
	KeyRefetchInterval time.Duration
	SessionTTL         time.Duration
	// MaxClaimAge is the oldest a session's claims may be before a refresh
	// must renew them; a session that cannot renew them ends. 0 = no limit.
	MaxClaimAge time.Duration
	Store       session.Store
	// SharedStore says Store is shared by every node (Redis). A callback
	// then also claims its login state in Store once the code exchange has
	// succeeded, so a callback replayed on another node is refused; the
	// per-node replay set cannot see that node's claims. Claiming after the
	// exchange keeps anonymous callbacks from writing to the shared store.
	SharedStore bool
	Codec       *session.Codec
	Logger      *zap.Logger
	Audit       Auditor
	// OnLogout is told which session ended so live connections can be cut.
	OnLogout func(sessionID string)
	// OnProviderFailure is told of each failed call to the provider:
	// "discovery", "jwks" or "refresh" (metrics). Optional.
	OnProviderFailure func(op string)
	Clock             func() time.Time
}

// Authenticator holds the long-lived provider state. It becomes ready once
// discovery succeeds; until then every request fails closed.
type Authenticator struct {
	opts          Options
	cookieName    string
	loginCookie   string
	secureCookies bool

	mu        sync.RWMutex
	ready     *providerState
	lastError error

	refreshMu sync.Mutex
	refreshes map[string]*refreshCall

	// verified caches bearer tokens already verified, keyed by their hash,
	// until they expire: apps send the same token on every request and an
	// RSA verification costs more than the rest of the proxy path.
	verifiedMu sync.Mutex
	verified   map[[32]byte]verifiedToken
	// verifiedSweepAt is the size at which expired tokens are next
	// dropped: twice what the last sweep left, so sweeping costs O(1) per
	// token and the cache holds at most about twice the tokens still
	// valid, not every token seen until verifiedMax. It never exceeds
	// verifiedMax, so the cache is swept before it is ever cleared.
	verifiedSweepAt int
	// verifiedMax bounds the cache (maxVerifiedTokens; smaller in tests).
	verifiedMax int

	// replays holds the states of callbacks already taken (loginstate.go).
	replays *replaySet
}

type verifiedToken struct {
	id      identity.Identity
	expires time.Time
}

// maxReplayStates bounds the callback replay set: about 5 MiB at most.
const maxReplayStates = 100_000

// maxVerifiedTokens bounds the cache; beyond it the cache starts over.
const maxVerifiedTokens = 100_000

// minVerifiedSweep is the smallest cache size that is swept for expired
// tokens.
const minVerifiedSweep = 256

type providerState struct {
	provider   *oidc.Provider
	oauth      oauth2.Config
	idVerifier *oidc.IDTokenVerifier
	bearer     *oidc.IDTokenVerifier
	endSession string
	keys       *keySet
}

type refreshCall struct {
	done chan struct{}
	sess session.Session
	err  error
}

// New returns an Authenticator and starts provider discovery, retried with
// backoff until ctx ends. Use Ready to know when it can authenticate.
func New(ctx context.Context, opts Options) (*Authenticator, error) {
	if opts.PublicURL == nil || opts.Store == nil || opts.Codec == nil || opts.HTTPClient == nil {
		return nil, errors.New("auth: PublicURL, Store, Codec and HTTPClient are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = "groups"
	}
	a := &Authenticator{opts: opts, refreshes: map[string]*refreshCall{}, verified: map[[32]byte]verifiedToken{}, verifiedMax: maxVerifiedTokens, lastError: errors.New("discovery has not completed"),
		replays: newReplaySet(maxReplayStates)}
	a.secureCookies = opts.PublicURL.Scheme == "https"
	if a.secureCookies {
		a.cookieName, a.loginCookie = "__Host-meetguard", "__Host-meetguard-login"
	} else {
		a.cookieName, a.loginCookie = "meetguard", "meetguard-login"
	}
	go a.discoverLoop(ctx)
	return a, nil
}

// CookieName is the session cookie's name, which the proxy strips.
func (a *Authenticator) CookieName() string { return a.cookieName }

// Ready reports nil once the provider's discovery document and keys are
// loaded.
func (a *Authenticator) Ready() error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.ready == nil {
		return fmt.Errorf("%w: %v", ErrProviderUnavailable, a.lastError)
	}
	return nil
}

func (a *Authenticator) state() (*providerState, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.ready == nil {
		return nil, fmt.Errorf("%w: %v", ErrProviderUnavailable, a.lastError)
	}
	return a.ready, nil
}

func (a *Authenticator) discoverLoop(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		st, err := a.discover(ctx)
		if err == nil {
			a.mu.Lock()
			a.ready, a.lastError = st, nil
			a.mu.Unlock()
			a.opts.Logger.Info("oidc provider ready", zap.String("issuer", a.opts.Issuer))
			return
		}
		a.mu.Lock()
		a.lastError = err
		a.mu.Unlock()
		a.providerFailure("discovery")
		a.opts.Logger.Warn("oidc discovery failed; retrying", zap.String("issuer", a.opts.Issuer), zap.Error(err), zap.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// asymmetricAlgs are the only algorithms ever accepted: a symmetric one
// would let anyone holding the provider's public key mint tokens.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (a *Authenticator) discover(ctx context.Context) (*providerState, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, a.opts.HTTPClient), 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI    string   `json:"jwks_uri"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
		EndSession string   `json:"end_session_endpoint"`
		Challenges []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	var algs []string
	for _, alg := range meta.Algs {
		if slices.Contains(asymmetricAlgs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(meta.Algs) == 0 {
		algs = []string{"RS256"} // the OIDC default when the provider is silent
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("provider advertises no asymmetric signing algorithm (%v)", meta.Algs)
	}
	joseAlgs := make([]jose.SignatureAlgorithm, len(algs))
	for i, alg := range algs {
		joseAlgs[i] = jose.SignatureAlgorithm(alg)
	}
	ks := &keySet{url: meta.JWKSURI, client: a.opts.HTTPClient, algs: joseAlgs, minInterval: a.opts.KeyRefetchInterval, clock: a.opts.Clock,
		onFailure: func() { a.providerFailure("jwks") }}
	keys, err := fetchJWKS(ctx, a.opts.HTTPClient, meta.JWKSURI)
	if err != nil {
		return nil, err
	}
	ks.keys, ks.lastFetch = keys, a.opts.Clock()
	return &providerState{
		provider: p,
		oauth: oauth2.Config{
			ClientID:     a.opts.ClientID,
			ClientSecret: a.opts.ClientSecret,
			Endpoint:     p.Endpoint(),
			RedirectURL:  a.opts.PublicURL.JoinPath("/.meetguard/callback").String(),
			Scopes:       a.opts.Scopes,
		},
		idVerifier: oidc.NewVerifier(a.opts.Issuer, ks, &oidc.Config{ClientID: a.opts.ClientID, SupportedSigningAlgs: algs, Now: a.opts.Clock}),
		bearer:     oidc.NewVerifier(a.opts.Issuer, ks, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algs, Now: a.opts.Clock}),
		endSession: meta.EndSession,
		keys:       ks,
	}, nil
}

// KeyFetches is how many times the provider's key set was fetched after
// discovery (for metrics and for the unknown-kid flood test).
func (a *Authenticator) KeyFetches() int {
	st, err := a.state()
	if err != nil {
		return 0
	}
	st.keys.mu.Lock()
	defer st.keys.mu.Unlock()
	return st.keys.fetches
}

// Authenticate returns the verified identity behind a request: a bearer
// token if one is sent (and then only that), else the session cookie.
func (a *Authenticator) Authenticate(r *http.Request) (identity.Identity, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return identity.Identity{}, fmt.Errorf("%w: authorization header is not a bearer token", ErrInvalidToken)
		}
		return a.VerifyBearer(ctx, strings.TrimSpace(token))
	}
	c, err := r.Cookie(a.cookieName)
	if err != nil {
		return identity.Identity{}, ErrNoCredentials
	}
	handle, err := a.opts.Codec.Open(a.cookieName, c.Value)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("%w: %w", ErrSessionEnded, err)
	}
	s, err := a.opts.Store.GetSession(ctx, session.IDFromHandle(handle))
	if errors.Is(err, session.ErrNotFound) {
		return identity.Identity{}, ErrSessionEnded
	}
	if err != nil {
		return identity.Identity{}, fmt.Errorf("session store: %w", err)
	}
	now := a.opts.Clock()
	if s.RefreshToken != "" && (a.claimsStale(s, now) || !now.Add(time.Minute).Before(s.TokenExpiry)) {
		if s, err = a.refresh(ctx, s); err != nil {
			return identity.Identity{}, err
		}
	}
	if a.claimsStale(s, now) {
		// No refresh brought newer claims: group removals at the provider
		// must not wait for session.ttl.
		a.endSession(ctx, s, "claims_stale", errors.New("claims older than session.max_claim_age and no new id token"))
		return identity.Identity{}, fmt.Errorf("%w: claims too old", ErrSessionEnded)
	}
	return s.Identity, nil
}

// VerifyBearer checks a bearer JWT: signature by the provider's keys with an
// advertised asymmetric algorithm, issuer, expiry, not-before, and one of
// the accepted audiences.
func (a *Authenticator) VerifyBearer(ctx context.Context, token string) (identity.Identity, error) {
	st, err := a.state()
	if err != nil {
		return identity.Identity{}, err
	}
	if len(token) > 16<<10 {
		return identity.Identity{}, fmt.Errorf("%w: token too large", ErrInvalidToken)
	}
	sum := sha256.Sum256([]byte(token))
	now := a.opts.Clock()
	a.verifiedMu.Lock()
	v, ok := a.verified[sum]
	a.verifiedMu.Unlock()
	if ok && now.Before(v.expires) {
		return v.id, nil
	}
	idt, err := st.bearer.Verify(ctx, token)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !slices.ContainsFunc(idt.Audience, func(aud string) bool { return slices.Contains(a.opts.Audiences, aud) }) {
		return identity.Identity{}, fmt.Errorf("%w: audience %v not accepted", ErrInvalidToken, idt.Audience)
	}
	if err := checkNotBefore(idt, a.opts.Clock()); err != nil {
		return identity.Identity{}, err
	}
	if err := notAnAccessToken(token, idt, a.opts.AccessTokenType); err != nil {
		return identity.Identity{}, err
	}
	id, err := a.identityFrom(idt, identity.ViaBearer)
	if errors.Is(err, ErrGroupsOverage) {
		a.opts.Logger.Warn("bearer token refused: groups overage; configure the provider to send fewer groups (group filtering)",
			zap.String("issuer", idt.Issuer), zap.String("sub", idt.Subject))
		a.audit(ctx, audit.EventLoginFailure, zap.String(audit.FieldReason, "groups_overage"), zap.String(audit.FieldClientIP, request.From(ctx).ClientIP))
	}
	if err != nil {
		return identity.Identity{}, err
	}
	id.SessionID = "bearer:" + hex.EncodeToString(sum[:12])
	a.verifiedMu.Lock()
	if len(a.verified) >= max(a.verifiedSweepAt, minVerifiedSweep) {
		for k, v := range a.verified {
			if !now.Before(v.expires) {
				delete(a.verified, k)
			}
		}
		a.verifiedSweepAt = min(2*len(a.verified), a.verifiedMax)
	}
	if len(a.verified) >= a.verifiedMax { // every token still valid: start over
		clear(a.verified)
		a.verifiedSweepAt = 0
	}
	a.verified[sum] = verifiedToken{id: id, expires: idt.Expiry}
	a.verifiedMu.Unlock()
	return id, nil
}

// checkNotBefore enforces nbf, which go-oidc leaves to the caller, with the
// same small skew it allows on exp.
func checkNotBefore(idt *oidc.IDToken, now time.Time) error {
	var c struct {
		NBF *jsonTime `json:"nbf"`
	}
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if c.NBF != nil && now.Add(30*time.Second).Before(time.Time(*c.NBF)) {
		return fmt.Errorf("%w: token not valid before %s", ErrInvalidToken, time.Time(*c.NBF).UTC().Format(time.RFC3339))
	}
	return nil
}

type jsonTime time.Time

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	var f float64
	if _, err := fmt.Sscan(string(b), &f); err != nil {
		return fmt.Errorf("time claim: %w", err)
	}
	*t = jsonTime(time.Unix(int64(f), 0))
	return nil
}

func (a *Authenticator) identityFrom(idt *oidc.IDToken, via identity.Via) (identity.Identity, error) {
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		return identity.Identity{}, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if via == identity.ViaBearer {
		if err := a.checkBearerClient(c); err != nil {
			return identity.Identity{}, err
		}
	}
	sub, err := a.subjectOf(c)
	if err != nil {
		return identity.Identity{}, err
	}
	if err := a.checkGroupsOverage(c); err != nil {
		return identity.Identity{}, err
	}
	id := identity.Identity{
		Issuer:        idt.Issuer,
		Subject:       sub,
		Email:         str(c["email"]),
		EmailVerified: claimBool(c["email_verified"]),
		Name:          str(c["name"]),
		Groups:        strs(c[a.opts.GroupsClaim]),
		ACR:           str(c["acr"]),
		AMR:           strs(c["amr"]),
		Via:           via,
	}
	if at, ok := c["auth_time"].(float64); ok {
		id.AuthTime = time.Unix(int64(at), 0).UTC()
	}
	return id, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// refresh renews a session's tokens, once per session however many requests
// arrive together (a rotated refresh token is good for one use). A failed
// refresh ends the session.
func (a *Authenticator) refresh(ctx context.Context, s session.Session) (session.Session, error) {
	a.refreshMu.Lock()
	if call, ok := a.refreshes[s.ID]; ok {
		a.refreshMu.Unlock()
		select {
		case <-call.done:
			return call.sess, call.err
		case <-ctx.Done():
			return session.Session{}, ctx.Err()
		}
	}
	call := &refreshCall{done: make(chan struct{})}
	a.refreshes[s.ID] = call
	a.refreshMu.Unlock()

	call.sess, call.err = a.doRefresh(ctx, s)
	close(call.done)
	a.refreshMu.Lock()
	delete(a.refreshes, s.ID)
	a.refreshMu.Unlock()
	return call.sess, call.err
}

func (a *Authenticator) doRefresh(ctx context.Context, s session.Session) (session.Session, error) {
	st, err := a.state()
	if err != nil {
		return session.Session{}, err
	}
	// The refresh must finish even if this one request is cancelled, or a
	// rotated token could be lost half-way.
	rctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), a.opts.HTTPClient), 15*time.Second)
	defer cancel()
	tok, err := st.oauth.TokenSource(rctx, &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: a.opts.Clock().Add(-time.Second)}).Token()
	if err == nil {
		if raw, ok := tok.Extra("id_token").(string); ok && raw != "" {
			var idt *oidc.IDToken
			if idt, err = st.idVerifier.Verify(rctx, raw); err == nil {
				// The same derivation as at login, userinfo included, so
				// claims only userinfo carries do not vanish.
				var id identity.Identity
				if id, err = a.sessionIdentity(rctx, st, tok, idt); err == nil && id.Subject != s.Identity.Subject {
					err = errors.New("refreshed id token names another subject")
				}
				if err == nil {
					id.SessionID = s.ID
					s.Identity, s.IDToken, s.ClaimsAt = id, raw, a.opts.Clock()
				}
			}
		}
	}
	if err != nil {
		a.providerFailure("refresh")
		reason := "refresh_failed"
		if errors.Is(err, ErrGroupsOverage) {
			reason = "groups_overage"
		}
		a.endSession(rctx, s, reason, err)
		return session.Session{}, fmt.Errorf("%w: refresh failed", ErrSessionEnded)
	}
	if tok.RefreshToken != "" {
		s.RefreshToken = tok.RefreshToken
	}
	s.TokenExpiry = tok.Expiry
	if err := a.opts.Store.PutSession(rctx, s); err != nil {
		return session.Session{}, fmt.Errorf("session store: %w", err)
	}
	return s, nil
}

// endSession ends a session the gateway can no longer vouch for, with an
// audit record naming why, and cuts its live connections.
func (a *Authenticator) endSession(ctx context.Context, s session.Session, reason string, err error) {
	if derr := a.opts.Store.DeleteSession(context.WithoutCancel(ctx), s.ID); derr != nil && !errors.Is(derr, session.ErrNotFound) {
		// The request that ended it already fails closed; the session
		// may outlive this in the store, which the record says.
		a.opts.Logger.Warn("session end: store unavailable", zap.String("session", shortID(s.ID)), zap.Error(derr))
		a.storeFailure(ctx, "session.delete", derr)
	}
	a.audit(ctx, audit.EventSessionRevoked, zap.String(audit.FieldSubject, s.Identity.Subject), zap.String(audit.FieldReason, reason))
	a.opts.Logger.Info("session ended", zap.String("session", shortID(s.ID)), zap.String("reason", reason), zap.Error(err))
	if a.opts.OnLogout != nil {
		a.opts.OnLogout(s.ID)
	}
}

// storeFailure records that the session store failed where a session
// had to end (a logout refused with 503, a revocation that may not have
// reached the store).
func (a *Authenticator) storeFailure(ctx context.Context, op string, err error) {
	kind := "memory"
	if a.opts.SharedStore {
		kind = "redis"
	}
	a.audit(context.WithoutCancel(ctx), audit.EventStoreFailure, zap.String(audit.FieldStore, kind), zap.String(audit.FieldOp, op),
		zap.String(audit.FieldError, truncate(err.Error(), 256)), zap.Int(audit.FieldSuppressed, 0))
}

func (a *Authenticator) audit(ctx context.Context, event string, fields ...zap.Field) {
	if a.opts.Audit == nil {
		return
	}
	if err := a.opts.Audit.Record(ctx, event, fields...); err != nil {
		a.opts.Logger.Error("audit record failed", zap.String("event", event), zap.Error(err))
	}
}

// shortID is enough of a session ID to correlate log lines, not to use it.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// providerFailure reports a failed call to the provider (metrics).
func (a *Authenticator) providerFailure(op string) {
	if a.opts.OnProviderFailure != nil {
		a.opts.OnProviderFailure(op)
	}
}
