package roomsapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// Member returns the caller's admission to room, for other gateway APIs
// (end-to-end keys) mounted behind the gateway's authentication: a ticket
// for room (Meetguard-Ticket header or the API ticket cookie) that verifies
// for the caller and whose admission still stands, renewed by Touch.
// Waiting-room clients are not members. Errors wrap ErrNotMember, or
// rooms.ErrStoreUnavailable when the state could not be read (answer 503).
func (a *API) Member(r *http.Request, room string) (admission.Participant, error) {
	id, ok := identity.From(r.Context())
	if !ok {
		return admission.Participant{}, fmt.Errorf("%w: no verified identity", ErrNotMember)
	}
	if err := rooms.ValidateRoomID(room); err != nil {
		return admission.Participant{}, fmt.Errorf("%w: %w", ErrNotMember, err)
	}
	held, err := a.heldTicket(r.Context(), r, room, id)
	var nt *noTicketError
	if errors.As(err, &nt) {
		return admission.Participant{}, fmt.Errorf("%w: no valid ticket for room %s", ErrNotMember, room)
	} else if err != nil {
		return admission.Participant{}, err
	}
	return admission.Participant{Identity: id, Room: room, Role: string(held.participant.Role), ParticipantID: string(held.participant.ID)}, nil
}

// ForecastRole is the role the caller has in room (a member) or would get
// from the policy once its device key is registered, so an end-to-end key
// credential can name it before admission. Errors are CanRegisterKey's.
func (a *API) ForecastRole(r *http.Request, room string) (string, error) {
	if p, err := a.Member(r, room); err == nil {
		return p.Role, nil
	} else if !errors.Is(err, ErrNotMember) {
		return "", err
	}
	d, err := a.keyedDecision(r, room)
	if err != nil {
		return "", err
	}
	if !keyOpens(d) {
		return "", fmt.Errorf("%w: the policy would not admit the caller to room %s", ErrNotMember, room)
	}
	if d.Role == "" {
		return policy.RoleParticipant, nil
	}
	return d.Role, nil
}

// CanRegisterKey reports whether the caller may register an end-to-end key
// for room: nil when it is a member, or when the policy would let it in
// once its device key is registered (evaluated with device.key_registered
// true; nothing is counted or changed). A lobby or deny decision is an
// error wrapping ErrNotMember. A required passcode does not block it: the
// passcode is checked when the caller joins, and without the key it could
// never join an end-to-end encrypted room.
func (a *API) CanRegisterKey(r *http.Request, room string) error {
	_, err := a.Member(r, room)
	if err == nil || !errors.Is(err, ErrNotMember) {
		return err
	}
	d, derr := a.keyedDecision(r, room)
	if derr != nil {
		return derr
	}
	if keyOpens(d) {
		return nil
	}
	return fmt.Errorf("%w: the policy would not admit the caller to room %s", ErrNotMember, room)
}

// keyedDecision asks the policy about the caller as if its device key were
// registered, without counting or changing anything.
func (a *API) keyedDecision(r *http.Request, room string) (policy.Decision, error) {
	id, ok := identity.From(r.Context())
	if !ok {
		return policy.Decision{}, fmt.Errorf("%w: no verified identity", ErrNotMember)
	}
	if err := rooms.ValidateRoomID(room); err != nil {
		return policy.Decision{}, fmt.Errorf("%w: %w", ErrNotMember, err)
	}
	ctx := r.Context()
	facts, err := a.o.Store.Facts(ctx, room, subjectKey(id))
	if err != nil {
		return policy.Decision{}, a.storeFailure(ctx, "facts", err)
	}
	dev, err := a.device(ctx, room, id)
	if err != nil {
		return policy.Decision{}, err
	}
	dev.KeyRegistered = true
	return a.decide(ctx, policy.Input{
		Identity: policyIdentity(id), Room: policyRoom(room, facts, id, false), Device: dev, Request: policyRequest(r),
	}), nil
}

// keyOpens: the decision admits, or refuses only for want of the passcode
// (checked at join).
func keyOpens(d policy.Decision) bool {
	return d.Allow || (!d.Lobby && len(d.Reasons) > 0 && !slices.ContainsFunc(d.Reasons, func(s string) bool { return s != "passcode_required" }))
}

// RenewTicket gives the caller a fresh ticket for room once the one it
// presented has used half its life, as a room-path request through the
// proxy does for a browser. A meeting outlasts rooms.ticket_ttl, and the
// end-to-end key exchange is what a meeting page or an app keeps calling
// while its one signalling connection stays open: without this, every
// member's key requests were refused once its ticket expired, and no epoch
// after that (a kick's) reached anyone. Call it only once Member admitted
// the request, with the admission it returned (so a removed member is never
// renewed). A browser gets new ticket cookies (Set-Cookie); an app that sent
// one Meetguard-Ticket gets the new ticket in the Meetguard-Ticket response
// header, bound like the old one to its session or subject.
func (a *API) RenewTicket(w http.ResponseWriter, r *http.Request, room string, p admission.Participant) {
	cands := ticketCandidates(r, room)
	if len(cands) == 0 || (cands[0].source == fromHeader && len(cands) != 1) {
		return // several header tickets: which one to renew is the app's business
	}
	c := cands[0]
	t, err := a.o.Tickets.Verify(c.token, room, binding(p.Identity))
	if err != nil || string(t.Participant) != p.ParticipantID {
		return
	}
	if timeLeft(t) >= a.o.Tickets.TTL()/2 && string(t.Role) == p.Role {
		return
	}
	tok, exp, err := a.o.Tickets.Issue(room, rooms.Participant{ID: rooms.ParticipantID(p.ParticipantID), Role: rooms.Role(p.Role)}, binding(p.Identity))
	if err != nil {
		return // the old ticket still works until it expires
	}
	if c.source == fromHeader {
		w.Header().Set(TicketHeader, tok)
		return
	}
	for _, ck := range a.ticketCookies(room, tok, exp, a.roomPaths(room)) {
		http.SetCookie(w, ck)
	}
}
