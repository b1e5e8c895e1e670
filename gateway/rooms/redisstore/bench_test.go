package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

func benchStore(b *testing.B) rooms.Store {
	return node(b, sharedServer(b), prefix(), rooms.Config{MaxCapacity: 1000})
}

func BenchmarkAdmitLeave(b *testing.B) { roomstest.BenchAdmitLeave(b, benchStore(b)) }

func BenchmarkAdmitLeaveParallel(b *testing.B) {
	roomstest.BenchAdmitLeaveParallel(b, benchStore(b), 8)
}

func BenchmarkJoinState(b *testing.B) { roomstest.BenchJoinState(b, benchStore(b)) }

func BenchmarkTouch(b *testing.B) { roomstest.BenchTouch(b, benchStore(b)) }

// TestFootprint reports Redis memory (used_memory) per admitted participant
// and per empty room. It measures; it does not assert.
func TestFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	srv := redistest.Start(t) // its own server, so nothing else moves used_memory
	c := srv.Client(t)
	s := node(t, srv, "fp:", rooms.Config{MaxCapacity: 1000})
	used := func() uint64 {
		info, err := c.Info(context.Background(), "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory in INFO")
		return 0
	}
	fp := roomstest.MeasureFootprint(t, s, used, 6_000, 2_000)
	t.Logf("redis store: %.0f B of Redis memory per admitted participant, %.0f B per empty room", fp.PerParticipant, fp.PerRoom)
}
