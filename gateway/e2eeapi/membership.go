package e2eeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// Membership tells the key exchange who is in a room. The rooms API implements it; the e2ee endpoints ask it
// before anything reaches the room's Authority.
type Membership interface {
	// Member returns the caller's admission to room (from its room ticket), or an error when the caller is not
	// a member. Waiting-room callers are not members. An error wrapping rooms.ErrStoreUnavailable is answered
	// 503, any other 403.
	Member(r *http.Request, room string) (admission.Participant, error)
	// CanRegisterKey returns nil when the caller may register a device key for room: it is a member, or the
	// admission policy would admit it once its key is registered (an e2ee_required room admits no one without
	// a registered key, so registration must come first).
	CanRegisterKey(r *http.Request, room string) error
}

// RoleForecaster is what a Membership may also implement: the role the policy would grant a caller that is not
// a member yet, once its key is registered. A credential names its holder's role and cannot be changed later,
// so without it a key registered before admission is issued for RoleParticipant, and a caller admitted with
// another role must register again (the mismatch is refused and audited, never silently accepted).
type RoleForecaster interface {
	ForecastRole(r *http.Request, room string) (string, error)
}

// TicketRenewer is what a Membership may also implement: room tickets are short-lived (rooms.ticket_ttl, 5
// minutes by default) and a meeting is not, while a member's key exchange is the one thing it keeps calling.
// After Member admitted a request, the handler asks RenewTicket to renew the caller's ticket on w once half its
// life is gone (a browser's ticket cookies, an app's Meetguard-Ticket response header). Without it, a member's
// key requests are refused once its ticket expires, and no epoch after that reaches it.
type TicketRenewer interface {
	RenewTicket(w http.ResponseWriter, r *http.Request, room string, p admission.Participant)
}

// RoomState is the part of the rooms store the key exchange follows: its events (kicks, bans, leaves, lapsed
// leases, lock changes) and the room itself, to reconcile the roster with who is admitted. rooms.Store
// implements it.
type RoomState interface {
	Subscribe(ctx context.Context) (<-chan rooms.Event, error)
	Room(ctx context.Context, id string) (rooms.Room, error)
}

// TicketHeader carries a room ticket on API requests. The gateway never forwards it upstream.
const TicketHeader = "Meetguard-Ticket"

// TicketMembership is a Membership over the rooms store alone: a member is a caller whose room ticket (in
// TicketHeader) verifies for the room and its session and whose admission is still live (Store.Touch). It
// lets only members register keys: it cannot know what the policy would decide, so rooms that require e2ee
// need the rooms API's Membership, which can.
type TicketMembership struct {
	Store interface {
		Touch(context.Context, string, rooms.ParticipantID) (rooms.Participant, error)
	}
	Tickets *rooms.Tickets
}

// Member implements Membership.
func (m TicketMembership) Member(r *http.Request, room string) (admission.Participant, error) {
	id, ok := identity.From(r.Context())
	if !ok {
		return admission.Participant{}, errors.New("e2eeapi: no verified identity")
	}
	token := r.Header.Get(TicketHeader)
	if token == "" {
		return admission.Participant{}, fmt.Errorf("e2eeapi: no room ticket")
	}
	t, err := m.Tickets.Verify(token, room, id.SessionID)
	if err != nil {
		return admission.Participant{}, err
	}
	p, err := m.Store.Touch(r.Context(), room, t.Participant)
	if err != nil {
		return admission.Participant{}, err
	}
	if p.Subject != rooms.SubjectKey(id.Key()) {
		return admission.Participant{}, fmt.Errorf("e2eeapi: ticket of another subject: %w", rooms.ErrTicketInvalid)
	}
	return admission.Participant{Identity: id, Room: room, Role: string(p.Role), ParticipantID: string(p.ID)}, nil
}

// CanRegisterKey implements Membership: members only.
func (m TicketMembership) CanRegisterKey(r *http.Request, room string) error {
	_, err := m.Member(r, room)
	return err
}
