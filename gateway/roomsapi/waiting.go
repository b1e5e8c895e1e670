package roomsapi

import (
	"net/http"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// The waiting page, the refusal page and the removed page are one page of
// the web layer ("waiting", with static/waiting.js) in three states.
// Waiting, it follows the lobby until a host decides; refused, it shows
// the one refusal every non-member gets and a passcode field: offering the
// field on every refusal is what keeps a passcode room from being told
// apart from a missing one.
type pages struct {
	web *web.Pages
}

func newPages() (*pages, error) { return &pages{web: web.Default()}, nil }

func (p *pages) write(w http.ResponseWriter, r *http.Request, status int, title web.Text, d web.Waiting) {
	if id, ok := identity.From(r.Context()); ok {
		d.Who = id.Name
		if d.Who == "" {
			d.Who = id.Email
		}
	}
	p.web.Render(w, r, status, web.View{Template: "waiting", Title: title, Script: "waiting.js", Data: d})
}

// signedIn lets a page handler say who is signed in ("Signed in as …,
// not you? Sign out"): the proxy calls it with its own request.
func signedIn(id identity.Identity, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(identity.With(r.Context(), id)))
	}
}

// waitingPage answers a browser sent to the lobby: 202, its wait cookie,
// and the page that follows the lobby until a host decides.
func (a *API) waitingPage(room string, wait rooms.WaitID, reason, message string, cookie *http.Cookie) http.HandlerFunc {
	msg := web.T("waiting.wait")
	if message != "" || reason != "" {
		msg = web.PolicyMessage(reason, message)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, cookie)
		a.pages.write(w, r, http.StatusAccepted, web.T("waiting.title"), web.Waiting{
			Room: room, RoomName: room, Wait: string(wait), State: "waiting", Message: msg, Leave: true,
		})
	}
}

// removedPage answers a tab that reloads with a ticket cookie that no
// longer works. It does not knock: the person asks to, with the button
// (POST …/join). Only an authentic ticket of this caller, for this room,
// whose admission ended (revoked) says "removed"; any other is just
// stale, and reveals nothing about the room.
func (a *API) removedPage(room string, revoked bool) http.HandlerFunc {
	title, msg := web.T("refusal.title"), web.T("stale.text")
	if revoked {
		title, msg = web.T("removed.title"), web.T("removed.text")
	}
	return func(w http.ResponseWriter, r *http.Request) {
		a.pages.write(w, r, http.StatusForbidden, title, web.Waiting{Room: room, State: "removed", Message: msg, Again: true})
	}
}

// deniedPage answers every refused browser the same way, with the passcode
// form.
func (a *API) deniedPage(room string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.pages.write(w, r, http.StatusForbidden, web.T("refusal.title"), web.Waiting{Room: room, State: "denied", Message: web.T("refusal.message"), Form: true})
	}
}
