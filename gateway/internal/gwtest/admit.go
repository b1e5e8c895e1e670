package gwtest

import (
	"context"

	"github.com/meetguard/meetguard/gateway/admission"
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

// AdmitRequest implements admission.Admitter.
func (r RoomRoles) AdmitRequest(_ context.Context, req admission.Request) (admission.Result, error) {
	if r.Deny[req.Room] {
		return admission.Result{Outcome: admission.Denied, UserMessage: "no"}, nil
	}
	role := r.Roles[req.Room]
	if role == "" {
		role = "participant"
	}
	return admission.Result{Outcome: admission.Admitted, Role: role, ParticipantID: ParticipantID(req.Identity.Subject, req.Room)}, nil
}

// ParticipantID is the id RoomRoles gives an admission.
func ParticipantID(subject, room string) string { return subject + "/" + room }
