package e2eeapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// dest is whose answer a request is.
type dest int

const (
	destNext     dest = iota // not this package's: the wrapped handler answers
	destEndpoint             // an e2ee endpoint (or the JSON refusal of one)
	destMeeting              // the meeting page (or its 405)
)

// route is where a request goes: for destEndpoint the room and endpoint name, for destMeeting the room as it
// stands in the path (serveMeeting refuses an invalid one with the refusal page).
type route struct {
	dest dest
	room string
	name string
}

var (
	errNoRoute     = errors.New("e2eeapi: no such endpoint")
	errWrongMethod = errors.New("e2eeapi: method not allowed")
)

// methodError carries what a 405 says: the Allow header and the methods named in its message.
type methodError struct{ allow, use string }

func (e *methodError) Error() string { return errWrongMethod.Error() }
func (e *methodError) Unwrap() error { return errWrongMethod }

// router maps a request to its destination with one http.ServeMux of method and wildcard patterns, built
// from the endpoints table. The edge in front has canonicalised the path; the mux only matches, it never
// answers: its own plain-text 404 and 405 (and its redirects for unclean paths) are replaced by the JSON
// refusals this package has always given, decided in resolve in the order it has always used (unknown
// endpoint or bad room, then wrong method).
type router struct{ mux *http.ServeMux }

// routeKey is the context key under which match passes its result to the pattern handlers.
type routeKey struct{}

// matched is what a pattern handler found.
type matched struct {
	ok   bool
	area bool // matched only by the e2ee area, not by an endpoint
	rt   route
	err  error
}

// target is the handler of one pattern.
type target struct {
	dest dest
	name string // endpoint name ("" for the e2ee area and the meeting page)
	// method is the endpoint's method: the mux lets a GET pattern take HEAD, the e2ee endpoints never did.
	method string
}

func (t target) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	m, ok := r.Context().Value(routeKey{}).(*matched)
	if !ok {
		return
	}
	room := r.PathValue("room")
	switch {
	case t.dest == destMeeting:
		m.ok, m.rt = true, route{dest: destMeeting, room: room}
	case t.name == "":
		// Below some room's e2ee path but no endpoint: this package's to refuse.
		m.ok, m.area, m.rt, m.err = true, true, route{dest: destEndpoint}, errNoRoute
	case r.Method != t.method:
		// HEAD on a GET endpoint: answered as an unmatched method.
	case rooms.ValidateRoomID(room) != nil:
		m.ok, m.rt, m.err = true, route{dest: destEndpoint}, errNoRoute
	default:
		m.ok, m.rt = true, route{dest: destEndpoint, room: room, name: t.name}
	}
}

func newRouter() *router {
	m := http.NewServeMux()
	for name, ep := range endpoints {
		for _, method := range strings.Fields(ep.method) {
			m.Handle(method+" "+roomsPrefix+"{room}/e2ee/"+name, target{dest: destEndpoint, name: name, method: method})
		}
	}
	// Everything else below a room's e2ee path is this package's to refuse, whatever the method.
	m.Handle(roomsPrefix+"{room}/e2ee", target{dest: destEndpoint})
	m.Handle(roomsPrefix+"{room}/e2ee/{rest...}", target{dest: destEndpoint})
	m.Handle(http.MethodGet+" "+roomsPrefix+"{room}"+web.MeetingSuffix, target{dest: destMeeting})
	return &router{mux: m}
}

// unclean stands in for an empty, "." or ".." segment, which no route takes: the mux would redirect to the
// cleaned path instead of matching. As a room or endpoint name it is as invalid as what it replaces.
const unclean = "%"

// resolve maps method and escaped path to a destination. It routes on the escaped path, as this package
// always has: room ids need no escaping, so an escaped character is part of the segment it stands in (an
// escaped slash does not split a room).
func (rr *router) resolve(ctx context.Context, method, path string) (route, error) {
	rest, ok := strings.CutPrefix(path, roomsPrefix)
	if !ok {
		return route{}, nil
	}
	seg := strings.Split(rest, "/")
	for i, s := range seg {
		if s == "" || s == "." || s == ".." {
			seg[i] = unclean
		}
	}
	clean := roomsPrefix + strings.Join(seg, "/")
	m := rr.match(ctx, method, clean)
	if m.ok && !m.area {
		if m.rt.dest == destMeeting {
			m.rt.room, _, _ = strings.Cut(rest, "/")
		}
		return m.rt, m.err
	}
	// Unmatched, or only by the e2ee area (whose patterns take every method): an endpoint's path with another
	// method is a 405.
	// A 405 names the methods the path does take, in the order it always has ("GET, POST").
	var allow []string
	for _, probe := range [...]string{http.MethodGet, http.MethodPost} {
		p := rr.match(ctx, probe, clean)
		switch {
		case !p.ok || p.area:
			continue
		case p.err != nil:
			return p.rt, p.err
		case p.rt.dest == destMeeting:
			return route{dest: destMeeting}, &methodError{allow: "GET, HEAD", use: "GET"}
		}
		allow = append(allow, probe)
	}
	switch {
	case len(allow) > 0:
	case m.area:
		return m.rt, m.err
	default:
		return route{}, nil
	}
	return route{dest: destEndpoint}, &methodError{allow: strings.Join(allow, ", "), use: strings.Join(allow, " or ")}
}

// match runs the mux on a request of method and path, with a writer that drops whatever the mux itself would
// answer. The path goes in unescaped form, so the mux sees each escaped character as written.
func (rr *router) match(ctx context.Context, method, path string) *matched {
	m := &matched{}
	r := (&http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}).WithContext(context.WithValue(ctx, routeKey{}, m))
	rr.mux.ServeHTTP(discardWriter{}, r)
	return m
}

// discardWriter swallows the mux's own answers (404, 405, redirects).
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
