package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Input is what the gateway tells the policy about one admission request. The
// gateway fills it from verified facts only: the validated token, its own room
// state and its own counters, never from unchecked client data. Its JSON form
// is published as policies/schema/input.json and policies are type-checked
// against it.
type Input struct {
	Identity Identity `json:"identity"`
	Room     Room     `json:"room"`
	Device   Device   `json:"device"`
	Request  Request  `json:"request"`
	History  History  `json:"history"`
}

// How an identity reached the gateway.
const (
	ViaSession = "session" // a gateway session cookie after an OIDC login
	ViaBearer  = "bearer"  // an API bearer token
)

// Identity is the signed-in person. Iss and Sub are empty when nobody is.
type Identity struct {
	Iss           string   `json:"iss"`
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	ACR           string   `json:"acr"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"` // Unix seconds
	Via           string   `json:"via"`       // ViaSession, ViaBearer or ""
}

// Room is the room being joined or created, from the gateway's room state.
type Room struct {
	ID               string   `json:"id"`
	Exists           bool     `json:"exists"`
	Owner            string   `json:"owner"`     // the owner's sub, same issuer as the identity
	Capacity         int      `json:"capacity"`  // 0: the policy's default applies
	Occupancy        int      `json:"occupancy"` // people in the room, not counting this request
	Locked           bool     `json:"locked"`
	LobbyEnabled     bool     `json:"lobby_enabled"`
	HostPresent      bool     `json:"host_present"`
	PasscodeRequired bool     `json:"passcode_required"`
	PasscodeOK       bool     `json:"passcode_ok"` // the gateway compared the passcode in constant time and it matched
	E2EERequired     bool     `json:"e2ee_required"`
	Tags             []string `json:"tags"`
	Banned           bool     `json:"banned"` // this identity is banned from this room
}

// Device is the requesting device's registered end-to-end key.
type Device struct {
	KeyRegistered  bool   `json:"key_registered"`
	KeyFingerprint string `json:"key_fingerprint"`
	PQ             bool   `json:"pq"` // the key has a post-quantum (ML-KEM) part
}

// Request is the HTTP request as the gateway saw it, after trusted-proxy
// handling of forwarded headers.
type Request struct {
	Time      time.Time `json:"time"` // the gateway's clock; policies use it instead of time.now_ns so replays agree
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Origin    string    `json:"origin"`
}

// History is recent activity counted by the gateway over the last
// WindowSeconds, not counting this request.
type History struct {
	WindowSeconds int             `json:"window_seconds"`
	Identity      Counters        `json:"identity"` // for this identity (iss, sub)
	IP            AddressCounters `json:"ip"`       // for this client address (IPv6: its /64)
	Room          RoomCounters    `json:"room"`     // for the room being joined
}

// AddressCounters are the client address's counts and standing. Its
// join_failures count only abuse indicators: passcode guesses by anyone
// and refusals of people the policy did not vouch for (decision.member).
type AddressCounters struct {
	Counters
	// Trusted: the address is in rooms.rate_limits.trusted_networks.
	Trusted bool `json:"trusted"`
	// Limited: the address reached its failure limit in this window.
	Limited bool `json:"limited"`
}

// RoomCounters are the room's passcode budget.
type RoomCounters struct {
	// PasscodeFailures in the room's passcode window, from anyone.
	PasscodeFailures int `json:"passcode_failures"`
	// PasscodeAttack: the room's budget is spent.
	PasscodeAttack bool `json:"passcode_attack"`
}

// Counters are join and failure counts within a history window.
type Counters struct {
	JoinAttempts     int `json:"join_attempts"`
	JoinFailures     int `json:"join_failures"`
	PasscodeFailures int `json:"passcode_failures"`
}

// maxInputBytes bounds an input document; real ones are well under 4 KiB.
const maxInputBytes = 1 << 20

// ParseInput reads one input document (for example an --input file) and
// rejects anything that is not exactly the input schema's shape: bad JSON,
// wrong types, unknown fields (a typo would otherwise silently read as
// false or empty), or trailing data. name labels errors, e.g. a file name.
func ParseInput(name string, data []byte) (Input, error) {
	return parseInput(name, data, true)
}

// parseInput is ParseInput with the choice to tolerate fields this version
// does not know, which replay needs for audit logs written by newer gateways.
func parseInput(name string, data []byte, strict bool) (Input, error) {
	var in Input
	fail := func(offset int64, field, msg string) (Input, error) {
		e := &InputError{File: name, Field: field, Msg: msg}
		e.Line, e.Column = lineCol(data, offset)
		return Input{}, e
	}
	if len(data) > maxInputBytes {
		return Input{}, &InputError{File: name, Msg: fmt.Sprintf("input is %d bytes, more than the %d allowed", len(data), maxInputBytes)}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return Input{}, &InputError{File: name, Msg: "input is empty"}
	}
	if trimmed[0] != '{' {
		return fail(int64(len(data)-len(trimmed)), "", "input must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&in); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &se):
			return fail(se.Offset, "", "invalid JSON: "+se.Error())
		case errors.As(err, &te):
			return fail(te.Offset, te.Field, fmt.Sprintf("must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value))
		case errors.As(err, &pe):
			return fail(dec.InputOffset(), "request.time", "must be an RFC 3339 time such as 2026-03-04T09:30:00Z")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fail(int64(len(data)), "", "invalid JSON: unexpected end of input")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			// The decoder stops after the field's value; point at its key.
			off := dec.InputOffset()
			if i := bytes.LastIndex(data[:min(off, int64(len(data)))], []byte(`"`+field+`"`)); i >= 0 {
				off = int64(i) + 1
			}
			return fail(off, field, "unknown field (not in policies/schema/input.json)")
		default:
			return fail(dec.InputOffset(), "", err.Error())
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(dec.InputOffset(), "", "unexpected data after the input object")
	}
	return in, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "int", "int64":
		return "a whole number"
	case "slice":
		return "a list"
	case "struct":
		return "an object"
	}
	return goKind
}
