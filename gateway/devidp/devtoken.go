package devidp

import (
	"net/http"

	"go.uber.org/zap"
)

// defaultDevScopes are granted by /dev/token when the request names none.
const defaultDevScopes = "openid profile email groups"

// handleDevToken mints tokens for a demo user without a login, for scripts:
//
//	POST {issuer}/dev/token
//	Content-Type: application/x-www-form-urlencoded
//
//	user=alice@example.com   required: a demo user's email or subject
//	audience=API             optional, space-separated or repeated; added to "aud"
//	client_id=ID             optional; the first registered client by default
//	scope=...                optional; "openid profile email groups" by default
//
// It answers like the token endpoint, without a refresh token:
//
//	{"access_token":"<JWT>","token_type":"Bearer","expires_in":600,
//	 "id_token":"<JWT>","scope":"openid profile email groups"}
//
// Errors are RFC 6749 error objects with status 400. Browsers on other
// origins are refused so that a web page cannot mint tokens on a
// developer's machine.
func (p *Provider) handleDevToken(w http.ResponseWriter, r *http.Request) {
	if err := p.csrf.Check(r); err != nil {
		writeJSON(w, http.StatusForbidden, errorf("access_denied", "cross-origin requests are refused"))
		return
	}
	form, e := readForm(w, r)
	if e != nil {
		writeJSON(w, http.StatusBadRequest, e)
		return
	}
	in := singles{v: form}
	name, clientID, scope := in.get("user"), in.get("client_id"), in.get("scope")
	if in.err != nil {
		writeJSON(w, http.StatusBadRequest, in.err)
		return
	}
	audience, e := parseAudiences(form)
	if e != nil {
		writeJSON(w, http.StatusBadRequest, e)
		return
	}
	u, ok := p.userByName(name)
	if !ok {
		writeJSON(w, http.StatusBadRequest, errorf("invalid_request", "user must name a demo user by email or subject"))
		return
	}
	if clientID == "" {
		clientID = p.clientList[0].ID
	} else if _, ok := p.clients[clientID]; !ok {
		writeJSON(w, http.StatusBadRequest, errorf("invalid_client", "unknown client_id"))
		return
	}
	if scope == "" {
		scope = defaultDevScopes
	}
	now := p.now()
	set, err := p.mint(grant{
		clientID: clientID,
		sub:      u.Subject,
		scopes:   parseScopes(scope),
		audience: audience,
		authTime: now,
	}, u, now)
	if err != nil {
		p.log.Error("devidp: minting dev token", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, errorf("server_error", "could not sign tokens"))
		return
	}
	p.log.Info("devidp: dev token issued", zap.String("client_id", clientID), zap.String("sub", u.Subject))
	writeJSON(w, http.StatusOK, set)
}
