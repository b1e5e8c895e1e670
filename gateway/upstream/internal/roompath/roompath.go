// Package roompath maps a request path inside a meeting room, as browsers
// see it through the gateway, to the rest of the path after the room.
//
// Adapters use it to forward only the endpoints a meeting server needs for
// one room; it never decides admission and never widens what the gateway's
// room pattern matched.
package roompath

import (
	"errors"
	"strings"
)

// Pattern is a room path pattern such as /lk/room/{room}.
type Pattern struct {
	prefix string // up to and including the slash before {room}
}

// Parse accepts the same patterns as the gateway's rooms.path.
func Parse(s string) (Pattern, error) {
	if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/{room}") || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
		return Pattern{}, errors.New("rooms.path must be a path whose last segment is {room}, like /room/{room}")
	}
	return Pattern{prefix: strings.TrimSuffix(s, "{room}")}, nil
}

// Rest returns what follows the room segment in a canonical path ("" for
// the room itself, or "/rtc/validate"), and false when path is not inside
// room. A path for another room is never inside room.
func (p Pattern) Rest(path, room string) (string, bool) {
	if room == "" {
		return "", false
	}
	after, ok := strings.CutPrefix(path, p.prefix+room)
	if !ok || (after != "" && after[0] != '/') {
		return "", false
	}
	return after, true
}

// Prefix is the part of the pattern before {room}.
func (p Pattern) Prefix() string { return p.prefix }
