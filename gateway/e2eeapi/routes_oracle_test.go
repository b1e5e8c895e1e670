package e2eeapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// handWrittenRoute is how Wrap and ServeHTTP routed before the ServeMux patterns (path sniffing, then the
// endpoint's method check), kept as the oracle the router must agree with.
func handWrittenRoute(method, p string) (route, error) {
	if handWrittenIsE2EEPath(p) {
		room, name, err := handWrittenParsePath(p)
		if err != nil {
			return route{dest: destEndpoint}, errNoRoute
		}
		if methods := strings.Fields(endpoints[name].method); !slices.Contains(methods, method) {
			return route{dest: destEndpoint}, &methodError{allow: strings.Join(methods, ", "), use: strings.Join(methods, " or ")}
		}
		return route{dest: destEndpoint, room: room, name: name}, nil
	}
	if handWrittenIsMeetingPath(p) {
		if method != http.MethodGet && method != http.MethodHead {
			return route{dest: destMeeting}, &methodError{allow: "GET, HEAD", use: "GET"}
		}
		return route{dest: destMeeting, room: strings.TrimSuffix(strings.TrimPrefix(p, roomsPrefix), web.MeetingSuffix)}, nil
	}
	return route{}, nil
}

// handWrittenIsE2EEPath reports whether an escaped, canonical request path is below some room's e2ee
// endpoints, whether or not the rest of it is valid: such a path is this package's to answer.
func handWrittenIsE2EEPath(p string) bool {
	rest, ok := strings.CutPrefix(p, roomsPrefix)
	if !ok {
		return false
	}
	_, after, ok := strings.Cut(rest, "/")
	return ok && (after == "e2ee" || strings.HasPrefix(after, "e2ee/"))
}

// handWrittenParsePath splits an escaped request path into room and endpoint name. Room IDs use only
// characters that need no escaping (rooms.ValidateRoomID), so the escaped path is the path.
func handWrittenParsePath(p string) (room, name string, err error) {
	rest, ok := strings.CutPrefix(p, roomsPrefix)
	if !ok {
		return "", "", fmt.Errorf("path: not below %s", roomsPrefix)
	}
	room, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("path: no endpoint")
	}
	if err := rooms.ValidateRoomID(room); err != nil {
		return "", "", fmt.Errorf("path: room: %w", err)
	}
	name, ok = strings.CutPrefix(rest, "e2ee/")
	if !ok {
		return "", "", fmt.Errorf("path: not an e2ee endpoint")
	}
	if _, known := endpoints[name]; !known {
		return "", "", fmt.Errorf("path: unknown endpoint %q", name)
	}
	return room, name, nil
}

// handWrittenIsMeetingPath reports whether an escaped, canonical path is some room's meeting page.
func handWrittenIsMeetingPath(p string) bool {
	rest, ok := strings.CutPrefix(p, roomsPrefix)
	if !ok {
		return false
	}
	room, ok := strings.CutSuffix(rest, web.MeetingSuffix)
	return ok && !strings.Contains(room, "/")
}
