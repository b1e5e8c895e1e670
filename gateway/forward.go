package gateway

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/respond"
)

// upstream is one configured meeting server.
type upstream struct {
	cfg       config.Upstream
	rooms     config.RoomPattern
	target    *url.URL
	transport http.RoundTripper
}

func newTransport(l config.Limits) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&netDialer{timeout: l.UpstreamDialTimeout}).DialContext
	t.ResponseHeaderTimeout = l.UpstreamResponseTimeout
	t.TLSHandshakeTimeout = l.UpstreamDialTimeout
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.MaxResponseHeaderBytes = 1 << 20
	return t
}

// copyBuffers is the proxy's httputil.BufferPool: 32 KiB buffers, the
// size httputil would allocate for each response body it copies.
type copyBuffers struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

// Get returns a buffer of copyBufferSize bytes.
func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, copyBufferSize)
}

// Put keeps b for the next response; a buffer of another size is dropped.
func (c *copyBuffers) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	b = b[:copyBufferSize]
	c.pool.Put(&b)
}

// route picks the upstream whose prefix is the longest that path lies
// under.
func (g *Gateway) route(path string) *upstream {
	var best *upstream
	for _, u := range g.now().upstreams {
		p := u.cfg.Prefix
		if path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, p) || p == "/" {
			if best == nil || len(p) > len(best.cfg.Prefix) {
				best = u
			}
		}
	}
	return best
}

// serveProxy is the proxy's entry point: decide, then refuse or forward.
func (g *Gateway) serveProxy(w *statusRecorder, r *http.Request, path string, e edgeFacts) string {
	d := g.decide(r, path, e.webSocket)
	w.subject = d.id.Subject
	if d.refusal.kind != passes {
		g.writeRefusal(w, r, d.refusal)
		return d.kind
	}
	for _, c := range d.cookies {
		http.SetCookie(w, c)
	}
	if d.joinURL != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, d.joinURL, http.StatusFound)
		return d.kind
	}
	return g.forward(w, r, d, e)
}

// forward sends a request that passed decide to its upstream. The
// decision reaches the outbound request through the proxy built for this
// request (Rewrite, Transport and ErrorHandler close over it), never
// through the request's context.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, d decision, e edgeFacts) string {
	kind := d.kind
	o := &outbound{g: g, d: &d, e: e}
	var out http.ResponseWriter = w
	if d.webSocket {
		// Long-lived: no read deadline (serve set none), but tracked so
		// it can be cut.
		meta := liveconn.Meta{SessionID: d.id.SessionID, SubjectKey: d.id.Key(), Upstream: d.up.cfg.Name, WebSocket: true}
		if d.participant != nil {
			meta.Room, meta.ParticipantID = d.room, d.participant.ParticipantID
		}
		out = g.opts.Live.TrackChecked(w, meta, g.admissionCheck(r.Context(), d.participant))
		kind += "_upgrade"
	}
	rp := &httputil.ReverseProxy{Rewrite: o.rewrite, Transport: o, ErrorHandler: o.fail, BufferPool: &g.buffers}
	if d.webSocket {
		rp.ModifyResponse = func(res *http.Response) error { return relayUpgrade(out, res) }
	}
	rp.ServeHTTP(out, r)
	return kind
}

// outbound carries one request's decision into the reverse proxy's hooks.
type outbound struct {
	g *Gateway
	d *decision
	e edgeFacts
	// adapterErr is the upstream adapter's refusal: RoundTrip returns it
	// instead of sending anything.
	adapterErr error
}

// adapterError is an upstream adapter's refusal of a request (fail
// closed): nothing was sent upstream.
type adapterError struct{ err error }

func (e *adapterError) Error() string { return "adapter refused request: " + e.err.Error() }
func (e *adapterError) Unwrap() error { return e.err }

// RoundTrip sends the rewritten request unless its adapter refused it.
func (o *outbound) RoundTrip(req *http.Request) (*http.Response, error) {
	if o.adapterErr != nil {
		return nil, &adapterError{err: o.adapterErr}
	}
	return o.d.up.transport.RoundTrip(req)
}

// rewrite builds the outbound request. It runs after ReverseProxy removed
// hop-by-hop headers (including any named in Connection), so the identity
// headers set here cannot be stripped by a client's Connection header.
func (o *outbound) rewrite(pr *httputil.ProxyRequest) {
	d, target := o.d, o.d.up.target
	pr.SetURL(target)
	out := pr.Out
	// SetURL joins target and inbound paths; pin the canonical one.
	out.URL.Path, out.URL.RawPath = joinPath(target, pr.In.URL)
	out.Host = target.Host
	if o.e.trusted {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Values(h); len(v) > 0 {
				out.Header[h] = v
			}
		}
	}
	pr.SetXForwarded()
	if d.id.Via == identity.ViaBearer {
		out.Header.Del("Authorization")
	}
	stripCookies(out.Header)
	for k := range out.Header {
		// Gateway-bound credentials such as Meetguard-Ticket stay here.
		if k != "" && (k[0]|0x20) == 'm' && strings.HasPrefix(normHeader(k), "meetguard-") {
			delete(out.Header, k)
		}
	}
	setIdentityHeaders(out.Header, d)
	out.Header.Set("X-Request-Id", o.e.requestID)
	if a := o.g.opts.Adapters[d.up.cfg.Name]; a != nil {
		// Rewrite cannot fail: an adapter's refusal is kept for RoundTrip,
		// which returns it before anything is sent.
		o.adapterErr = a.Forward(pr.In.Context(), pr, d.participant)
	}
}

// setIdentityHeaders sets the assertion and the identity headers of a
// decision that passed: on the forwarded request, or on forward-auth's
// answer for the front proxy to copy.
func setIdentityHeaders(h http.Header, d *decision) {
	h.Set("X-Meetguard-Assertion", d.assertion)
	h.Set("X-Meetguard-User", d.id.Subject)
	if d.id.Email != "" {
		h.Set("X-Meetguard-Email", d.id.Email)
	}
	if d.id.Name != "" {
		h.Set("X-Meetguard-Name", headerSafe(d.id.Name))
	}
	if d.room != "" {
		h.Set("X-Meetguard-Room", d.room)
		h.Set("X-Meetguard-Role", d.role)
	}
}

// fail answers a request that reached no upstream answer.
func (o *outbound) fail(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, errUpgradeRelayed) {
		return // a WebSocket now carried by the relay
	}
	log := o.g.opts.Logger
	var ae *adapterError
	if errors.As(err, &ae) {
		log.Error("adapter refused request", zap.String("upstream", o.d.up.cfg.Name), zap.Error(ae.err))
		respond.JSONError(w, http.StatusServiceUnavailable, "unavailable", "The meeting cannot be reached right now.")
		return
	}
	log.Warn("upstream error", zap.String("request_id", o.e.requestID), zap.Error(err))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		respond.JSONError(w, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large.")
		return
	}
	respond.JSONError(w, http.StatusBadGateway, "upstream_unavailable", "The meeting server did not answer.")
}

func joinPath(target, in *url.URL) (string, string) {
	base := strings.TrimSuffix(target.EscapedPath(), "/")
	esc := base + in.EscapedPath()
	p, err := url.PathUnescape(esc)
	if err != nil || p == esc {
		return esc, ""
	}
	return p, esc
}

// headerSafe keeps a display name printable ASCII so it cannot split or
// smuggle a header; the assertion carries the exact name.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
