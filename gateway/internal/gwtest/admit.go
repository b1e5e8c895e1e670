package gwtest

import (
	"context"

	"github.com/meetguard/meetguard/gateway"
)

// RoomRoles admits every caller to every room, with the role set for the
// room ("participant" when unset), and refuses rooms in Deny. The
// participant id is subject/room, so each person has one admission per
// room. Tests of what happens after a decision use it; the policy engine
// has its own tests.
type RoomRoles struct {
	Roles map[string]string
	Deny  map[string]bool
}

// AdmitRequest implements gateway.Admitter.
func (r RoomRoles) AdmitRequest(_ context.Context, req gateway.RoomRequest) (gateway.Admission, error) {
	if r.Deny[req.Room] {
		return gateway.Admission{Outcome: gateway.Denied, UserMessage: "no"}, nil
	}
	role := r.Roles[req.Room]
	if role == "" {
		role = "participant"
	}
	return gateway.Admission{Outcome: gateway.Admitted, Role: role, ParticipantID: ParticipantID(req.Identity.Subject, req.Room)}, nil
}

// ParticipantID is the id RoomRoles gives an admission.
func ParticipantID(subject, room string) string { return subject + "/" + room }
