package roomsapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestKick_RacingTheWebSocketHandshakeLeavesNoSocket races a kick against
// the WebSocket handshake of the admission it ends, 1,000 times, with the
// kick landing anywhere from before the handshake to after it. The window
// that matters is between the admission check and the takeover of the
// connection after the upstream's 101: a kick there finds nothing
// registered to close. No socket may still be open a second after both
// finished.
func TestKick_RacingTheWebSocketHandshakeLeavesNoSocket(t *testing.T) {
	const iterations = 1000
	c := newCluster(t, clusterOptions{auditAsync: true})
	n := c.nodes[0]
	c.createRoom(n, staff("olga"), "race", map[string]any{"lobby_enabled": false})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(n.URL, "http") + "/room/race/ws"

	dial := func(tok, ticket string) (*websocket.Conn, time.Duration, error) {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		h := http.Header{"Authorization": {"Bearer " + tok}, roomsapi.TicketHeader: {ticket}}
		start := time.Now()
		ws, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
		return ws, time.Since(start), err
	}
	// How long a handshake takes here, so the kicks can be spread over it.
	var handshake time.Duration
	for i := range 5 {
		w := staff(fmt.Sprintf("warm%d", i))
		ticket, _ := c.mustJoin(n, w, "race")
		ws, d, err := dial(c.token(w), ticket)
		if err != nil {
			t.Fatalf("warm-up dial: %v", err)
		}
		ws.CloseNow()
		handshake = max(handshake, d)
	}

	survivors, opened := 0, 0
	for i := range iterations {
		w := staff(fmt.Sprintf("p%d", i))
		tok := c.token(w)
		ticket, pid := c.mustJoin(n, w, "race")
		delay := time.Duration(rand.Int64N(int64(handshake) + 1))
		var ws *websocket.Conn
		var kickErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			ws, _, _ = dial(tok, ticket)
		}()
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			_, kickErr = n.store.Remove(ctx, "race", rooms.ParticipantID(pid), false)
		}()
		wg.Wait()
		if kickErr != nil {
			t.Fatalf("kick %d: %v", i, kickErr)
		}
		if ws == nil {
			continue // refused at the handshake: the kick came first
		}
		opened++
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, _, err := ws.Read(rctx)
		if err == nil || rctx.Err() != nil {
			survivors++
			t.Errorf("iteration %d (kick after %v): socket of a kicked participant still open a second later", i, delay)
		}
		rcancel()
		ws.CloseNow()
	}
	t.Logf("%d iterations, %d handshakes completed before the kick closed them, handshake ≤ %v", iterations, opened, handshake)
	if survivors > 0 {
		t.Fatalf("%d of %d kicked sockets survived", survivors, opened)
	}
}
