package gateway

import (
	"context"
	"net/http/httputil"

	"github.com/meetguard/meetguard/gateway/identity"
)

// Participant is a caller the gateway let into a room, as an upstream adapter
// sees it.
type Participant struct {
	Identity      identity.Identity
	Upstream      string
	Room          string
	Role          string
	ParticipantID string
	// FromLobby is true when a host admitted the caller from the waiting
	// room (BigBlueButton marks such people as guests).
	FromLobby bool
}

// Adapter is what a meeting-server kind does once a person is admitted:
// mint the server's own credential and put it on the forwarded request,
// server-side, so it never reaches the browser. The generic kind needs no
// adapter; the assertion and identity headers are always set.
type Adapter interface {
	// Forward adjusts the outbound request for an admitted caller. For
	// requests outside any room (static assets), a is nil. An error refuses
	// the request (fail closed).
	Forward(ctx context.Context, pr *httputil.ProxyRequest, a *Participant) error
}

// JoinRedirector is an Adapter whose server is joined by sending the
// browser to a signed URL (BigBlueButton): a browser opening the room path
// is redirected there after admission.
type JoinRedirector interface {
	JoinURL(ctx context.Context, a Participant) (string, error)
}

// ParticipantRemover is an Adapter that can also remove a participant from
// the meeting server itself, so a kick stops media, not only signalling.
type ParticipantRemover interface {
	RemoveParticipant(ctx context.Context, a Participant) error
}
