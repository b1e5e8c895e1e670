package roomsapi_test

import (
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestKick_SweepBetweenEventAndCloseStillSends4001: applying a kick first
// marks the admission ended, then sends each of its WebSockets close code
// 4001 before cutting it. A sweep that ran in between found a connection
// of an ended admission and cut it without a close frame, so the kicked
// client saw a network fault instead of its removal (the soak in
// docs/performance.md met it 2 times in 4,088 kicks at load 44). Now the
// sweep closes it with the code of the event that ended it.
func TestKick_SweepBetweenEventAndCloseStillSends4001(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 1, sweep: time.Hour})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "standup", map[string]any{"lobby_enabled": false})
	gina := staff("gina")
	ticket, _ := c.mustJoin(n, gina, "standup")
	conn := dialRoom(t, n, "standup", c.token(gina), ticket)
	if err := echo(t.Context(), conn, "hello"); err != nil {
		t.Fatal(err)
	}
	pid := c.participantOf(n, h, "standup", gina.sub)
	n.api.SweepForTest(t.Context()) // the node now tracks the connection
	n.api.MarkEndedForTest("standup", rooms.ParticipantID(pid), rooms.EventRemoved)
	n.api.SweepForTest(t.Context())
	if code, reason := readClose(t, conn); code != 4001 || reason != "removed" {
		t.Fatalf("close frame %d %q, want 4001 removed", code, reason)
	}
}
