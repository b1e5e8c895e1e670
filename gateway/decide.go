package gateway

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/identity"
)

// decision is everything decide established about one request for a
// proxied path: the route, the caller, the room admission and the signed
// assertion. Either it refuses (refusal.kind != passes), or it passes and
// an entry point carries it out: the proxy forwards the request, forward-auth
// tells the front proxy which headers to copy.
type decision struct {
	// kind labels the request in metrics and the access log ("room",
	// "proxy", "unauthenticated", ...).
	kind    string
	refusal refusal
	up      *upstream
	// id is the authenticated caller (zero before authentication).
	id identity.Identity
	// room and role are set when the path is a room and the caller was
	// admitted; participant is the admission as adapters see it.
	room, role  string
	participant *admission.Participant
	// cookies are set on the answer of an admitted request (room tickets).
	cookies []*http.Cookie
	// joinURL, when set, is where a browser joins the room (a
	// JoinRedirector's signed URL): it is sent there instead of forwarded.
	joinURL string
	// assertion is the signed statement of who was admitted.
	assertion string
	// webSocket: the request is a complete WebSocket handshake.
	webSocket bool
}

// refusalKind is why a request does not pass.
type refusalKind int

const (
	passes refusalKind = iota
	// refusedNotFound: no upstream serves the path, or it lies below a
	// room prefix without naming a valid room.
	refusedNotFound
	// refusedUnauthenticated: no valid credential; err says which.
	refusedUnauthenticated
	// refusedForeignOrigin: a browser request another site started.
	refusedForeignOrigin
	// refusedUnavailable: no decision could be made (fail closed); msg is
	// what the caller is told.
	refusedUnavailable
	// refusedAdmission: the admitter denied or made the caller wait;
	// admission holds its answer.
	refusedAdmission
)

// refusal says why and how a request was refused. Its log line and audit
// record were written when it was decided; entry points only render it.
type refusal struct {
	kind      refusalKind
	err       error
	msg       string
	admission admission.Result
}

// Messages of the refusals that fail closed.
const (
	msgMeetingUnavailable = "The meeting cannot be reached right now. Please try again shortly."
	msgSignInUnavailable  = "Sign-in is unavailable right now. Please try again shortly."
	msgAssertionFailed    = "The meeting cannot be reached right now."
)

// decide routes, authenticates, checks the origin, runs room admission and
// signs the assertion for a request r whose path is the canonical path
// (the edge checked it and any upgrade). It writes the log lines and audit
// records of what it decided, but nothing to the caller: every entry point
// (the proxy, forward-auth) renders the same decision its own way.
func (g *Gateway) decide(r *http.Request, path string, webSocket bool) decision {
	ctx := r.Context()
	d := decision{kind: "not_found", webSocket: webSocket}
	up := g.route(path)
	if up == nil || isOwnPath(path) {
		// The proxy routes its own paths elsewhere before deciding; a
		// front proxy asking about one is told it is not a meeting path.
		d.refusal = refusal{kind: refusedNotFound}
		return d
	}
	d.up = up
	id, err := g.opts.Auth.Authenticate(r)
	if err != nil {
		d.kind, d.refusal = "unauthenticated", g.authFailure(r, err)
		return d
	}
	d.id = id
	if err := originCheck(g.now().origins, r, id, false); err != nil {
		g.noteForeignOrigin(r, id)
		d.kind, d.refusal = "foreign_origin", refusal{kind: refusedForeignOrigin}
		return d
	}
	d.kind = "proxy"
	if room, ok := up.rooms.Room(path); ok {
		d.kind = "room"
		adm, err := g.opts.Admitter.AdmitRequest(ctx, admission.Request{Identity: id, Upstream: up.cfg.Name, Room: room, HTTP: r})
		if err != nil {
			g.opts.Logger.Error("admission failed closed", zap.String("room", room), zap.Error(err))
			d.refusal = refusal{kind: refusedUnavailable, msg: msgMeetingUnavailable}
			return d
		}
		if adm.Outcome != admission.Admitted {
			d.refusal = refusal{kind: refusedAdmission, admission: adm}
			return d
		}
		d.cookies = adm.Cookies
		d.room, d.role = room, adm.Role
		d.participant = &admission.Participant{Identity: id, Upstream: up.cfg.Name, Room: room, Role: adm.Role, ParticipantID: adm.ParticipantID}
		if jr, ok := g.opts.Adapters[up.cfg.Name].(admission.JoinRedirector); ok && wantsHTML(r) {
			target, err := jr.JoinURL(ctx, *d.participant)
			if err != nil {
				g.opts.Logger.Error("adapter join failed closed", zap.String("upstream", up.cfg.Name), zap.String("room", room), zap.Error(err))
				d.refusal = refusal{kind: refusedUnavailable, msg: msgMeetingUnavailable}
				return d
			}
			d.joinURL = target
			return d
		}
	} else if up.rooms.Owns(path) {
		// Below the room prefix but not a valid room ID: never forward
		// something that might be read as a room by the upstream.
		d.refusal = refusal{kind: refusedNotFound}
		return d
	}
	tok, err := g.opts.Assertion.For(id, up.cfg.Name, d.room, d.role)
	if err != nil {
		g.opts.Logger.Error("sign assertion", zap.Error(err))
		d.refusal = refusal{kind: refusedUnavailable, msg: msgAssertionFailed}
		return d
	}
	d.assertion = tok
	return d
}

// authFailure turns an authentication error into its refusal, writing the
// log line (identity provider failures) or the auth.rejected count (a
// refused bearer credential).
func (g *Gateway) authFailure(r *http.Request, err error) refusal {
	if errors.Is(err, auth.ErrProviderUnavailable) {
		return refusal{kind: refusedUnavailable, msg: msgSignInUnavailable}
	}
	if !errors.Is(err, auth.ErrNoCredentials) && !errors.Is(err, auth.ErrSessionEnded) && !errors.Is(err, auth.ErrInvalidToken) {
		g.opts.Logger.Error("authentication failed closed", zap.Error(err))
		return refusal{kind: refusedUnavailable, msg: msgSignInUnavailable}
	}
	g.auditAuthRejected(r, err)
	return refusal{kind: refusedUnauthenticated, err: err}
}

// isOwnPath reports a path in the gateway's own areas, never an upstream's.
func isOwnPath(path string) bool {
	return strings.HasPrefix(path, ownPrefix) || strings.HasPrefix(path, wellKnownPrefix)
}
