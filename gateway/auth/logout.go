package auth

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/session"
)

// logoutForm is the confirmation a GET shows: logging out cuts the
// person's live meeting connections, so it must be their own deliberate
// POST from this origin, never a link or a navigation another site starts.
const logoutForm = template.HTML(`<form method="post" action="` + LogoutPath + `"><button type="submit">Sign out</button></form>`)

// Logout ends the session here and, when the provider supports it, there.
// It changes state only on a same-origin POST; a GET shows a confirmation
// page with the form that sends one.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		respond.Page(w, http.StatusOK, "Sign out", "Sign out of meetguard? Your open meetings through this browser will be disconnected.", logoutForm)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		respond.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use POST to sign out.")
		return
	}
	if !a.sameOrigin(r) {
		a.opts.Logger.Info("cross-site logout refused", zap.String("origin", truncate(r.Header.Get("Origin"), 128)),
			zap.String("sec_fetch_site", truncate(r.Header.Get("Sec-Fetch-Site"), 32)))
		respond.Page(w, http.StatusForbidden, "Sign out", "This sign-out did not come from meetguard's own page.",
			template.HTML(`<a href="`+LogoutPath+`">Sign out from here</a>`))
		return
	}
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	target := LoggedOutPath
	if c, err := r.Cookie(a.cookieName); err == nil {
		if handle, err := a.opts.Codec.Open(a.cookieName, c.Value); err == nil {
			id := session.IDFromHandle(handle)
			s, err := a.opts.Store.GetSession(ctx, id)
			if err == nil {
				err = a.opts.Store.DeleteSession(ctx, id)
			}
			if err != nil && !errors.Is(err, session.ErrNotFound) {
				// Clearing only the cookie would leave the session alive in
				// a shared store for anyone holding a copy of the cookie:
				// keep it and say the sign-out did not happen.
				a.opts.Logger.Warn("logout: session store unavailable", zap.Error(err))
				respond.Page(w, http.StatusServiceUnavailable, "Sign out", "Signing out is unavailable right now; you are still signed in. Please try again in a minute.", "")
				return
			}
			if err == nil {
				a.audit(ctx, "logout", zap.String("subject", s.Identity.Subject), zap.String("issuer", s.Identity.Issuer), zap.String("client_ip", request.ClientIP(r)))
				if a.opts.OnLogout != nil {
					a.opts.OnLogout(id)
				}
				if st, err := a.state(); err == nil && st.endSession != "" {
					if u, err := url.Parse(st.endSession); err == nil {
						v := u.Query()
						v.Set("id_token_hint", s.IDToken)
						v.Set("client_id", a.opts.ClientID)
						v.Set("post_logout_redirect_uri", a.opts.PublicURL.JoinPath(LoggedOutPath).String())
						u.RawQuery = v.Encode()
						target = u.String()
					}
				}
			}
		}
	}
	http.SetCookie(w, a.cookie(a.cookieName, "", -1))
	// 303: the browser follows with a GET, never re-POSTing.
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// sameOrigin is the rooms API's CSRF rule for a state-changing browser
// request: refused when Origin names another origin (or "null") or
// Sec-Fetch-Site is not same-origin; accepted only with positive proof,
// Origin equal to the gateway's own, Sec-Fetch-Site: same-origin, or the
// Meetguard-CSRF header no other site can send without a CORS preflight.
func (a *Authenticator) sameOrigin(r *http.Request) bool {
	own := a.opts.PublicURL.Scheme + "://" + a.opts.PublicURL.Host
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	if origin != "" && origin != own {
		return false
	}
	if site != "" && site != "same-origin" {
		return false
	}
	return origin == own || site == "same-origin" || r.Header.Get("Meetguard-CSRF") == "1"
}
