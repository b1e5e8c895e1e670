package gateway

import (
	"errors"
	"net/http"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/web"
)

// writeRefusal renders a refusal for a caller of the proxy: a page for a
// browser, JSON for anything else.
func (g *Gateway) writeRefusal(w http.ResponseWriter, r *http.Request, f refusal) {
	switch f.kind {
	case refusedUnauthenticated:
		g.loginOrChallenge(w, r, f.err, r.URL.RequestURI())
	case refusedForeignOrigin:
		g.refuse(w, r, http.StatusForbidden, "csrf", "Cross-site request refused.")
	case refusedUnavailable:
		g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", f.msg)
	case refusedAdmission:
		g.writeAdmission(w, r, f.admission)
	default:
		respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
	}
}

// writeAdmission answers an admission that did not let the caller in: the
// admitter's own answer when it has one, else the waiting room or the one
// refusal.
func (g *Gateway) writeAdmission(w http.ResponseWriter, r *http.Request, adm admission.Result) {
	switch {
	case adm.Respond != nil:
		adm.Respond(w, r)
	case adm.Outcome == admission.Waiting:
		g.waiting(w, r, adm)
	default:
		g.deny(w, r, adm.UserMessage)
	}
}

// unauthenticated refuses a request of the gateway's own API whose
// credential failed.
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	g.writeRefusal(w, r, g.authFailure(r, err))
}

// loginOrChallenge sends a browser to sign in (coming back to returnTo) and
// answers anything else 401 with a Bearer challenge.
func (g *Gateway) loginOrChallenge(w http.ResponseWriter, r *http.Request, err error, returnTo string) {
	if wantsHTML(r) && r.Header.Get("Authorization") == "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, auth.LoginURL(returnTo), http.StatusFound)
		return
	}
	challenge := `Bearer realm="meetguard"`
	if errors.Is(err, auth.ErrInvalidToken) {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	respond.JSONError(w, http.StatusUnauthorized, "unauthenticated", "Sign in to continue.")
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if msg == "" {
		msg = "You cannot join this meeting."
	}
	if wantsHTML(r) {
		respond.Page(w, r, status, web.T("refusal.title"), web.Message{Text: web.Literal(msg)})
		return
	}
	respond.JSONError(w, status, code, msg)
}

// deny answers a refused room request: a page for a browser, else the one
// JSON refusal every door gives (respond.Denied).
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsHTML(r) {
		g.refuse(w, r, http.StatusForbidden, "denied", msg)
		return
	}
	respond.Denied(w, msg)
}

func (g *Gateway) waiting(w http.ResponseWriter, r *http.Request, adm admission.Result) {
	msg := adm.UserMessage
	if msg == "" {
		msg = "Please wait: a host will let you in."
	}
	if wantsHTML(r) {
		respond.Page(w, r, http.StatusAccepted, web.T("waiting.title"), web.Message{Text: web.Literal(msg)})
		return
	}
	respond.JSON(w, http.StatusAccepted, map[string]string{"status": "waiting", "wait_id": adm.WaitID, "message": msg})
}
