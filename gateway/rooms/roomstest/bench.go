package roomstest

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// latencies collects per-operation times from one or many goroutines and
// reports their p50 and p99 as benchmark metrics.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(Quantile(l.all, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(Quantile(l.all, 0.99).Nanoseconds()), "p99-ns")
}

// benchRoom creates a room big enough never to fill during a benchmark.
func benchRoom(b *testing.B, s rooms.Store, id string) {
	b.Helper()
	if _, err := s.Put(context.Background(), id, Subject(0), rooms.SettingsChange{Capacity: ptr(1000)}); err != nil {
		b.Fatal(err)
	}
}

// BenchAdmitLeave measures one admission followed by its leave, the
// state-store part of a join and a departure, one at a time.
func BenchAdmitLeave(b *testing.B, s rooms.Store) {
	ctx := context.Background()
	benchRoom(b, s, "bench")
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		p, err := s.Admit(ctx, rooms.Admission{Room: "bench", Subject: Subject(i), Name: "Bench User", Role: rooms.RoleParticipant})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Leave(ctx, "bench", p.ID); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	var l latencies
	l.add(lat)
	l.report(b)
}

// BenchAdmitLeaveParallel is BenchAdmitLeave from many goroutines at once,
// spread over rooms, as a busy node sees it.
func BenchAdmitLeaveParallel(b *testing.B, s rooms.Store, parallelism int) {
	ctx := context.Background()
	for r := range 16 {
		benchRoom(b, s, fmt.Sprintf("bench-%d", r))
	}
	var l latencies
	var seq sync.Mutex
	next := 0
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		seq.Lock()
		g := next
		next++
		seq.Unlock()
		roomID := fmt.Sprintf("bench-%d", g%16)
		var lat []time.Duration
		for i := 0; pb.Next(); i++ {
			t0 := time.Now()
			p, err := s.Admit(ctx, rooms.Admission{Room: roomID, Subject: Subject(g<<20 | i), Role: rooms.RoleParticipant})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Leave(ctx, roomID, p.ID); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		l.add(lat)
	})
	l.report(b)
}

// BenchJoinState measures everything a join asks of the store: the rate
// limit and the policy facts (StartJoin, one call), then the admission;
// and, beside it, the same with the first call split in two (BeginJoin,
// Facts), as joins were made before StartJoin.
func BenchJoinState(b *testing.B, s rooms.Store) {
	benchRoom(b, s, "bench-join")
	b.Run("start-join", func(b *testing.B) {
		benchJoinState(b, s, func(ctx context.Context, who rooms.SubjectKey, ip netip.Addr) error {
			_, _, err := s.StartJoin(ctx, rooms.Attempt{Identity: who, IP: ip, Room: "bench-join"})
			return err
		})
	})
	b.Run("begin-join+facts", func(b *testing.B) {
		benchJoinState(b, s, func(ctx context.Context, who rooms.SubjectKey, ip netip.Addr) error {
			if _, err := s.BeginJoin(ctx, rooms.Attempt{Identity: who, IP: ip, Room: "bench-join"}); err != nil {
				return err
			}
			_, err := s.Facts(ctx, "bench-join", who)
			return err
		})
	})
}

func benchJoinState(b *testing.B, s rooms.Store, read func(context.Context, rooms.SubjectKey, netip.Addr) error) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	var joined []rooms.ParticipantID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		who := Subject(i)
		if err := read(ctx, who, IP(i)); err != nil {
			b.Fatal(err)
		}
		p, err := s.Admit(ctx, rooms.Admission{Room: "bench-join", Subject: who, Role: rooms.RoleParticipant})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		joined = append(joined, p.ID)
		if len(joined) == 900 { // keep the room below capacity, off the clock
			for _, id := range joined {
				_ = s.Leave(ctx, "bench-join", id)
			}
			joined = joined[:0]
		}
		b.StartTimer()
	}
	b.StopTimer()
	for _, id := range joined {
		_ = s.Leave(ctx, "bench-join", id)
	}
	var l latencies
	l.add(lat)
	l.report(b)
}

// BenchTouch measures the per-request revocation check.
func BenchTouch(b *testing.B, s rooms.Store) {
	ctx := context.Background()
	benchRoom(b, s, "bench-touch")
	var ids []rooms.ParticipantID
	for i := range 300 {
		p, err := s.Admit(ctx, rooms.Admission{Room: "bench-touch", Subject: Subject(i), Role: rooms.RoleParticipant})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if _, err := s.Touch(ctx, "bench-touch", ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	var l latencies
	l.add(lat)
	l.report(b)
}

// Footprint fills a store with participants and with empty rooms and
// reports what each costs, as measured by used (a heap reading for the
// memory store, Redis's used_memory for Redis).
type Footprint struct {
	PerParticipant, PerRoom float64
}

// MeasureFootprint admits participants into rooms of 300 (realistic
// subject keys and names, allocated here as a gateway would) and creates
// empty rooms, reading used() before and after each.
func MeasureFootprint(tb testing.TB, s rooms.Store, used func() uint64, participants, emptyRooms int) Footprint {
	ctx := context.Background()
	const perRoom = 300
	for r := 0; r*perRoom < participants; r++ {
		if _, err := s.Put(ctx, fmt.Sprintf("fp-%d", r), Subject(0), rooms.SettingsChange{Capacity: ptr(perRoom)}); err != nil {
			tb.Fatal(err)
		}
	}
	before := used()
	for i := range participants {
		a := rooms.Admission{Room: fmt.Sprintf("fp-%d", i/perRoom), Subject: rooms.SubjectKey(fmt.Sprintf("https://login.example.com/realms/corp|%08x-4f1c-9a2e-%012d", i, i)),
			Name: fmt.Sprintf("Participant %d", i), Role: rooms.RoleParticipant}
		if _, err := s.Admit(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	mid := used()
	for i := range emptyRooms {
		if _, err := s.Put(ctx, fmt.Sprintf("empty-%d", i), Subject(0), rooms.SettingsChange{Tags: ptr([]string{"team"})}); err != nil {
			tb.Fatal(err)
		}
	}
	after := used()
	return Footprint{
		PerParticipant: float64(int64(mid)-int64(before)) / float64(participants),
		PerRoom:        float64(int64(after)-int64(mid)) / float64(emptyRooms),
	}
}

// HeapInUse is used() for in-process stores: live heap after a full GC.
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
