package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/reqpath"
	"github.com/meetguard/meetguard/gateway/respond"
)

// AuthPath is the forward-auth endpoint: a front proxy (nginx
// auth_request, Caddy forward_auth, Traefik ForwardAuth) asks here whether
// the request it holds may pass, and copies the identity headers of a 2xx
// answer onto it. See docs/integrations.md.
const AuthPath = "/.meetguard/auth"

// The headers that name the request a front proxy asks about. They are
// read only from a trusted proxy, and removed at the edge from every
// request, whatever its route.
const (
	hdrOriginalURI     = "X-Original-Uri"     // nginx auth_request (set by the config)
	hdrForwardedURI    = "X-Forwarded-Uri"    // Caddy forward_auth, Traefik ForwardAuth
	hdrForwardedMethod = "X-Forwarded-Method" // all three
)

// askedRequest is what a front proxy said about the request it holds.
type askedRequest struct {
	uris, methods []string
}

// takeAskedRequest removes the forward-auth headers from h, returning
// their values when the peer is a trusted proxy. Any other route never sees
// them; from anyone else they are dropped unread.
func takeAskedRequest(h http.Header, trusted bool) askedRequest {
	var a askedRequest
	for _, k := range []string{hdrOriginalURI, hdrForwardedURI} {
		if v, ok := h[k]; ok {
			if trusted {
				a.uris = append(a.uris, v...)
			}
			delete(h, k)
		}
	}
	if v, ok := h[hdrForwardedMethod]; ok {
		if trusted {
			a.methods = v
		}
		delete(h, hdrForwardedMethod)
	}
	return a
}

// errForwardAuth is wrapped by every refusal of a malformed forward-auth
// question.
var errForwardAuth = errors.New("forward-auth")

// originalRequest rebuilds the request a trusted front proxy asks about
// from r (which carries that request's headers) and the asked URI and
// method: exactly one URI header with one origin-form value and exactly
// one method, or an error (two URI headers mean a client added one the
// proxy does not overwrite).
func originalRequest(r *http.Request, a askedRequest) (*http.Request, string, error) {
	if len(a.uris) != 1 || len(a.methods) != 1 {
		return nil, "", fmt.Errorf("%w: want exactly one of %s or %s and one %s", errForwardAuth, hdrOriginalURI, hdrForwardedURI, hdrForwardedMethod)
	}
	method := a.methods[0]
	if !validMethod(method) {
		return nil, "", fmt.Errorf("%w: bad method", errForwardAuth)
	}
	u, err := url.ParseRequestURI(a.uris[0])
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(a.uris[0], "/") {
		return nil, "", fmt.Errorf("%w: the URI must be a path with an optional query", errForwardAuth)
	}
	path, err := reqpath.Canonical(u.EscapedPath())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", errForwardAuth, err)
	}
	o := r.Clone(r.Context())
	o.Method = method
	p, _ := url.PathUnescape(path)
	o.URL = &url.URL{Path: p, RawQuery: u.RawQuery}
	if p != path {
		o.URL.RawPath = path
	}
	o.RequestURI = o.URL.RequestURI()
	o.Body, o.ContentLength, o.TransferEncoding = http.NoBody, 0, nil
	// The front proxy's own request may be HTTP/1.0 (nginx) and has
	// lost the hop-by-hop Upgrade and Connection headers; a WebSocket
	// handshake still shows by its key, and is then judged as one, so the
	// origin check of upgrades applies to it.
	o.Proto, o.ProtoMajor, o.ProtoMinor = "HTTP/1.1", 1, 1
	if _, ok := o.Header["Sec-Websocket-Key"]; ok && o.Header.Get("Upgrade") == "" {
		o.Header.Set("Upgrade", "websocket")
		o.Header.Set("Connection", "Upgrade")
	}
	return o, path, nil
}

