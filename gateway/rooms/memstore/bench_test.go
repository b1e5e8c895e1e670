package memstore_test

import (
	"runtime"
	"testing"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

func benchStore(b *testing.B) rooms.Store {
	s, _ := newStore(b, rooms.Config{MaxCapacity: 1000})
	return s
}

func BenchmarkAdmitLeave(b *testing.B) { roomstest.BenchAdmitLeave(b, benchStore(b)) }

func BenchmarkAdmitLeaveParallel(b *testing.B) {
	roomstest.BenchAdmitLeaveParallel(b, benchStore(b), 4)
}

func BenchmarkJoinState(b *testing.B) { roomstest.BenchJoinState(b, benchStore(b)) }

func BenchmarkTouch(b *testing.B) { roomstest.BenchTouch(b, benchStore(b)) }

// TestFootprint reports heap bytes per admitted participant and per empty
// room. It measures; it does not assert (shared machines are noisy).
func TestFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	s, _ := newStore(t, rooms.Config{MaxCapacity: 1000})
	fp := roomstest.MeasureFootprint(t, s, roomstest.HeapInUse, 30_000, 10_000)
	runtime.KeepAlive(s)
	t.Logf("memory store: %.0f B per admitted participant, %.0f B per empty room", fp.PerParticipant, fp.PerRoom)
}
