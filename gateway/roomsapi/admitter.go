package roomsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// AdmitRequest implements admission.Admitter for every request on a room
// path. A request with a valid ticket whose admission still stands goes
// through (a browser's ticket cookie is renewed once half its life is
// gone). Anything else runs the join: admitted callers get their ticket as
// a cookie and go through, waiting browsers get the waiting page, refused
// browsers a page with the passcode form, apps the JSON answers.
func (a *API) AdmitRequest(ctx context.Context, req admission.Request) (admission.Result, error) {
	r, id, room := req.HTTP, req.Identity, req.Room
	held, err := a.heldTicket(ctx, r, room, id)
	var nt *noTicketError
	switch {
	case err == nil:
		adm := admission.Result{Outcome: admission.Admitted, Role: string(held.participant.Role), ParticipantID: string(held.participant.ID)}
		// The role is the store's (a host may have changed it since the
		// ticket was issued); a browser's ticket is renewed to say so too.
		if held.source == fromCookie && (timeLeft(held.ticket) < a.o.Tickets.TTL()/2 || held.ticket.Role != held.participant.Role) {
			tok, exp, err := a.o.Tickets.Issue(room, held.participant, binding(id))
			if err == nil {
				adm.Cookies = a.ticketCookies(room, tok, exp, a.roomPaths(room))
			}
		}
		return adm, nil
	case !errors.As(err, &nt):
		return admission.Result{}, err
	case nt.presented == fromHeader:
		// An app that sends a ticket means to use that admission; making it
		// a fresh join would quietly take a second seat.
		// It gets the one refusal, as from any other door.
		return a.refusal(room, wantsHTML(r)), nil
	case nt.presented == fromCookie && topLevelNavigation(r):
		// A tab whose ticket stopped working (a host removed it, or it
		// left) reloads itself: it is told so, and knocks again only if
		// the person asks to.
		return admission.Result{Outcome: admission.Denied, Respond: signedIn(id, a.removedPage(room, nt.revoked))}, nil
	case nt.presented == fromCookie, !mayJoin(r, id):
		// A ticket that fails refuses the request (no fresh join instead);
		// a WebSocket or a page's background request never knocks by
		// itself. Either way: the one refusal, and no lobby entry.
		return a.refusal(room, wantsHTML(r)), nil
	}

	html := wantsHTML(r)
	path := a.requestRoomPath(req)
	if html {
		if adm, ok, err := a.resumeWait(ctx, r, id, room, path); err != nil || ok {
			return adm, err
		}
	}
	res, err := a.join(ctx, joinRequest{id: id, room: room, r: r, via: "proxy", noKnock: !topLevelNavigation(r)})
	if err != nil {
		return admission.Result{}, err
	}
	switch res.kind {
	case joinAdmitted:
		adm := admission.Result{Outcome: admission.Admitted, Role: string(res.participant.Role), ParticipantID: string(res.participant.ID),
			Cookies: a.ticketCookies(room, res.ticket, res.expires, a.roomPaths(room))}
		if html {
			adm.Cookies = append(adm.Cookies, a.waitCookie(path, "", true))
		}
		return adm, nil
	case joinWaiting:
		adm := admission.Result{Outcome: admission.Waiting, WaitID: string(res.wait), UserMessage: res.message}
		if html {
			adm.Respond = signedIn(id, a.waitingPage(room, res.wait, res.reason, res.message, a.waitCookie(path, res.wait, false)))
		}
		return adm, nil
	case joinRateLimited, joinLobbyFull:
		return admission.Result{Outcome: admission.Denied, Respond: a.tooManyResponse(html, res)}, nil
	default:
		return a.refusal(room, html), nil
	}
}

// refusal is the one answer of every refused room request: the refusal
// page for a browser, the gateway's JSON refusal (respond.Denied) for
// anything else.
func (a *API) refusal(room string, html bool) admission.Result {
	adm := admission.Result{Outcome: admission.Denied, UserMessage: DeniedMessage}
	if html {
		adm.Respond = a.deniedPage(room)
	}
	return adm
}

