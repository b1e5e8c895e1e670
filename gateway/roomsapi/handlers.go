package roomsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// ServeHTTP serves the rooms API. The gateway has authenticated the caller
// (identity.From) before this runs.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := identity.From(r.Context())
	if !ok {
		respond.JSONError(w, http.StatusUnauthorized, "unauthenticated", "Sign in to continue.")
		return
	}
	rt, err := a.routes.resolve(r.Context(), r.Method, r.URL.Path)
	var me *methodError
	switch {
	case errors.As(err, &me):
		w.Header().Set("Allow", me.allow)
		respond.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
		return
	case errors.Is(err, errBadRoom):
		respond.JSONError(w, http.StatusBadRequest, "invalid_room", "Room ids are 1 to 64 of A-Z a-z 0-9 . _ - and do not start with a dot.")
		return
	case err != nil:
		notFound(w)
		return
	}
	if rt.changesState() && id.Via != identity.ViaBearer {
		if err := a.checkCSRF(r); err != nil {
			respond.JSONError(w, http.StatusForbidden, "csrf", "Cross-site request refused.")
			return
		}
	}
	ctx := r.Context()
	switch rt.op {
	case opJoin:
		a.serveJoin(ctx, w, r, id, rt.room)
	case opWait:
		a.serveWait(ctx, w, r, id, rt)
	case opLeave:
		a.serveLeave(ctx, w, r, id, rt.room)
	case opPutRoom:
		a.servePut(ctx, w, r, id, rt.room)
	case opConsole:
		a.serveConsole(ctx, w, r, id, rt.room)
	case opEvents:
		a.serveRoomEvents(ctx, w, r, id, rt.room)
	case opActivity:
		a.serveActivity(ctx, w, r, id, rt.room)
	default:
		a.serveHostAction(ctx, w, r, id, rt)
	}
}

func notFound(w http.ResponseWriter) {
	respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
}

func serviceUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	respond.JSONError(w, http.StatusServiceUnavailable, "unavailable", "Meeting rooms are unavailable right now. Please try again shortly.")
}

// fail answers an error from the store, the audit log or a body.
func fail(w http.ResponseWriter, err error) {
	var be *bodyError
	switch {
	case errors.As(err, &be):
		code := "invalid_request"
		switch be.Status {
		case http.StatusRequestEntityTooLarge:
			code = "body_too_large"
		case http.StatusUnsupportedMediaType:
			code = "unsupported_media_type"
		}
		respond.JSON(w, be.Status, map[string]string{"error": code, "field": be.Field, "message": be.Error()})
	default:
		// Store, audit and anything unforeseen: refuse, never guess.
		serviceUnavailable(w)
	}
}

