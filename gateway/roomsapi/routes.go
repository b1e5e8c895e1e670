package roomsapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// op is one API operation.
type op int

const (
	opNone op = iota
	opGetRoom
	opPutRoom
	opJoin
	opLeave
	opWait
	opLobbyAdmit
	opLobbyDeny
	opLock
	opUnlock
	opSuspend
	opUnban
	opRemove
	opRole
	opConsole
	opEvents
	opActivity
)

// route is a parsed API request path.
type route struct {
	op          op
	room        string
	wait        rooms.WaitID
	participant rooms.ParticipantID
}

// changesState is true for the calls a cross-site page must not be able to
// make with a browser's cookies.
func (r route) changesState() bool {
	return r.op != opGetRoom && r.op != opWait && r.op != opConsole && r.op != opEvents && r.op != opActivity
}

var (
	errNoRoute     = errors.New("no such endpoint")
	errBadRoom     = errors.New("invalid room id")
	errWrongMethod = errors.New("method not allowed")
)

// methodError carries the methods a path does take, for the Allow header.
type methodError struct{ allow string }

func (e *methodError) Error() string { return errWrongMethod.Error() }
func (e *methodError) Unwrap() error { return errWrongMethod }

// router maps a request to an operation with one http.ServeMux of method
// and wildcard patterns. The edge in front has canonicalised the path; the
// mux only matches, it never answers: its own plain-text 404 and 405 (and
// its redirects for unclean paths) are replaced by the API's JSON refusals,
// decided in resolve in the order the API has always used (unknown path,
// then bad room, then unknown id, then wrong method).
type router struct{ mux *http.ServeMux }

// routeKey is the context key under which resolve passes its result to the
// pattern handlers.
type routeKey struct{}

// resolved is what a pattern handler found.
type resolved struct {
	matched bool
	rt      route
	err     error
}

// endpoint is the handler of one pattern: it reads the path values.
type endpoint op

func (e endpoint) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	res, ok := r.Context().Value(routeKey{}).(*resolved)
	if !ok {
		return
	}
	res.matched = true
	res.rt, res.err = op(e).route(r)
}

// route builds the route from the path values. Room ids must be valid both
// as a gateway room path segment and as a store key; wait and participant
// ids must have the shape the store issues (anything else cannot exist,
// and is answered like an unknown one).
func (o op) route(r *http.Request) (route, error) {
	rt := route{op: o, room: r.PathValue("room")}
	if !config.ValidRoomID(rt.room) || rooms.ValidateRoomID(rt.room) != nil {
		return route{}, errBadRoom
	}
	switch o {
	case opWait, opLobbyAdmit, opLobbyDeny:
		rt.wait = rooms.WaitID(r.PathValue("wait"))
		if rt.wait.Validate() != nil {
			return route{}, errNoRoute
		}
	case opRemove, opRole:
		rt.participant = rooms.ParticipantID(r.PathValue("participant"))
		if rt.participant.Validate() != nil {
			return route{}, errNoRoute
		}
	}
	return rt, nil
}

func newRouter() *router {
	m := http.NewServeMux()
	for pattern, o := range map[string]op{
		"GET " + Prefix + "{room}":                                    opGetRoom,
		"PUT " + Prefix + "{room}":                                    opPutRoom,
		"POST " + Prefix + "{room}/join":                              opJoin,
		"POST " + Prefix + "{room}/leave":                             opLeave,
		"GET " + Prefix + "{room}/wait/{wait}":                        opWait,
		"POST " + Prefix + "{room}/lobby/{wait}/admit":                opLobbyAdmit,
		"POST " + Prefix + "{room}/lobby/{wait}/deny":                 opLobbyDeny,
		"POST " + Prefix + "{room}/lock":                              opLock,
		"POST " + Prefix + "{room}/unlock":                            opUnlock,
		"POST " + Prefix + "{room}/suspend":                           opSuspend,
		"POST " + Prefix + "{room}/unban":                             opUnban,
		"POST " + Prefix + "{room}/participants/{participant}/remove": opRemove,
		"POST " + Prefix + "{room}/participants/{participant}/role":   opRole,
		"GET " + Prefix + "{room}/console":                            opConsole,
		"GET " + Prefix + "{room}/events":                             opEvents,
		"GET " + Prefix + "{room}/activity":                           opActivity,
	} {
		m.Handle(pattern, endpoint(o))
	}
	return &router{mux: m}
}

// resolve maps method and path to an operation. It routes on the decoded
// path (what the edge canonicalised), as the API always has.
func (rr *router) resolve(ctx context.Context, method, path string) (route, error) {
	rest, ok := strings.CutPrefix(path, Prefix)
	if !ok || rest == "" {
		return route{}, errNoRoute
	}
	seg := strings.Split(rest, "/")
	if len(seg) > 5 {
		return route{}, errNoRoute
	}
	if !config.ValidRoomID(seg[0]) || rooms.ValidateRoomID(seg[0]) != nil {
		return route{}, errBadRoom
	}
	// No route has an empty, "." or ".." segment; refusing them here also
	// keeps the mux from redirecting to the cleaned path.
	for _, s := range seg[1:] {
		if s == "" || s == "." || s == ".." {
			return route{}, errNoRoute
		}
	}
	res := rr.match(ctx, method, path)
	if res.matched {
		return res.rt, res.err
	}
	// A 405 names the methods the path does take, in the order it always
	// has ("GET, PUT" for a room).
	var allow []string
	for _, m := range [...]string{http.MethodGet, http.MethodPut, http.MethodPost} {
		p := rr.match(ctx, m, path)
		if !p.matched {
			continue
		}
		if p.err != nil {
			return route{}, p.err
		}
		allow = append(allow, m)
	}
	if len(allow) == 0 {
		return route{}, errNoRoute
	}
	return route{}, &methodError{allow: strings.Join(allow, ", ")}
}

// match runs the mux on a request of method and path, with a writer that
// drops whatever the mux itself would answer.
func (rr *router) match(ctx context.Context, method, path string) *resolved {
	res := &resolved{}
	r := (&http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}).WithContext(context.WithValue(ctx, routeKey{}, res))
	rr.mux.ServeHTTP(discardWriter{}, r)
	return res
}

// discardWriter swallows the mux's own answers (404, 405).
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