// resumeWait keeps a browser's place in the lobby across reloads: its wait
// cookie names a knock that, if still the caller's, is shown again (or
// turned into a ticket if a host admitted it meanwhile) instead of knocking
// once more.
func (a *API) resumeWait(ctx context.Context, r *http.Request, id identity.Identity, room, path string) (admission.Result, bool, error) {
	c, err := r.Cookie(WaitCookie)
	if err != nil {
		return admission.Result{}, false, nil
	}
	wid := rooms.WaitID(c.Value)
	if wid.Validate() != nil {
		return admission.Result{}, false, nil
	}
	o, err := a.o.Store.WaitStatus(ctx, room, wid)
	switch {
	case errors.Is(err, rooms.ErrNotFound) || errors.Is(err, rooms.ErrInvalid):
		return admission.Result{}, false, nil
	case err != nil:
		return admission.Result{}, false, a.storeFailure(ctx, "wait_status", err)
	case o.Subject != subjectKey(id):
		return admission.Result{}, false, nil
	}
	switch o.Status {
	case rooms.Waiting:
		if err := a.o.Store.Heartbeat(ctx, room, wid); errors.Is(err, rooms.ErrNotFound) {
			return admission.Result{}, false, nil
		} else if err != nil {
			return admission.Result{}, false, a.storeFailure(ctx, "heartbeat", err)
		}
		return admission.Result{Outcome: admission.Waiting, WaitID: string(wid),
			Respond: signedIn(id, a.waitingPage(room, wid, "", "", a.waitCookie(path, wid, false)))}, true, nil
	case rooms.Admitted:
		p, err := a.o.Store.Touch(ctx, room, o.Participant.ID)
		if errors.Is(err, rooms.ErrNotAdmitted) {
			return admission.Result{}, false, nil
		} else if err != nil {
			return admission.Result{}, false, a.storeFailure(ctx, "touch", err)
		}
		tok, exp, err := a.o.Tickets.Issue(room, p, binding(id))
		if err != nil {
			return admission.Result{}, false, err
		}
		cookies := append(a.ticketCookies(room, tok, exp, a.roomPaths(room)), a.waitCookie(path, "", true))
		return admission.Result{Outcome: admission.Admitted, Role: string(p.Role), ParticipantID: string(p.ID), Cookies: cookies}, true, nil
	}
	// Denied: tell the caller once; a reload knocks afresh.
	return admission.Result{Outcome: admission.Denied, Respond: func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, a.waitCookie(path, "", true))
		a.deniedPage(room)(w, r)
	}}, true, nil
}

// requestRoomPath is the room's path on the upstream that serves this
// request, where the wait cookie belongs.
func (a *API) requestRoomPath(req admission.Request) string {
	if p, ok := a.o.RoomPaths[req.Upstream]; ok {
		return strings.Replace(p, "{room}", req.Room, 1)
	}
	// The room is the first path segment naming it after the upstream's
	// room prefix; without a configured pattern, cut at its first match.
	path := req.HTTP.URL.Path
	if i := strings.Index(path+"/", "/"+req.Room+"/"); i >= 0 {
		return path[:i+1+len(req.Room)]
	}
	return path
}

func (a *API) tooManyResponse(html bool, res joinResult) http.HandlerFunc {
	secs := retrySeconds(res.retryAfter)
	msg, status := rateLimitMessage(res.unit, secs), "rate_limited"
	if res.kind == joinLobbyFull {
		msg, status = "The waiting room is full. Please try again in a little while.", "lobby_full"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if html {
			respond.Page(w, r, http.StatusTooManyRequests, web.T("refusal.title"), web.Message{Text: web.Literal(msg)})
			return
		}
		respond.JSON(w, http.StatusTooManyRequests, map[string]any{"status": status, "message": msg, "retry_after_seconds": secs})
	}
}

// rateLimitMessage tells a refused person what they caused and for how
// long: a block is only ever shown to the one it is about (an identity's
// own failures, or an address's failures to someone without standing).
func rateLimitMessage(unit rooms.Unit, secs int) string {
	who := "from your account"
	if unit == rooms.UnitAddress {
		who = "from your network"
	}
	return fmt.Sprintf("Too many failed attempts %s. Please try again in %s.", who, humanDuration(secs))
}

// humanDuration rounds up to what a person reads: seconds under two
// minutes, then minutes, then hours.
func humanDuration(secs int) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	switch {
	case secs < 120:
		return plural(secs, "second")
	case secs < 2*3600:
		return plural((secs+59)/60, "minute")
	}
	return plural((secs+3599)/3600, "hour")
}

func timeLeft(t rooms.Ticket) time.Duration { return time.Until(t.ExpiresAt) }

// mayJoin says whether a room-path request without a ticket may run the
// join (and so knock): a browser's top-level page load, or an app's own
// (bearer) request that is not a WebSocket upgrade. A page's WebSocket or
// background request never may: reconnect loops would knock on their own.
func mayJoin(r *http.Request, id identity.Identity) bool {
	if isUpgrade(r) {
		return false
	}
	if id.Via == identity.ViaBearer {
		return true
	}
	return topLevelNavigation(r)
}

// topLevelNavigation is a browser loading a page into a tab: Fetch
// Metadata says so where the browser sends it (every current one does);
// without it, a GET or HEAD that accepts HTML.
func topLevelNavigation(r *http.Request) bool {
	if !wantsHTML(r) {
		return false
	}
	mode, dest := r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest")
	return (mode == "" || mode == "navigate") && (dest == "" || dest == "document")
}

// isUpgrade is a request to switch protocols (WebSocket and others).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// wantsHTML matches the gateway's notion of a browser page load.
func wantsHTML(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html")
}
