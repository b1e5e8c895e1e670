package devidp

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// handleAuthorize validates an authorization request and shows the login
// page. Errors about the client or redirect_uri are shown here and never
// redirected (RFC 6749 §4.1.2.1): redirecting to an unverified URI is an
// open redirector that can leak codes.
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		p.message(w, http.StatusBadRequest, "Bad sign-in request", "The request's query string is malformed.")
		return
	}
	req, fail, fatal := p.parseAuthorize(q)
	if fatal != nil {
		p.log.Info("devidp: authorize refused", zap.String("error", fatal.Code), zap.String("reason", fatal.Description))
		p.message(w, http.StatusBadRequest, "Bad sign-in request", fatal.Description)
		return
	}
	if fail != nil {
		p.log.Info("devidp: authorize refused", zap.String("client_id", req.clientID),
			zap.String("error", fail.Code), zap.String("reason", fail.Description))
		p.redirectError(w, r, req, fail)
		return
	}

	browser := ""
	if c, err := r.Cookie(browserCookie); err == nil && validPKCE(c.Value, 43, 43) {
		browser = c.Value
	} else {
		browser = randomToken()
		http.SetCookie(w, &http.Cookie{
			Name: browserCookie, Value: browser, Path: p.cookiePath(),
			HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
		})
	}
	req.browser = browser
	now := p.now()
	req.expires = now.Add(loginTTL)
	id := randomToken()

	p.mu.Lock()
	p.sweepLocked(now)
	full := len(p.pending) >= maxPending
	if !full {
		p.pending[id] = &req
	}
	p.mu.Unlock()
	if full {
		p.message(w, http.StatusServiceUnavailable, "Busy", "Too many sign-ins are in progress; try again in a few minutes.")
		return
	}
	p.renderLogin(w, r, id, &req)
}

// parseAuthorize checks an authorization request. fatal means the client or
// redirect_uri cannot be trusted, so the error must not be redirected; fail
// is an error to send back to the (verified) redirect_uri.
func (p *Provider) parseAuthorize(q url.Values) (req authRequest, fail, fatal *oauthError) {
	clientID, e := single(q, "client_id")
	if e != nil {
		return req, nil, e
	}
	client, ok := p.clients[clientID]
	if !ok {
		return req, nil, errorf("invalid_client", "unknown client_id %q", clientID)
	}
	redirectURI, e := single(q, "redirect_uri")
	if e != nil {
		return req, nil, e
	}
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		return req, nil, errorf("invalid_request", "redirect_uri %q is not registered for client %q", redirectURI, clientID)
	}
	req.clientID, req.redirectURI = clientID, redirectURI
	if req.state, e = single(q, "state"); e != nil {
		return req, e, nil
	}

	responseType, e := single(q, "response_type")
	if e != nil {
		return req, e, nil
	}
	if responseType != "code" {
		return req, errorf("unsupported_response_type", "only response_type=code is supported"), nil
	}
	if mode, e := single(q, "response_mode"); e != nil {
		return req, e, nil
	} else if mode != "" && mode != "query" {
		return req, errorf("invalid_request", "only response_mode=query is supported"), nil
	}
	scope, e := single(q, "scope")
	if e != nil {
		return req, e, nil
	}
	req.scopes = parseScopes(scope)
	if !slices.Contains(req.scopes, "openid") {
		return req, errorf("invalid_scope", "scope must include openid"), nil
	}
	if req.nonce, e = single(q, "nonce"); e != nil {
		return req, e, nil
	}
	method, e := single(q, "code_challenge_method")
	if e != nil {
		return req, e, nil
	}
	if req.challenge, e = single(q, "code_challenge"); e != nil {
		return req, e, nil
	}
	// PKCE is mandatory and only S256: "plain" (the default when the method
	// is missing) protects nothing against an attacker who sees the request.
	if method != "S256" || !validPKCE(req.challenge, 43, 43) {
		return req, errorf("invalid_request", "PKCE with code_challenge_method=S256 and a 43-character code_challenge is required"), nil
	}
	if req.audience, e = parseAudiences(q); e != nil {
		return req, e, nil
	}
	if prompt, e := single(q, "prompt"); e != nil {
		return req, e, nil
	} else if slices.Contains(strings.Fields(prompt), "none") {
		// There is no single sign-on session here: every login is interactive.
		return req, errorf("login_required", "the dev provider keeps no session; an interactive login is required"), nil
	}
	for _, unsupported := range []string{"request", "request_uri"} {
		if q.Has(unsupported) {
			return req, errorf(unsupported+"_not_supported", "%s is not supported", unsupported), nil
		}
	}
	return req, nil, nil
}

// handleLogin completes a login from the page's form. The form is only
// accepted from the same origin (Fetch metadata / Origin checks) and only
// from the browser the page was shown to (the browser cookie), so another
// site cannot log a victim in under an identity of its choosing.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := p.csrf.Check(r); err != nil {
		p.log.Info("devidp: cross-origin login refused")
		p.message(w, http.StatusForbidden, "Refused", "Cross-origin sign-in requests are refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad sign-in", "The form could not be read.")
		return
	}
	id, e1 := single(r.PostForm, "request")
	sub, e2 := single(r.PostForm, "user")
	if e1 != nil || e2 != nil {
		p.message(w, http.StatusBadRequest, "Bad sign-in", "The form repeats a field.")
		return
	}
	cancel := r.PostForm.Has("cancel")
	user, known := p.userBySubject(sub)
	if !cancel && !known {
		p.message(w, http.StatusBadRequest, "Bad sign-in", "Unknown user.")
		return
	}
	cookie, _ := r.Cookie(browserCookie)
	now := p.now()

	p.mu.Lock()
	req := p.pending[id]
	switch {
	case req == nil || now.After(req.expires):
		p.mu.Unlock()
		p.message(w, http.StatusBadRequest, "Sign-in expired", "This sign-in is unknown, used or expired. Start again from the application.")
		return
	case cookie == nil || !secretEqual(cookie.Value, req.browser):
		p.mu.Unlock()
		p.log.Info("devidp: login from another browser refused", zap.String("client_id", req.clientID))
		p.message(w, http.StatusForbidden, "Refused", "This sign-in was started in another browser.")
		return
	}
	delete(p.pending, id)
	if cancel {
		p.mu.Unlock()
		p.redirectError(w, r, *req, errorf("access_denied", "the user cancelled the sign-in"))
		return
	}
	code := randomToken()
	p.codes[lookupKey(code)] = &codeGrant{
		grant: grant{
			clientID: req.clientID,
			sub:      user.Subject,
			scopes:   req.scopes,
			audience: req.audience,
			nonce:    req.nonce,
			authTime: now,
		},
		redirectURI: req.redirectURI,
		challenge:   req.challenge,
		expires:     now.Add(codeTTL),
	}
	p.mu.Unlock()

	p.log.Info("devidp: login", zap.String("sub", user.Subject), zap.String("client_id", req.clientID))
	http.Redirect(w, r, withParams(req.redirectURI, url.Values{
		"code": {code}, "state": {req.state}, "iss": {p.issuer},
	}), http.StatusSeeOther)
}

// redirectError reports an error to a verified redirect_uri.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, e *oauthError) {
	http.Redirect(w, r, withParams(req.redirectURI, url.Values{
		"error": {e.Code}, "error_description": {e.Description}, "state": {req.state}, "iss": {p.issuer},
	}), http.StatusSeeOther)
}

func (p *Provider) cookiePath() string {
	if p.prefix == "" {
		return "/"
	}
	return p.prefix + "/"
}