// validMethod accepts an HTTP method token of letters only.
func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// serveAuth is the forward-auth entry point. It runs the same decide as
// the proxy on the request the front proxy holds, with the same log lines
// and audit records, and answers:
//   - 200 with X-Meetguard-Assertion, -User, -Email, -Name, -Room, -Role
//     (and the room ticket cookies) when the request may pass;
//   - 302 to sign in for a browser, 401 with a Bearer challenge otherwise;
//   - 403 (the uniform refusal, the waiting room, a foreign origin) or 429
//     (rate limits) for room admission;
//   - 503 when no decision could be made, 404 for a path no upstream
//     serves, 400 for a malformed question.
//
// With ?mode=nginx it answers only what auth_request understands (200, 401,
// 403): the login URL in Location, the real status in X-Meetguard-Status.
func (g *Gateway) serveAuth(w *statusRecorder, r *http.Request) string {
	w.Header().Set("Cache-Control", "no-store")
	var out http.ResponseWriter = w
	if r.URL.Query().Get("mode") == "nginx" {
		nw := &nginxStatus{ResponseWriter: w}
		defer nw.finish()
		out = nw
	}
	if !w.edge.trusted {
		g.opts.Logger.Warn("forward-auth question from an untrusted peer refused", zap.String("peer", r.RemoteAddr))
		respond.JSONError(out, http.StatusForbidden, "untrusted_proxy", "Forward-auth answers trusted proxies only.")
		return "auth_untrusted"
	}
	o, path, err := originalRequest(r, w.edge.asked)
	if err != nil {
		g.opts.Logger.Warn("malformed forward-auth question", zap.Error(err))
		respond.JSONError(out, http.StatusBadRequest, "bad_forward_auth", "The forward-auth question is malformed.")
		return "auth_bad"
	}
	up := classifyUpgrade(o)
	if up == badUpgrade {
		respond.JSONError(out, http.StatusBadRequest, "bad_upgrade", "Only WebSocket upgrades (GET with a complete handshake) are accepted.")
		return "auth_bad"
	}
	d := g.decide(o, path, up == webSocketUpgrade)
	w.subject = d.id.Subject
	kind := "auth_" + d.kind
	switch {
	case d.refusal.kind == refusedUnauthenticated:
		g.loginOrChallenge(out, o, d.refusal.err, o.URL.RequestURI())
	case d.refusal.kind == refusedAdmission:
		// A waiting page is a 202 to a browser; to a front proxy every
		// 2xx means "let it pass", so no refusal may answer one.
		g.writeAdmission(&noPass{ResponseWriter: out}, o, d.refusal.admission)
	case d.refusal.kind != passes:
		g.writeRefusal(out, o, d.refusal)
	case d.joinURL != "":
		setCookies(out, d)
		http.Redirect(out, o, d.joinURL, http.StatusFound)
	default:
		setCookies(out, d)
		setIdentityHeaders(out.Header(), &d)
		out.WriteHeader(http.StatusOK)
	}
	return kind
}

func setCookies(w http.ResponseWriter, d decision) {
	for _, c := range d.cookies {
		http.SetCookie(w, c)
	}
}

// noPass turns any 2xx a refusal would answer into 403.
type noPass struct {
	http.ResponseWriter
	wrote bool
}

func (n *noPass) WriteHeader(code int) {
	if !n.wrote && code < 300 {
		code = http.StatusForbidden
	}
	n.wrote = true
	n.ResponseWriter.WriteHeader(code)
}

func (n *noPass) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

// nginxStatus maps an answer onto the statuses nginx's auth_request
// understands: 2xx passes, 401 and 403 refuse, anything else would be an
// internal error there. A redirect to sign in becomes 401 (its Location
// kept for the config's error_page to send the browser to), any other
// refusal 403; X-Meetguard-Status says what it was.
type nginxStatus struct {
	http.ResponseWriter
	wrote bool
}

func (n *nginxStatus) WriteHeader(code int) {
	if n.wrote {
		return
	}
	n.wrote = true
	n.Header().Set("X-Meetguard-Status", strconv.Itoa(code))
	switch {
	case code < 300, code == http.StatusUnauthorized, code == http.StatusForbidden:
	case code >= 300 && code < 400 && strings.HasPrefix(n.Header().Get("Location"), "/.meetguard/login"):
		code = http.StatusUnauthorized
	default:
		code = http.StatusForbidden
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *nginxStatus) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

func (n *nginxStatus) finish() {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
}
