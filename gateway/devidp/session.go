package devidp

import (
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// handleUserinfo answers OIDC Core §5.3 for a Bearer access token. ID tokens
// are refused: their "typ" differs.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devidp"`)
		writeJSON(w, http.StatusUnauthorized, errorf("invalid_request", "a Bearer access token is required"))
		return
	}
	c, err := p.parseOwn(strings.TrimSpace(raw), accessTokenTyp, true)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devidp", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorf("invalid_token", "the access token is invalid or expired"))
		return
	}
	u, ok := p.userBySubject(c.Subject)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devidp", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorf("invalid_token", "unknown subject"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sub":            u.Subject,
		"email":          u.Email,
		"email_verified": u.EmailVerified,
		"name":           u.Name,
		"groups":         append([]string{}, u.Groups...),
	})
}

// handleLogout is the end_session_endpoint (OIDC RP-Initiated Logout 1.0).
// It only redirects to a post_logout_redirect_uri registered for the client
// named by client_id or by the id_token_hint; anything else would be an open
// redirector. With a valid hint it also revokes that user's refresh tokens
// for that client, which is what ends a session at a real provider.
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad sign-out request", "The request could not be read.")
		return
	}
	var vals [4]string
	for i, name := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		v, e := single(r.Form, name)
		if e != nil {
			p.message(w, http.StatusBadRequest, "Bad sign-out request", e.Description)
			return
		}
		vals[i] = v
	}
	hint, clientID, target, state := vals[0], vals[1], vals[2], vals[3]

	sub := ""
	if hint != "" {
		c, err := p.parseOwn(hint, idTokenTyp, false)
		if err != nil || len(c.Audience) != 1 {
			p.message(w, http.StatusBadRequest, "Bad sign-out request", "id_token_hint is not an ID token from this provider.")
			return
		}
		if clientID != "" && clientID != c.Audience[0] {
			p.message(w, http.StatusBadRequest, "Bad sign-out request", "client_id does not match id_token_hint.")
			return
		}
		clientID, sub = c.Audience[0], c.Subject
	}
	if target != "" {
		client, ok := p.clients[clientID]
		if !ok {
			p.message(w, http.StatusBadRequest, "Bad sign-out request", "post_logout_redirect_uri needs client_id or id_token_hint.")
			return
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, target) {
			p.log.Info("devidp: logout redirect refused", zap.String("client_id", clientID))
			p.message(w, http.StatusBadRequest, "Bad sign-out request", "post_logout_redirect_uri is not registered for this client.")
			return
		}
	}

	revoked := 0
	if sub != "" {
		p.mu.Lock()
		for k, v := range p.refreshes {
			if v.sub == sub && v.clientID == clientID {
				delete(p.refreshes, k)
				revoked++
			}
		}
		p.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{
		Name: browserCookie, Path: p.cookiePath(), MaxAge: -1,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	p.log.Info("devidp: logout", zap.String("client_id", clientID), zap.String("sub", sub), zap.Int("revoked", revoked))
	if target == "" {
		p.message(w, http.StatusOK, "Signed out", "You are signed out of the development identity provider.")
		return
	}
	http.Redirect(w, r, withParams(target, map[string][]string{"state": {state}}), http.StatusSeeOther)
}
