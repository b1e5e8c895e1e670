package auth

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/web"
)

// logoutForm is the confirmation a GET shows: logging out cuts the
// person's live meeting connections, so it must be their own deliberate
// POST from this origin, never a link or a navigation another site starts.
func logoutForm() *web.Form { return &web.Form{Action: LogoutPath, Button: web.T("signout.button")} }

// Logout ends the session here and, when the provider supports it, there.
// It changes state only on a same-origin POST; a GET shows a confirmation
// page with the form that sends one.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		respond.Page(w, r, http.StatusOK, web.T("signout.title"), web.Message{Text: web.T("signout.confirm"), Form: logoutForm()})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		respond.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use POST to sign out.")
		return
	}
	if web.CheckCSRF(r, a.opts.PublicURL.Scheme+"://"+a.opts.PublicURL.Host) != nil {
		a.opts.Logger.Info("cross-site logout refused", zap.String("origin", truncate(r.Header.Get("Origin"), 128)),
			zap.String("sec_fetch_site", truncate(r.Header.Get("Sec-Fetch-Site"), 32)))
		respond.Page(w, r, http.StatusForbidden, web.T("signout.title"), web.Message{Text: web.T("signout.foreign"),
			Link: &web.Link{Href: LogoutPath, Label: web.T("signout.from_here")}})
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
				a.storeFailure(ctx, "session.delete", err)
				respond.Page(w, r, http.StatusServiceUnavailable, web.T("signout.title"), web.Message{Text: web.T("signout.unavailable")})
				return
			}
			if err == nil {
				a.audit(ctx, audit.EventLogout, zap.String(audit.FieldSubject, s.Identity.Subject), zap.String(audit.FieldIssuer, s.Identity.Issuer), zap.String(audit.FieldClientIP, request.ClientIP(r)))
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
