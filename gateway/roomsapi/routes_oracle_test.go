package roomsapi

import (
	"net/http"
	"strings"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// handWrittenRoute is the parser the API used before the ServeMux patterns,
// kept as the oracle the router must agree with. Room ids must
// be valid both as a gateway room path segment and as a store key; wait and
// participant ids must have the shape the store issues (anything else
// cannot exist, and is answered like an unknown one).
func handWrittenRoute(method, path string) (route, error) {
	rest, ok := strings.CutPrefix(path, Prefix)
	if !ok || rest == "" {
		return route{}, errNoRoute
	}
	seg := strings.Split(rest, "/")
	if len(seg) > 5 {
		return route{}, errNoRoute
	}
	room := seg[0]
	if !config.ValidRoomID(room) || rooms.ValidateRoomID(room) != nil {
		return route{}, errBadRoom
	}
	rt := route{room: room}
	want := http.MethodPost
	switch {
	case len(seg) == 1:
		switch method {
		case http.MethodGet, http.MethodHead:
			rt.op = opGetRoom
		case http.MethodPut:
			rt.op = opPutRoom
		default:
			return route{}, &methodError{allow: "GET, PUT"}
		}
		return rt, nil
	case len(seg) == 2 && (seg[1] == "console" || seg[1] == "events" || seg[1] == "activity"):
		rt.op, want = opConsole, http.MethodGet
		switch seg[1] {
		case "events":
			rt.op = opEvents
		case "activity":
			rt.op = opActivity
		}
	case len(seg) == 2:
		switch seg[1] {
		case "join":
			rt.op = opJoin
		case "leave":
			rt.op = opLeave
		case "lock":
			rt.op = opLock
		case "unlock":
			rt.op = opUnlock
		case "suspend":
			rt.op = opSuspend
		case "unban":
			rt.op = opUnban
		default:
			return route{}, errNoRoute
		}
	case len(seg) == 3 && seg[1] == "wait":
		rt.op, rt.wait, want = opWait, rooms.WaitID(seg[2]), http.MethodGet
		if rt.wait.Validate() != nil {
			return route{}, errNoRoute
		}
	case len(seg) == 4 && seg[1] == "lobby" && (seg[3] == "admit" || seg[3] == "deny"):
		rt.op, rt.wait = opLobbyAdmit, rooms.WaitID(seg[2])
		if seg[3] == "deny" {
			rt.op = opLobbyDeny
		}
		if rt.wait.Validate() != nil {
			return route{}, errNoRoute
		}
	case len(seg) == 4 && seg[1] == "participants" && (seg[3] == "remove" || seg[3] == "role"):
		rt.op, rt.participant = opRemove, rooms.ParticipantID(seg[2])
		if seg[3] == "role" {
			rt.op = opRole
		}
		if rt.participant.Validate() != nil {
			return route{}, errNoRoute
		}
	default:
		return route{}, errNoRoute
	}
	if method != want && !(want == http.MethodGet && method == http.MethodHead) {
		return route{}, &methodError{allow: want}
	}
	return rt, nil
}
