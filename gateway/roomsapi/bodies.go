package roomsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// maxBody caps every request body of this API (far below the gateway's
// ceiling): the largest, a room's settings with every tag, is ~2 KiB.
const maxBody = 16 << 10

// bodyError is a request body the API refuses; Status is 400, 413 or 415.
type bodyError struct {
	Status int
	Field  string
	Msg    string
}

func (e *bodyError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

// readJSON decodes an optional JSON body into v: empty is fine, anything
// else must be application/json, one object, known fields only.
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &bodyError{Status: http.StatusRequestEntityTooLarge, Msg: "request body too large"}
		}
		return &bodyError{Status: http.StatusBadRequest, Msg: "cannot read request body"}
	}
	if len(b) > maxBody {
		return &bodyError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body larger than %d bytes", maxBody)}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	// Requiring JSON also keeps plain cross-site form posts out.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &bodyError{Status: http.StatusUnsupportedMediaType, Msg: "Content-Type must be application/json"}
	}
	return decodeStrict(b, v)
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &bodyError{Status: http.StatusBadRequest, Field: ute.Field, Msg: "wrong type, want " + ute.Type.String()}
		}
		return &bodyError{Status: http.StatusBadRequest, Msg: "invalid JSON: " + err.Error()}
	}
	if dec.More() {
		return &bodyError{Status: http.StatusBadRequest, Msg: "invalid JSON: data after the object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &bodyError{Status: http.StatusBadRequest, Msg: "invalid JSON: data after the object"}
	}
	return nil
}

// joinBody is POST rooms/{room}/join.
type joinBody struct {
	Passcode string `json:"passcode"`
}

func parseJoin(b joinBody) error {
	if len(b.Passcode) > rooms.MaxPasscodeLen {
		return &bodyError{Status: http.StatusBadRequest, Field: "passcode", Msg: fmt.Sprintf("at most %d bytes", rooms.MaxPasscodeLen)}
	}
	return nil
}

// settingsBody is PUT rooms/{room}: absent fields keep their value.
type settingsBody struct {
	Capacity     *int      `json:"capacity"`
	LobbyEnabled *bool     `json:"lobby_enabled"`
	Passcode     *string   `json:"passcode"`
	E2EERequired *bool     `json:"e2ee_required"`
	Tags         *[]string `json:"tags"`
	Locked       *bool     `json:"locked"`
}

// change checks the body against the rooms config and returns the store
// change, without the passcode (hashed only once the caller is allowed).
func (b settingsBody) change(cfg rooms.Config) (rooms.SettingsChange, error) {
	ch := rooms.SettingsChange{Capacity: b.Capacity, Locked: b.Locked, LobbyEnabled: b.LobbyEnabled, E2EERequired: b.E2EERequired, Tags: b.Tags}
	if err := ch.Validate(cfg); err != nil {
		var ie *rooms.InvalidError
		if errors.As(err, &ie) {
			return ch, &bodyError{Status: http.StatusBadRequest, Field: ie.Field, Msg: ie.Reason}
		}
		return ch, &bodyError{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	if b.Passcode != nil && len(*b.Passcode) > rooms.MaxPasscodeLen {
		return ch, &bodyError{Status: http.StatusBadRequest, Field: "passcode", Msg: fmt.Sprintf("at most %d bytes", rooms.MaxPasscodeLen)}
	}
	return ch, nil
}

// changedFields names what a settings body changes, for the audit record
// (never the passcode itself).
func (b settingsBody) changedFields() []string {
	var out []string
	add := func(present bool, name string) {
		if present {
			out = append(out, name)
		}
	}
	add(b.Capacity != nil, "capacity")
	add(b.LobbyEnabled != nil, "lobby_enabled")
	add(b.Passcode != nil, "passcode")
	add(b.E2EERequired != nil, "e2ee_required")
	add(b.Tags != nil, "tags")
	add(b.Locked != nil, "locked")
	return out
}

// removeBody is POST …/participants/{p}/remove and …/lobby/{w}/deny.
type removeBody struct {
	Ban    bool   `json:"ban"`
	Reason string `json:"reason"`
}

var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func parseRemove(b removeBody) error {
	if b.Reason != "" && !reasonCode.MatchString(b.Reason) {
		return &bodyError{Status: http.StatusBadRequest, Field: "reason", Msg: "must be a code of lower-case letters, digits and _ (at most 64)"}
	}
	return nil
}

// unbanBody is POST rooms/{room}/unban.
type unbanBody struct {
	Subject string `json:"subject"`
}

func parseUnban(b unbanBody) error {
	if err := rooms.SubjectKey(b.Subject).Validate(); err != nil {
		return &bodyError{Status: http.StatusBadRequest, Field: "subject", Msg: "must be a subject key as listed in the room's bans"}
	}
	return nil
}

// roleBody is POST …/participants/{p}/role.
type roleBody struct {
	Role   string `json:"role"`
	Reason string `json:"reason"`
}

// parseRole checks a role change. A host gives "participant" or "viewer";
// "host" is only ever the policy's to give (a host made by another host
// would hold every host power without the policy's say).
func parseRole(b roleBody) (rooms.Role, error) {
	switch rooms.Role(b.Role) {
	case rooms.RoleParticipant, rooms.RoleViewer:
	case rooms.RoleHost:
		return "", &bodyError{Status: http.StatusBadRequest, Field: "role", Msg: "hosts are made by the policy; a host may set participant or viewer"}
	case "":
		return "", &bodyError{Status: http.StatusBadRequest, Field: "role", Msg: "required: participant or viewer"}
	default:
		return "", &bodyError{Status: http.StatusBadRequest, Field: "role", Msg: "must be participant or viewer"}
	}
	if err := parseRemove(removeBody{Reason: b.Reason}); err != nil {
		return "", err
	}
	return rooms.Role(b.Role), nil
}
