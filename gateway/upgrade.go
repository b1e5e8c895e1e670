package gateway

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// upgradeKind is what a request asks of the connection it came on.
type upgradeKind int

const (
	// notUpgrade: an ordinary request. It gets the body limit and the
	// read deadline.
	notUpgrade upgradeKind = iota
	// webSocketUpgrade: a complete WebSocket opening handshake (RFC 6455
	// §4.2.1), the one upgrade the gateway proxies. Tracked as a live
	// connection, without a read deadline.
	webSocketUpgrade
	// badUpgrade: anything else that asks to change protocol: another
	// Upgrade token (h2c above all: past the 101 the client could speak
	// HTTP/2 to any path of the upstream, with any headers, where the
	// gateway never sees a request), an upgrade on a method other than
	// GET, an HTTP2-Settings header, or an incomplete WebSocket handshake.
	// Refused with 400: stripping the headers and proxying would leave an
	// upstream and a client that disagree about what the connection is.
	badUpgrade
)

// classifyUpgrade decides, from headers alone and before any other code
// reads the request, whether it is a WebSocket upgrade, a plain request,
// or an upgrade the gateway refuses. Any sign of an upgrade (an Upgrade
// header, an "upgrade" Connection token, HTTP2-Settings) makes it one of
// the last two, so a header cannot lift the body limit or read deadline
// without being a real WebSocket handshake.
func classifyUpgrade(r *http.Request) upgradeKind {
	_, hasUpgrade := r.Header["Upgrade"]
	_, hasSettings := r.Header["Http2-Settings"]
	connUpgrade := headerHasToken(r.Header, "Connection", "upgrade")
	if !hasUpgrade && !hasSettings && !connUpgrade {
		return notUpgrade
	}
	if hasSettings || !hasUpgrade || !connUpgrade || r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) ||
		r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return badUpgrade
	}
	if up := r.Header.Values("Upgrade"); len(up) != 1 || !strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
		return badUpgrade // one token only: "websocket, h2c" is not a WebSocket handshake
	}
	if v := r.Header.Values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return badUpgrade
	}
	key := r.Header.Values("Sec-Websocket-Key")
	if len(key) != 1 {
		return badUpgrade
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key[0])); err != nil || len(raw) != 16 {
		return badUpgrade
	}
	return webSocketUpgrade
}

// headerHasToken reports whether a comma-separated header holds token
// (case-insensitive) in any of its values.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// boundBody applies limits.max_body_bytes and limits.read_timeout to a
// request that is not a WebSocket upgrade. The deadline bounds reading
// the body only and is lifted once the body is read: a deadline left on
// the connection would cancel the request's context while a long answer
// (an event stream) is still being written.
func (g *Gateway) boundBody(w http.ResponseWriter, r *http.Request) {
	lim := g.now().cfg.Limits
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(lim.ReadTimeout))
	r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes), rc: rc}
}

// deadlineBody lifts the read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.lift()
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.lift()
	return b.ReadCloser.Close()
}

func (b *deadlineBody) lift() { b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) }) }

// isUpgrade reports whether r asks for any upgrade. serve refuses every
// one but a complete WebSocket handshake before other code sees it, so
// past that point it means a WebSocket handshake.
func isUpgrade(r *http.Request) bool { return classifyUpgrade(r) != notUpgrade }
