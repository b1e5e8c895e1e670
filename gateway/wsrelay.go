package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errUpgradeRelayed says relayUpgrade took the connection over (and is
// relaying it, or closed it): the proxy's error handler (outbound.fail)
// writes nothing for it.
var errUpgradeRelayed = errors.New("gateway: upgraded connection relayed")

// relayUpgrade carries a WebSocket once the upstream switched protocols. It
// runs as the proxy's ModifyResponse, before httputil's own upgrade
// handling, because that one keeps four goroutines per socket, two of them
// waiting in 32 KiB buffers, and the whole request (its goroutine, the
// server's read and write buffers, headers, decision) alive for as long as
// the socket lives (docs/performance.md). Here, once the 101 is written,
// two goroutines carry the bytes through liveconn's relay (a 2 KiB buffer
// each while idle) and the request returns, so everything it held is
// freed. The socket stays in liveconn's registry, which is what logout,
// kick, ban and shutdown close; closing either side ends both. Any other
// response goes on through the proxy untouched (nil).
func relayUpgrade(rw http.ResponseWriter, res *http.Response) error {
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
	conn, brw, err := http.NewResponseController(rw).Hijack()
	if err != nil {
		return fmt.Errorf("hijack failed on protocol switch: %w", err)
	}
	// From here the proxy must not close the upstream (it closes
	// res.Body when ModifyResponse fails): the relay owns both ends.
	res.Body = http.NoBody
	fail := func() error {
		_ = conn.Close()
		_ = backConn.Close()
		return errUpgradeRelayed
	}
	head := &http.Response{StatusCode: res.StatusCode, ProtoMajor: 1, ProtoMinor: 1, Header: rw.Header(), Body: nil}
	for k, vv := range res.Header {
		for _, v := range vv {
			head.Header.Add(k, v)
		}
	}
	if err := head.Write(brw); err != nil {
		return fail()
	}
	if err := brw.Flush(); err != nil {
		return fail()
	}
	// Frames the client sent right behind its handshake are already in
	// the server's read buffer.
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		if _, err := backConn.Write(early); err != nil {
			return fail()
		}
	}
	// Whichever side ends first ends both, as httputil's copier does.
	go func() {
		_, _ = io.Copy(backConn, conn) // liveconn's WriterTo
		_ = backConn.Close()
		_ = conn.Close()
	}()
	go func() {
		_, _ = io.Copy(conn, backConn) // liveconn's ReaderFrom: frames tracked for kicks
		_ = conn.Close()
		_ = backConn.Close()
	}()
	return errUpgradeRelayed
}
