package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/reqpath"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
)

// edgeFacts is what the edge established about a request before routing.
type edgeFacts struct {
	requestID string
	// trusted: the peer is a trusted proxy, whose X-Forwarded-* headers
	// were kept.
	trusted bool
	// webSocket: a complete WebSocket handshake (other upgrades never get
	// past the edge).
	webSocket bool
	// asked is what a trusted front proxy said about the request it asks
	// forward-auth about; only that route reads it.
	asked askedRequest
}

// ServeHTTP is the gateway's one entry point.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	ip, trusted := clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), g.now().trusted)
	asked := takeAskedRequest(r.Header, trusted)
	stripIncoming(r.Header, trusted)
	info := request.Info{ID: newRequestID(), ClientIP: ip.String()}
	r = r.WithContext(request.With(r.Context(), info))
	rec.Header().Set("X-Request-Id", info.ID)
	setHSTS(rec.Header(), g.now().cfg.PublicURL)

	kind := g.serve(rec, r, edgeFacts{requestID: info.ID, trusted: trusted, asked: asked})

	dur := time.Since(start)
	g.metrics.observe(kind, rec.status, dur)
	g.opts.Logger.Info("request",
		zap.String("request_id", info.ID),
		zap.String("client_ip", info.ClientIP),
		zap.String("method", r.Method),
		zap.String("path", r.URL.EscapedPath()),
		zap.Int("status", rec.status),
		zap.Int64("bytes", rec.bytes),
		zap.Duration("duration", dur),
		zap.String("route", kind),
		zap.String("subject", rec.subject),
	)
}

// serve is the canonicalising edge: it refuses upgrades other than a
// complete WebSocket handshake, bounds every other request, and hands the
// rest one canonical path before anything routes on it.
func (g *Gateway) serve(w *statusRecorder, r *http.Request, e edgeFacts) string {
	up := classifyUpgrade(r)
	if up == badUpgrade {
		// Before authentication and routing: nothing may tunnel past
		// the gateway's view of requests.
		w.Header().Set("Connection", "close")
		respond.JSONError(w, http.StatusBadRequest, "bad_upgrade", "Only WebSocket upgrades (GET with a complete handshake) are accepted.")
		return "bad_upgrade"
	}
	if up == notUpgrade {
		// Every request but a WebSocket handshake is bounded in time and
		// size, whatever it is routed to.
		g.boundBody(w, r)
	}
	e.webSocket = up == webSocketUpgrade
	path, err := reqpath.Canonical(r.URL.EscapedPath())
	if err != nil {
		respond.JSONError(w, http.StatusBadRequest, "bad_path", "The request path is not allowed.")
		return "bad_path"
	}
	if r.URL.RawPath != "" || r.URL.Path != path {
		// Hand everything after this the one canonical path.
		u := *r.URL
		p, _ := url.PathUnescape(path)
		u.Path, u.RawPath = p, path
		if u.Path == path {
			u.RawPath = ""
		}
		r.URL = &u
	}
	w.edge = e
	g.mux.Load().ServeHTTP(w, r)
	return w.route
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// statusRecorder remembers what was answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	wrote   bool
	subject string
	// edge is what the edge established, for the route that serves it;
	// route is that route's label.
	edge  edgeFacts
	route string
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
