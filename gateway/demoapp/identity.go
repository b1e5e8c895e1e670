package demoapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Headers the gateway sets on every request it forwards.
const (
	HeaderUser      = "X-Meetguard-User"
	HeaderEmail     = "X-Meetguard-Email"
	HeaderRole      = "X-Meetguard-Role"
	HeaderRoom      = "X-Meetguard-Room"
	HeaderAssertion = "X-Meetguard-Assertion"
)

// Errors an AssertionVerifier returns, wrapped; they decide the status.
var (
	ErrAssertionInvalid  = errors.New("gateway assertion is missing or invalid") // 401
	ErrAssertionKeysDown = errors.New("gateway assertion keys are unavailable")  // 503
)

var (
	errNoIdentity       = errors.New("no identity headers: this app must be reached through the meetguard gateway")
	errIdentityMismatch = errors.New("identity headers disagree with the room or the assertion")
)

// Roles the gateway assigns; anything else is treated as the least
// privileged one.
const (
	RoleHost        = "host"
	RoleParticipant = "participant"
	RoleViewer      = "viewer"
)

// Assertion is what the gateway's signed assertion says about the request.
type Assertion struct {
	Subject string
	Email   string
	Name    string
	Groups  []string
	Room    string
	Role    string
}

// AssertionVerifier checks a raw X-Meetguard-Assertion value. It returns an
// error wrapping ErrAssertionInvalid when the assertion must be refused, or
// ErrAssertionKeysDown when it cannot be checked right now.
type AssertionVerifier func(ctx context.Context, raw string) (Assertion, error)

// identity is who a request is from, as far as the gateway vouches.
type identity struct {
	User     string // X-Meetguard-User, or the assertion's subject
	Name     string // from the assertion; empty without one
	Email    string
	Role     string // host, participant or viewer
	Verified bool   // the gateway's signed assertion was checked
}

// Display is the name shown to others in the room.
func (id identity) Display() string {
	switch {
	case id.Name != "":
		return id.Name
	case id.User != "":
		return id.User
	}
	return id.Email
}

// identify reads the gateway's headers for a request to room.
func (a *App) identify(ctx context.Context, h http.Header, room string) (identity, error) {
	id := identity{
		User:  headerValue(h, HeaderUser),
		Email: headerValue(h, HeaderEmail),
		Role:  headerValue(h, HeaderRole),
	}
	headerRoom := headerValue(h, HeaderRoom)
	if headerRoom != "" && headerRoom != room {
		return identity{}, fmt.Errorf("%w: %s says room %q, path says %q", errIdentityMismatch, HeaderRoom, headerRoom, room)
	}
	if a.verify != nil {
		raw := h.Get(HeaderAssertion)
		if raw == "" {
			return identity{}, fmt.Errorf("%w: no %s header", ErrAssertionInvalid, HeaderAssertion)
		}
		as, err := a.verify(ctx, raw)
		if err != nil {
			return identity{}, err
		}
		switch {
		case as.Room != room:
			return identity{}, fmt.Errorf("%w: assertion is for room %q, path says %q", errIdentityMismatch, as.Room, room)
		case id.Email != "" && id.Email != as.Email:
			return identity{}, fmt.Errorf("%w: %s differs from the assertion", errIdentityMismatch, HeaderEmail)
		case id.Role != "" && id.Role != as.Role:
			return identity{}, fmt.Errorf("%w: %s differs from the assertion", errIdentityMismatch, HeaderRole)
		}
		id = identity{User: id.User, Name: clean(as.Name), Email: clean(as.Email), Role: as.Role, Verified: true}
		if id.User == "" {
			id.User = clean(as.Subject)
		}
	}
	if id.User == "" && id.Email == "" {
		return identity{}, errNoIdentity
	}
	switch id.Role {
	case RoleHost, RoleParticipant, RoleViewer:
	default:
		id.Role = RoleViewer
	}
	return id, nil
}

// statusFor maps identify errors to HTTP statuses.
func statusFor(err error) int {
	switch {
	case errors.Is(err, errNoIdentity), errors.Is(err, ErrAssertionInvalid):
		return http.StatusUnauthorized
	case errors.Is(err, ErrAssertionKeysDown):
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

const maxIdentityLen = 256

// headerValue returns a header's single value, cleaned for display. A
// repeated identity header is treated as absent: the gateway sets each once.
func headerValue(h http.Header, name string) string {
	vals := h.Values(name)
	if len(vals) != 1 {
		return ""
	}
	return clean(vals[0])
}

// clean makes a string safe to show and at most maxIdentityLen characters.
func clean(s string) string {
	s = sanitize(s)
	if utf8.RuneCountInString(s) > maxIdentityLen {
		s = string([]rune(s)[:maxIdentityLen])
	}
	return s
}

// sanitize returns valid UTF-8 without control or format characters (bidi
// overrides could disguise a name or a message), trimmed.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	return strings.TrimSpace(s)
}
