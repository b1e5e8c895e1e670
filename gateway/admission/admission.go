// Package admission is the contract between the gateway's edge and the parts
// that decide and carry out room access: the admitter (roomsapi, with the
// policy engine behind it) that says whether a person may enter a room, and
// the upstream adapters that turn an admitted person into a meeting server's
// own credential.
//
// It is a leaf: it imports nothing of the gateway but the identity type, so
// roomsapi, e2eeapi and the upstream adapters depend on this small package
// and never on the edge that calls them.
package admission

import (
	"context"
	"net/http"
	"net/http/httputil"

	"github.com/meetguard/meetguard/gateway/identity"
)

// Outcome is what admission decided.
type Outcome int

const (
	// Denied: the caller does not get in.
	Denied Outcome = iota
	// Admitted: the caller gets in with Role.
	Admitted
	// Waiting: the caller waits in the lobby for a host.
	Waiting
)

// Request is one attempt to reach a room path.
type Request struct {
	Identity identity.Identity
	Upstream string
	Room     string
	HTTP     *http.Request
}

// Result is the outcome for one Request.
type Result struct {
	Outcome Outcome
	Role    string
	// ParticipantID names this admission so that kick and ban can find its
	// connections.
	ParticipantID string
	// UserMessage is all the caller may be told.
	UserMessage string
	// WaitID identifies the caller's place in the lobby when Waiting.
	WaitID string
	// Cookies are set on the response when Admitted (e.g. a room ticket).
	Cookies []*http.Cookie
	// Respond, when set for Waiting or Denied, writes the whole answer
	// instead of the gateway's default page or JSON (e.g. a waiting page
	// that follows the lobby, or a passcode form).
	Respond http.HandlerFunc
}

// Admitter decides room access. An error means no decision could be made;
// the gateway then refuses (fail closed).
type Admitter interface {
	AdmitRequest(ctx context.Context, req Request) (Result, error)
}

// Rechecker is an optional interface of an Admitter, found by type
// assertion. A WebSocket is admitted when its handshake arrives, but becomes
// a live connection (one a kick can find and cut) only once the upstream
// answered 101 and the connection was taken over. A kick or ban landing in
// between would find nothing to close; so right after the takeover, before
// any byte is spliced, the gateway asks again.
type Rechecker interface {
	// RecheckAdmission returns nil if p is still admitted. Any error,
	// including failing to find out, closes the connection (fail closed).
	RecheckAdmission(ctx context.Context, p Participant) error
}

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
	// the request (fail closed): nothing is sent upstream.
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

// RoleUpdater is an Adapter that can change a connected participant's
// rights on the meeting server itself (a.Role is the new role), so a role
// a host changes takes effect at once, without a reconnect.
type RoleUpdater interface {
	UpdateRole(ctx context.Context, a Participant) error
}
