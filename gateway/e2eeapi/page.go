package e2eeapi

import (
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// MeetingPage configures the meeting page at GET /.meetguard/api/v1/rooms/{room}/meeting: the browser side of
// the key exchange for LiveKit rooms, rendered by the gateway's web layer (web.RenderMeeting).
type MeetingPage struct {
	// SignalPath returns room's LiveKit signalling path on this gateway (its rooms.path on the LiveKit
	// upstream, e.g. /lk/room/standup), where the gateway admits the caller and mints the LiveKit token; "" when
	// the room has none, and the page then waits to be started by a script (tests).
	SignalPath func(room string) string
	// ConnectSrc are origins the page may connect to besides the gateway's own: a LiveKit server the page
	// reaches directly (tests only; through the gateway it is 'self').
	ConnectSrc []string
}

// serveMeeting renders the meeting page for a caller who may hold keys in the room (a member, or one the
// policy would admit once its key is registered); anyone else, whether the room exists or not, gets the same
// refusal page.
func (h *Handler) serveMeeting(w http.ResponseWriter, r *http.Request, rt route, err error) {
	w.Header().Set("Cache-Control", "no-store")
	var me *methodError
	if errors.As(err, &me) {
		w.Header().Set("Allow", me.allow)
		respond.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use "+me.use+".")
		return
	}
	room := rt.room
	id, ok := identity.From(r.Context())
	if rooms.ValidateRoomID(room) != nil || !ok || id.Subject == "" {
		refusePage(w, r, http.StatusNotFound)
		return
	}
	if err := h.mayRegister(r, room); err != nil {
		status := http.StatusNotFound
		if errors.Is(err, errUnavailable) {
			status = http.StatusServiceUnavailable
		}
		refusePage(w, r, status)
		return
	}
	m := web.Meeting{
		Room: room, AuthorityKey: hex.EncodeToString(h.pub),
		Subject: id.Subject, Issuer: id.Issuer, Who: displayName(id),
	}
	if h.opts.Meeting.SignalPath != nil {
		m.SignalPath = h.opts.Meeting.SignalPath(room)
	}
	web.Default().RenderMeeting(w, r, m, h.opts.Meeting.ConnectSrc)
}

// refusePage is the page every refused browser gets: it says neither whether the room exists nor why.
func refusePage(w http.ResponseWriter, r *http.Request, status int) {
	respond.Page(w, r, status, web.T("refusal.title"), web.Message{Text: web.T("refusal.message")})
}
