package roomsapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// maxTicketCandidates bounds the tickets one request can make the gateway
// check (each costs an HMAC and possibly a store round trip).
const maxTicketCandidates = 8

type ticketSource int

const (
	fromNowhere ticketSource = iota
	fromHeader
	fromCookie
)

type candidate struct {
	token  string
	source ticketSource
}

// ticketCandidates lists the tickets a request presents for room, from one
// place only: the Meetguard-Ticket header values (comma-separated lists
// too) if the request has any, else the room-path cookie and the API cookie
// for the room. The gateway's rule for every credential pair (bearer token
// over session cookie, ticket header over ticket cookie) is the same: the
// header, when sent, is the credential, and the cookie is not consulted.
func ticketCandidates(r *http.Request, room string) []candidate {
	var out []candidate
	for _, v := range r.Header.Values(TicketHeader) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && len(out) < maxTicketCandidates {
				out = append(out, candidate{t, fromHeader})
			}
		}
	}
	if len(out) > 0 || len(r.Header.Values(TicketHeader)) > 0 {
		// An empty header is a presented ticket too, and an invalid one.
		if len(out) == 0 {
			out = append(out, candidate{"", fromHeader})
		}
		return out
	}
	apiName := APITicketCookiePrefix + room
	for _, c := range r.Cookies() {
		if (c.Name == TicketCookie || c.Name == apiName) && c.Value != "" && len(out) < maxTicketCandidates {
			out = append(out, candidate{c.Value, fromCookie})
		}
	}
	return out
}

// heldTicket is a verified ticket whose admission the store still holds.
type heldTicket struct {
	ticket      rooms.Ticket
	participant rooms.Participant
	source      ticketSource
}

// noTicketError: the request presents no ticket that is valid and still
// admitted. presented says where the failing ticket came from
// (fromNowhere: none was presented); revoked is set when it was authentic
// and the caller's but its admission has ended (removed, banned, left).
type noTicketError struct {
	presented ticketSource
	revoked   bool
}

func (e *noTicketError) Error() string { return "roomsapi: no valid ticket" }

// heldTicket checks the tickets r presents for room (see ticketCandidates):
// each must verify for id and name a participant the store still admits
// (Touch, which also renews the lease). One that fails fails the request:
// a bad ticket is never made up for by another one.
// Store failures are returned as such; anything else is *noTicketError.
func (a *API) heldTicket(ctx context.Context, r *http.Request, room string, id identity.Identity) (heldTicket, error) {
	cands := ticketCandidates(r, room)
	if len(cands) == 0 {
		return heldTicket{}, &noTicketError{presented: fromNowhere}
	}
	var held heldTicket
	for i, c := range cands {
		t, err := a.o.Tickets.Verify(c.token, room, binding(id))
		if err != nil {
			return heldTicket{}, &noTicketError{presented: c.source}
		}
		p, err := a.o.Store.Touch(ctx, room, t.Participant)
		switch {
		case errors.Is(err, rooms.ErrNotAdmitted):
			return heldTicket{}, &noTicketError{presented: c.source, revoked: true}
		case err != nil:
			return heldTicket{}, a.storeFailure(ctx, "touch", err)
		case p.Subject != subjectKey(id):
			// The binding already ties it to this caller; this only
			// makes sure a ticket never speaks for somebody else.
			return heldTicket{}, &noTicketError{presented: c.source}
		}
		if i == 0 {
			held = heldTicket{ticket: t, participant: p, source: c.source}
		}
	}
	return held, nil
}

// roomPaths are the room's paths on every upstream, where its ticket cookie
// lives.
func (a *API) roomPaths(room string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range a.o.RoomPaths {
		p = strings.Replace(p, "{room}", room, 1)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// ticketCookies carry a browser's ticket to the room's paths and to the
// API. HttpOnly: no script needs it; SameSite=Lax: a link into the meeting
// from elsewhere still works.
func (a *API) ticketCookies(room, token string, expires time.Time, paths []string) []*http.Cookie {
	age := max(int(time.Until(expires)/time.Second), 1)
	mk := func(name, path string) *http.Cookie {
		return &http.Cookie{Name: name, Value: token, Path: path, MaxAge: age, Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	}
	out := []*http.Cookie{mk(APITicketCookiePrefix+room, apiCookiePath)}
	for _, p := range paths {
		out = append(out, mk(TicketCookie, p))
	}
	return out
}

func (a *API) waitCookie(path string, wait rooms.WaitID, clear bool) *http.Cookie {
	c := &http.Cookie{Name: WaitCookie, Value: string(wait), Path: path, MaxAge: int(a.cfg.WaitTTL / time.Second),
		Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if clear {
		c.Value, c.MaxAge = "", -1
	}
	return c
}
