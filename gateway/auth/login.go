package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/web"
)

// loginTTL bounds how long a person may take at the provider's login page.
const loginTTL = 10 * time.Minute

// Paths of the gateway's own login endpoints.
const (
	LoginPath     = "/.meetguard/login"
	CallbackPath  = "/.meetguard/callback"
	LogoutPath    = "/.meetguard/logout"
	LoggedOutPath = "/.meetguard/logged-out"
)

// LoginURL is where an unauthenticated browser is sent for path rd.
func LoginURL(rd string) string {
	return LoginPath + "?rd=" + url.QueryEscape(rd)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Login starts the authorization code flow with PKCE S256, a fresh state
// and nonce. It keeps nothing on the server: all of it goes in the sealed
// login cookie (loginstate.go), which also binds the callback to this
// browser.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request) {
	st, err := a.state()
	if err != nil {
		a.failPage(w, r, http.StatusServiceUnavailable, "provider_unavailable", "Sign-in is unavailable right now. Please try again in a minute.", err)
		return
	}
	rd, ok := SafeRedirect(r.URL.Query().Get("rd"))
	if !ok || len(rd) > maxRedirectLen {
		rd = "/"
	}
	l := session.Login{
		State:    randomToken(),
		Nonce:    randomToken(),
		Verifier: oauth2.GenerateVerifier(),
		Redirect: rd,
		Expires:  a.opts.Clock().Add(loginTTL),
	}
	http.SetCookie(w, a.cookie(a.loginCookie, a.sealLogin(l), int(loginTTL/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.oauth.AuthCodeURL(l.State, oidc.Nonce(l.Nonce), oauth2.S256ChallengeOption(l.Verifier)), http.StatusFound)
}

// Callback finishes a login. Every check failing is the same to the
// browser ("sign-in failed"); the reason goes to the audit log.
func (a *Authenticator) Callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	clearLogin := a.cookie(a.loginCookie, "", -1)
	http.SetCookie(w, clearLogin)
	if e := q.Get("error"); e != "" {
		a.loginFailed(w, r, "provider_error", errors.New("provider returned error "+truncate(e, 64)))
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(a.loginCookie)
	if err != nil || state == "" {
		a.loginFailed(w, r, "missing_state", errors.New("no state or no login cookie"))
		return
	}
	now := a.opts.Clock()
	l, err := a.openLogin(c.Value, now)
	if errors.Is(err, errLoginExpired) {
		a.loginFailed(w, r, "state_expired", err)
		return
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(l.State), []byte(state)) != 1 {
		a.loginFailed(w, r, "state_mismatch", errors.New("state does not match this browser's login"))
		return
	}
	if !a.replays.claim(l.State, l.Expires, now) {
		a.loginFailed(w, r, "state_replayed", errors.New("this login's callback was already taken"))
		return
	}
	st, err := a.state()
	if err != nil {
		a.loginFailed(w, r, "provider_unavailable", err)
		return
	}
	xctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, a.opts.HTTPClient), 15*time.Second)
	defer cancel()
	tok, err := st.oauth.Exchange(xctx, q.Get("code"), oauth2.VerifierOption(l.Verifier))
	if err != nil {
		a.loginFailed(w, r, "code_exchange_failed", err)
		return
	}
	if a.opts.SharedStore {
		first, err := a.opts.Store.ClaimState(ctx, l.State, l.Expires)
		if err != nil {
			a.failPage(w, r, http.StatusServiceUnavailable, "store_unavailable", "Sign-in is unavailable right now. Please try again in a minute.", err)
			return
		}
		if !first {
			a.loginFailed(w, r, "state_replayed", errors.New("this login's callback was already taken on another node"))
			return
		}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		a.loginFailed(w, r, "no_id_token", errors.New("token response has no id_token"))
		return
	}
	idt, err := st.idVerifier.Verify(xctx, raw)
	if err != nil {
		a.loginFailed(w, r, "id_token_invalid", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		a.loginFailed(w, r, "nonce_mismatch", errors.New("id token nonce does not match"))
		return
	}
	id, err := a.sessionIdentity(xctx, st, tok, idt)
	if errors.Is(err, ErrGroupsOverage) {
		a.failPage(w, r, http.StatusForbidden, "groups_overage", "Your account is in more groups than the sign-in can carry, so meetguard cannot tell which meetings you may host. "+
			"Please ask your administrator to send meetguard only the groups it needs (group filtering at the identity provider).", err)
		return
	}
	if err != nil {
		a.loginFailed(w, r, "id_token_invalid", err)
		return
	}
	now = a.opts.Clock()
	handle := session.NewHandle()
	s := session.Session{
		ID:           session.IDFromHandle(handle),
		IDToken:      raw,
		RefreshToken: tok.RefreshToken,
		TokenExpiry:  tok.Expiry,
		Created:      now,
		Expires:      now.Add(a.opts.SessionTTL),
		ClaimsAt:     now,
	}
	if tok.Expiry.IsZero() {
		s.TokenExpiry = idt.Expiry
	}
	if s.RefreshToken == "" && s.TokenExpiry.Before(s.Expires) {
		// Without a refresh token the provider can never tell us the login
		// was revoked, so the session lives no longer than its tokens.
		s.Expires = s.TokenExpiry
	}
	id.SessionID = s.ID
	s.Identity = id
	if err := a.opts.Store.PutSession(ctx, s); err != nil {
		a.loginFailed(w, r, "store_unavailable", err)
		return
	}
	if err := a.opts.Audit.Record(ctx, audit.EventLoginSuccess, zap.String(audit.FieldSubject, id.Subject), zap.String(audit.FieldIssuer, id.Issuer), zap.String(audit.FieldEmail, id.Email), zap.String(audit.FieldClientIP, request.ClientIP(r))); err != nil {
		// No record, no login: an auditor must be able to see every session.
		_ = a.opts.Store.DeleteSession(ctx, s.ID)
		a.failPage(w, r, http.StatusServiceUnavailable, "audit_unavailable", "Sign-in is unavailable right now. Please try again in a minute.", err)
		return
	}
	http.SetCookie(w, a.cookie(a.cookieName, a.opts.Codec.Seal(a.cookieName, handle), int(time.Until(s.Expires)/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, l.Redirect, http.StatusFound)
}

func (a *Authenticator) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   a.secureCookies,
		SameSite: http.SameSiteLaxMode,
	}
}

func (a *Authenticator) loginFailed(w http.ResponseWriter, r *http.Request, reason string, err error) {
	a.failPage(w, r, http.StatusBadRequest, reason, "Sign-in failed. Please start again.", err)
}

func (a *Authenticator) failPage(w http.ResponseWriter, r *http.Request, status int, reason, msg string, err error) {
	a.opts.Logger.Info("login failed", zap.String("reason", reason), zap.Error(err))
	if a.opts.Audit != nil {
		if aerr := a.opts.Audit.Record(r.Context(), audit.EventLoginFailure, zap.String(audit.FieldReason, reason), zap.String(audit.FieldClientIP, request.ClientIP(r))); aerr != nil {
			a.opts.Logger.Error("audit record failed", zap.Error(aerr))
		}
	}
	respond.Page(w, r, status, web.T("signin.title"), web.Message{Text: web.Literal(msg), Link: &web.Link{Href: LoginPath, Label: web.T("signin.again")}})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// mergeUserInfo takes email and, when the ID token had none, name and
// groups from the userinfo answer, which must be about the ID token's sub.
func (a *Authenticator) mergeUserInfo(ctx context.Context, st *providerState, tok *oauth2.Token, sub string, id *identity.Identity) error {
	ui, err := st.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return err
	}
	if ui.Subject != sub {
		return errors.New("userinfo names another subject")
	}
	var c map[string]any
	if err := ui.Claims(&c); err != nil {
		return err
	}
	id.Email, id.EmailVerified = ui.Email, claimBool(c["email_verified"])
	if id.Name == "" {
		id.Name = str(c["name"])
	}
	if len(id.Groups) == 0 {
		id.Groups = strs(c[a.opts.GroupsClaim])
	}
	return nil
}
