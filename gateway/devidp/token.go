package devidp

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"
)

// handleToken is the token endpoint: authorization_code (with PKCE) and
// refresh_token (with rotation) grants, authenticated with
// client_secret_basic, client_secret_post or, for public clients, none.
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		p.tokenError(w, http.StatusBadRequest, "", e)
		return
	}
	client, usedBasic, e := p.authenticateClient(r, form)
	if e != nil {
		if usedBasic {
			w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
		}
		p.tokenError(w, http.StatusUnauthorized, "", e)
		return
	}
	grantType, e := single(form, "grant_type")
	if e != nil {
		p.tokenError(w, http.StatusBadRequest, client.ID, e)
		return
	}
	var set tokenSet
	switch grantType {
	case "authorization_code":
		set, e = p.exchangeCode(client, form)
	case "refresh_token":
		set, e = p.refresh(client, form)
	default:
		e = errorf("unsupported_grant_type", "grant_type %q is not supported", grantType)
	}
	if e != nil {
		p.tokenError(w, http.StatusBadRequest, client.ID, e)
		return
	}
	writeJSON(w, http.StatusOK, set)
}

// readForm reads an application/x-www-form-urlencoded body. Query parameters
// are ignored: credentials and codes in URLs end up in logs.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, errorf("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return nil, errorf("invalid_request", "the body is not a readable form")
	}
	return r.PostForm, nil
}

// authenticateClient identifies the client by exactly one method.
func (p *Provider) authenticateClient(r *http.Request, form url.Values) (Client, bool, *oauthError) {
	in := singles{v: form}
	id, secret := in.get("client_id"), in.get("client_secret")
	if in.err != nil {
		return Client{}, false, in.err
	}
	basicID, basicSecret, usedBasic := r.BasicAuth()
	if usedBasic {
		if secret != "" {
			return Client{}, true, errorf("invalid_request", "use one client authentication method, not two")
		}
		// RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return Client{}, true, errorf("invalid_client", "malformed Basic credentials")
		}
		if id != "" && id != basicID {
			return Client{}, true, errorf("invalid_request", "client_id differs from the Basic credentials")
		}
		id, secret = basicID, basicSecret
	}
	c, ok := p.clients[id]
	switch {
	case !ok:
		return Client{}, usedBasic, errorf("invalid_client", "unknown client")
	case c.Secret == "" && secret != "":
		return Client{}, usedBasic, errorf("invalid_client", "public client must not send a secret")
	case c.Secret != "" && !secretEqual(secret, c.Secret):
		return Client{}, usedBasic, errorf("invalid_client", "client authentication failed")
	}
	return c, usedBasic, nil
}

func (p *Provider) exchangeCode(client Client, form url.Values) (tokenSet, *oauthError) {
	in := singles{v: form}
	code, redirectURI, verifier := in.get("code"), in.get("redirect_uri"), in.get("code_verifier")
	if in.err != nil {
		return tokenSet{}, in.err
	}
	now := p.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	cg := p.codes[lookupKey(code)]
	switch {
	case cg == nil || now.After(cg.expires):
		return tokenSet{}, errorf("invalid_grant", "unknown or expired code")
	case cg.used:
		// RFC 6749 §4.1.2: a replayed code means it leaked; whatever was
		// minted from it must stop working too.
		n := p.revokeFamilyLocked(cg.family)
		p.log.Warn("devidp: authorization code replayed; revoked its refresh tokens",
			zap.String("client_id", client.ID), zap.String("sub", cg.sub), zap.Int("revoked", n))
		return tokenSet{}, errorf("invalid_grant", "code already used")
	}
	// Any attempt uses the code up, so a wrong verifier cannot be retried.
	cg.used = true
	cg.family = randomToken()
	switch {
	case cg.clientID != client.ID:
		return tokenSet{}, errorf("invalid_grant", "code was issued to another client")
	case redirectURI != cg.redirectURI:
		return tokenSet{}, errorf("invalid_grant", "redirect_uri differs from the authorization request")
	case !validPKCE(verifier, 43, 128):
		return tokenSet{}, errorf("invalid_grant", "code_verifier is missing or malformed")
	case !pkceMatches(verifier, cg.challenge):
		return tokenSet{}, errorf("invalid_grant", "code_verifier does not match code_challenge")
	}
	return p.issueLocked(cg.grant, now, "authorization_code")
}

func (p *Provider) refresh(client Client, form url.Values) (tokenSet, *oauthError) {
	in := singles{v: form}
	raw, scope := in.get("refresh_token"), in.get("scope")
	if in.err != nil {
		return tokenSet{}, in.err
	}
	now := p.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	rg := p.refreshes[lookupKey(raw)]
	switch {
	case rg == nil || now.After(rg.expires):
		return tokenSet{}, errorf("invalid_grant", "unknown, revoked or expired refresh token")
	case rg.clientID != client.ID:
		return tokenSet{}, errorf("invalid_grant", "refresh token was issued to another client")
	case rg.used:
		// A rotated token came back: either the client or a thief holds a
		// copy. End the whole family so the thief's copy dies too.
		n := p.revokeFamilyLocked(rg.family)
		p.log.Warn("devidp: rotated refresh token reused; revoked its family",
			zap.String("client_id", client.ID), zap.String("sub", rg.sub), zap.Int("revoked", n))
		return tokenSet{}, errorf("invalid_grant", "refresh token already used")
	}
	g := rg.grant
	if scope != "" {
		narrowed := parseScopes(scope)
		for _, s := range narrowed {
			if !slices.Contains(g.scopes, s) {
				return tokenSet{}, errorf("invalid_scope", "scope %q was not granted", s)
			}
		}
		g.scopes = narrowed
	}
	rg.used = true
	g.nonce = "" // a nonce belongs to the ID token of the original login only
	return p.issueLocked(g, now, "refresh_token")
}

// issueLocked mints tokens and a new refresh token for g. p.mu must be held.
func (p *Provider) issueLocked(g grant, now time.Time, how string) (tokenSet, *oauthError) {
	u, ok := p.userBySubject(g.sub)
	if !ok {
		return tokenSet{}, errorf("invalid_grant", "user no longer exists")
	}
	set, err := p.mint(g, u, now)
	if err != nil {
		p.log.Error("devidp: minting tokens", zap.Error(err))
		return tokenSet{}, errorf("server_error", "could not sign tokens")
	}
	set.RefreshToken = p.newRefreshLocked(g, now)
	p.log.Info("devidp: tokens issued", zap.String("grant_type", how),
		zap.String("client_id", g.clientID), zap.String("sub", g.sub))
	return set, nil
}

func (p *Provider) tokenError(w http.ResponseWriter, status int, clientID string, e *oauthError) {
	p.log.Info("devidp: token request refused", zap.String("client_id", clientID),
		zap.String("error", e.Code), zap.String("reason", e.Description))
	writeJSON(w, status, e)
}
