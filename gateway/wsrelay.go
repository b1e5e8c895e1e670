package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errUpgradeRelayed ends a WebSocket that relayUpgrade carried: the
// proxy's error handler (outbound.fail) writes nothing for it.
var errUpgradeRelayed = errors.New("gateway: upgraded connection relayed")

// relayUpgrade carries a WebSocket once the upstream switched protocols. It
// runs as the proxy's ModifyResponse, before httputil's own upgrade
// handling, because that one costs every idle socket four goroutines and
// two 32 KiB buffers (docs/performance.md): here the upstream-to-client
// direction runs on the request's own goroutine and the other on one more,
// both through liveconn's relay (a 2 KiB buffer while idle), and the
// request's cancellation closes the upstream through context.AfterFunc
// rather than a waiting goroutine. Any other response goes on through the
// proxy untouched (nil).
func relayUpgrade(rw http.ResponseWriter, req *http.Request, res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	// The edge let only complete WebSocket handshakes through; the
	// upstream may switch to nothing else.
	if !headerHasToken(res.Header, "Connection", "upgrade") || !strings.EqualFold(strings.TrimSpace(res.Header.Get("Upgrade")), "websocket") {
		return fmt.Errorf("upstream switched to protocol %q when websocket was requested", res.Header.Get("Upgrade"))
	}
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return errors.New("101 switching protocols response with a non-writable body")
	}
	stop := context.AfterFunc(req.Context(), func() { _ = backConn.Close() })
	defer stop()
	defer backConn.Close()
	conn, brw, err := http.NewResponseController(rw).Hijack()
	if err != nil {
		return fmt.Errorf("hijack failed on protocol switch: %w", err)
	}
	defer conn.Close()
	for k, vv := range res.Header {
		for _, v := range vv {
			rw.Header().Add(k, v)
		}
	}
	res.Header = rw.Header()
	res.Body = nil // res.Write writes the status line and headers only
	if err := res.Write(brw); err != nil {
		return errUpgradeRelayed
	}
	if err := brw.Flush(); err != nil {
		return errUpgradeRelayed
	}
	// Frames the client sent right behind its handshake are already in
	// the server's read buffer.
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		if _, err := backConn.Write(early); err != nil {
			return errUpgradeRelayed
		}
	}
	// Whichever side ends first ends both, as httputil's copier does.
	toUpstream := make(chan struct{})
	go func() {
		defer close(toUpstream)
		_, _ = io.Copy(backConn, conn) // liveconn's WriterTo
		_ = backConn.Close()
		_ = conn.Close()
	}()
	_, _ = io.Copy(conn, backConn) // liveconn's ReaderFrom: frames tracked for kicks
	_ = conn.Close()
	_ = backConn.Close()
	<-toUpstream
	return errUpgradeRelayed
}
