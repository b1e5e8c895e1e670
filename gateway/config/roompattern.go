package config

import (
	"errors"
	"strings"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// RoomPattern says which request paths belong to which meeting room: the
// pattern /room/{room} owns /room/abc and everything below it.
type RoomPattern struct {
	prefix string // up to and including the slash before {room}
}

// ParseRoomPattern accepts a path whose last segment is {room}.
func ParseRoomPattern(s string) (RoomPattern, error) {
	if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/{room}") || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
		return RoomPattern{}, errors.New("must be a path whose last segment is {room}, like /room/{room}")
	}
	return RoomPattern{prefix: strings.TrimSuffix(s, "{room}")}, nil
}

// Room returns the room a canonical path belongs to, if any.
func (p RoomPattern) Room(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, p.prefix)
	if !ok || rest == "" {
		return "", false
	}
	room, _, _ := strings.Cut(rest, "/")
	if !ValidRoomID(room) {
		return "", false
	}
	return room, true
}

// ValidRoomID limits room IDs to what is safe in a path, a header, a log line
// and a Redis key; it is rooms.ValidateRoomID, the one rule for room IDs.
func ValidRoomID(id string) bool {
	return rooms.ValidateRoomID(id) == nil
}

// Owns reports whether path is at or below the room prefix, valid room or
// not, so that the gateway never forwards a malformed room path.
func (p RoomPattern) Owns(path string) bool {
	return strings.HasPrefix(path, p.prefix)
}