// admittedBody is the answer that carries a ticket.
type admittedBody struct {
	Status        string    `json:"status"`
	Role          string    `json:"role"`
	ParticipantID string    `json:"participant_id"`
	Ticket        string    `json:"ticket"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func (a *API) writeAdmitted(w http.ResponseWriter, id identity.Identity, room string, p rooms.Participant, ticket string, exp time.Time) {
	if id.Via == identity.ViaSession {
		for _, c := range a.ticketCookies(room, ticket, exp, a.roomPaths(room)) {
			http.SetCookie(w, c)
		}
	}
	respond.JSON(w, http.StatusOK, admittedBody{Status: "admitted", Role: string(p.Role), ParticipantID: string(p.ID), Ticket: ticket, ExpiresAt: exp.UTC()})
}

// serveJoin is POST rooms/{room}/join.
func (a *API) serveJoin(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	var body joinBody
	if err := readJSON(r, &body); err != nil {
		fail(w, err)
		return
	}
	if err := parseJoin(body); err != nil {
		fail(w, err)
		return
	}
	res, err := a.join(ctx, joinRequest{id: id, room: room, passcode: body.Passcode, r: r, via: "api"})
	if err != nil {
		fail(w, err)
		return
	}
	switch res.kind {
	case joinAdmitted:
		a.writeAdmitted(w, id, room, res.participant, res.ticket, res.expires)
	case joinWaiting:
		msg := res.message
		if msg == "" {
			msg = "Please wait, a host will let you in soon."
		}
		respond.JSON(w, http.StatusAccepted, map[string]string{"status": "waiting", "wait_id": string(res.wait), "message": msg})
	case joinRateLimited, joinLobbyFull:
		a.tooManyResponse(false, res)(w, r)
	default:
		writeDenied(w)
	}
}

// writeDenied is the one refusal a non-member gets, byte for byte, whether
// the room is missing, locked, banned, full or refused by the policy.
func writeDenied(w http.ResponseWriter) {
	respond.Denied(w, DeniedMessage)
}

// serveWait is GET rooms/{room}/wait/{wait_id}: the knock's state, after
// waiting up to ?timeout= seconds (default and cap Options.WaitTimeout) for
// a host to decide, or as Server-Sent Events when asked for
// text/event-stream. Only the subject that knocked learns anything; every
// other caller gets the same 404 as for an unknown id.
func (a *API) serveWait(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, rt route) {
	o, err := a.o.Store.WaitStatus(ctx, rt.room, rt.wait)
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		notFound(w)
		return
	case err != nil:
		fail(w, a.storeFailure(ctx, "wait_status", err))
		return
	case o.Subject != subjectKey(id):
		notFound(w)
		return
	}
	if o.Status == rooms.Waiting {
		// Asking is the heartbeat: a knock lives only while its client
		// keeps asking (rooms.knock_ttl).
		// A knock decided since WaitStatus is gone from the lobby: its
		// outcome is read again.
		err := a.o.Store.Heartbeat(ctx, rt.room, rt.wait)
		if errors.Is(err, rooms.ErrNotFound) {
			o, err = a.o.Store.WaitStatus(ctx, rt.room, rt.wait)
		}
		switch {
		case errors.Is(err, rooms.ErrNotFound):
			notFound(w)
			return
		case err != nil:
			fail(w, a.storeFailure(ctx, "heartbeat", err))
			return
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		a.serveWaitEvents(ctx, w, id, rt, o)
		return
	}
	if o.Status == rooms.Waiting {
		timeout := a.o.WaitTimeout
		if s, err := strconv.Atoi(r.URL.Query().Get("timeout")); err == nil && s >= 0 && time.Duration(s)*time.Second < timeout {
			timeout = time.Duration(s) * time.Second
		}
		o, err = a.awaitBeating(ctx, rt, time.Now().Add(timeout))
		switch {
		case errors.Is(err, rooms.ErrNotFound):
			notFound(w)
			return
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			o.Status = rooms.Waiting
		case err != nil:
			fail(w, a.storeFailure(ctx, "await", err))
			return
		}
	}
	switch o.Status {
	case rooms.Admitted:
		tok, exp, p, err := a.outcomeTicket(ctx, id, rt.room, o)
		if err != nil {
			if errors.Is(err, ErrNotMember) {
				notFound(w)
				return
			}
			fail(w, err)
			return
		}
		a.writeAdmitted(w, id, rt.room, p, tok, exp)
	case rooms.Denied:
		respond.Denied(w, "A host did not let you in.")
	default:
		respond.JSON(w, http.StatusOK, map[string]string{"status": "waiting", "wait_id": string(rt.wait)})
	}
}

// awaitBeating waits for a host's decision until deadline, renewing the
// knock every knock_heartbeat while the caller's request stays open. It
// ends with the still-waiting Outcome and context.DeadlineExceeded at the
// deadline, or ErrNotFound if the knock went away.
func (a *API) awaitBeating(ctx context.Context, rt route, deadline time.Time) (rooms.Outcome, error) {
	for {
		wctx, cancel := context.WithDeadline(ctx, minTime(deadline, time.Now().Add(a.cfg.KnockHeartbeat)))
		o, err := a.o.Store.Await(wctx, rt.room, rt.wait)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || !time.Now().Before(deadline) {
			return o, err
		}
		if err := a.o.Store.Heartbeat(ctx, rt.room, rt.wait); errors.Is(err, rooms.ErrNotFound) {
			// Decided (or gone) since Await looked: read the outcome.
			return a.o.Store.WaitStatus(ctx, rt.room, rt.wait)
		} else if err != nil {
			return o, err
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// outcomeTicket issues the ticket for a knock a host admitted, if that
// admission still stands.
func (a *API) outcomeTicket(ctx context.Context, id identity.Identity, room string, o rooms.Outcome) (string, time.Time, rooms.Participant, error) {
	p, err := a.o.Store.Touch(ctx, room, o.Participant.ID)
	if errors.Is(err, rooms.ErrNotAdmitted) {
		return "", time.Time{}, p, fmt.Errorf("%w: admission from the lobby has ended", ErrNotMember)
	} else if err != nil {
		return "", time.Time{}, p, a.storeFailure(ctx, "touch", err)
	}
	tok, exp, err := a.o.Tickets.Issue(room, p, binding(id))
	return tok, exp, p, err
}

// serveWaitEvents streams the knock's state: the current one at once,
// then the host's decision, with a comment every 15s to keep proxies from
// closing the stream. The ticket travels in the admitted event's data
// (cookies cannot be set once the stream started).
func (a *API) serveWaitEvents(ctx context.Context, w http.ResponseWriter, id identity.Identity, rt route, o rooms.Outcome) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	deadline := time.Now().Add(a.cfg.WaitTTL)
	for {
		switch o.Status {
		case rooms.Admitted:
			tok, exp, p, err := a.outcomeTicket(ctx, id, rt.room, o)
			if err != nil {
				send(map[string]string{"status": "ended"})
				return
			}
			send(admittedBody{Status: "admitted", Role: string(p.Role), ParticipantID: string(p.ID), Ticket: tok, ExpiresAt: exp.UTC()})
			return
		case rooms.Denied:
			send(map[string]string{"status": "denied", "message": "A host did not let you in."})
			return
		}
		if !send(map[string]string{"status": "waiting", "wait_id": string(rt.wait)}) || time.Now().After(deadline) {
			return
		}
		for o.Status == rooms.Waiting {
			wctx, cancel := context.WithTimeout(ctx, a.cfg.KnockHeartbeat)
			next, err := a.o.Store.Await(wctx, rt.room, rt.wait)
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, context.DeadlineExceeded):
				if _, err := fmt.Fprint(w, ": waiting\n\n"); err != nil || rc.Flush() != nil || time.Now().After(deadline) {
					return
				}
				// The stream is still open: its client still waits.
				// A knock decided meanwhile is not found here; the next
				// Await reads its outcome.
				if err := a.o.Store.Heartbeat(ctx, rt.room, rt.wait); err != nil && !errors.Is(err, rooms.ErrNotFound) {
					send(map[string]string{"status": "ended"})
					_ = a.storeFailure(ctx, "heartbeat", err)
					return
				}
				continue
			case err != nil:
				send(map[string]string{"status": "ended"})
				if !errors.Is(err, rooms.ErrNotFound) {
					_ = a.storeFailure(ctx, "await", err)
				}
				return
			}
			o = next
		}
	}
}

// serveLeave is POST rooms/{room}/leave: the caller gives up its seat.
func (a *API) serveLeave(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	held, err := a.heldTicket(ctx, r, room, id)
	var nt *noTicketError
	switch {
	case errors.As(err, &nt):
		notFound(w)
		return
	case err != nil:
		fail(w, err)
		return
	}
	if err := a.o.Store.Leave(ctx, room, held.participant.ID); err != nil && !errors.Is(err, rooms.ErrNotAdmitted) {
		fail(w, a.storeFailure(ctx, "leave", err))
		return
	}
	if held.source == fromCookie {
		// A ticket that no longer works would refuse this browser's next
		// requests (see heldTicket); one that left drops it.
		for _, c := range a.ticketCookies(room, "", time.Now(), a.roomPaths(room)) {
			c.MaxAge = -1
			http.SetCookie(w, c)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
