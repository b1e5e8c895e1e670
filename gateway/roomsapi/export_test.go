package roomsapi

import (
	"context"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// MarkEndedForTest does the first half of applying an event of kind that
// ended pid's admission on this node: the tracker learns it, its
// connections are not closed yet. A sweep can run right then.
func (a *API) MarkEndedForTest(room string, pid rooms.ParticipantID, kind rooms.EventKind) {
	a.conns.ended(room, []rooms.ParticipantID{pid}, kind)
}

// SweepForTest runs one sweep of this node's live connections now.
func (a *API) SweepForTest(ctx context.Context) { a.sweep(ctx, false) }
