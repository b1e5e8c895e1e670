package roomsapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// consoleStream is a host's open GET rooms/{room}/events: each "room"
// event's data arrives on views.
type consoleStream struct {
	views  chan string
	cancel context.CancelFunc
	bytes  chan int
}

func openConsoleStream(tb testing.TB, n *node, room, token string) *consoleStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.apiURL(room+"/events"), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		tb.Fatalf("events: %v %v", err, resp)
	}
	s := &consoleStream{views: make(chan string, 1024), cancel: cancel, bytes: make(chan int, 1024)}
	go func() {
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		event := ""
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				close(s.views)
				return
			}
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimSpace(line[7:])
			case strings.HasPrefix(line, "data: ") && event == "room":
				s.views <- line[6:]
				select {
				case s.bytes <- len(line):
				default:
				}
			}
		}
	}()
	tb.Cleanup(cancel)
	return s
}

// until reads views until one satisfies ok.
func (s *consoleStream) until(tb testing.TB, ok func(string) bool) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v, open := <-s.views:
			if !open {
				tb.Fatal("console stream closed")
			}
			if ok(v) {
				return
			}
		case <-timeout:
			tb.Fatal("no matching console push within 10s")
		}
	}
}

// BenchmarkConsole_KnockToPush measures, across two nodes sharing Redis,
// the time from a guest's knock (POST …/join answered 202 by node B) to the
// host console's event stream on node A carrying it (goal: p99 under 1 s).
func BenchmarkConsole_KnockToPush(b *testing.B) {
	c := newCluster(b, clusterOptions{nodes: 2, redis: true, rooms: unlimited})
	a, nb := c.nodes[0], c.nodes[1]
	h := host("hanna")
	c.createRoom(a, h, "knocks", map[string]any{"lobby_enabled": true, "capacity": 1000})
	hostTok := c.token(h)
	s := openConsoleStream(b, a, "knocks", hostTok)
	s.until(b, func(string) bool { return true })
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		tok := c.token(guest(fmt.Sprintf("knocker%d", i)))
		b.StartTimer()
		t0 := time.Now()
		r := c.join(nb, tok, "knocks", nil)
		if r.Status != http.StatusAccepted {
			b.Fatalf("knock: %d %s", r.Status, r.Body)
		}
		wait := r.str(b, "wait_id")
		s.until(b, func(v string) bool { return strings.Contains(v, wait) })
		lat.add(time.Since(t0))
		b.StopTimer()
		if r := call(b, nil, http.MethodPost, a.apiURL("knocks/lobby/"+wait+"/deny"), hostTok, map[string]any{}); r.Status != http.StatusOK {
			b.Fatalf("deny: %d %s", r.Status, r.Body)
		}
		s.until(b, func(v string) bool { return !strings.Contains(v, wait) })
		b.StartTimer()
	}
	lat.report(b, "ms")
}

// BenchmarkConsole_FanOut300 measures a room of 300 participants and 50
// knocking guests watched by 20 open consoles on one node: the gateway
// memory each open console holds, the size of one push, and the time from
// a change (lock or unlock) until every console has the new view.
func BenchmarkConsole_FanOut300(b *testing.B) {
	const consoles = 20
	c := newCluster(b, clusterOptions{rooms: func(cfg *rooms.Config) {
		unlimited(cfg)
		cfg.LobbyPerRoom = 1000
	}})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "big", map[string]any{"lobby_enabled": false, "capacity": 1000})
	for i := range 300 {
		c.mustJoin(n, staff(fmt.Sprintf("p%03d", i)), "big")
	}
	hostTok := c.token(h)
	if r := call(b, nil, http.MethodPut, n.apiURL("big"), hostTok, map[string]any{"lobby_enabled": true}); r.Status != http.StatusOK {
		b.Fatalf("lobby on: %d %s", r.Status, r.Body)
	}
	for i := range 50 {
		if r := c.join(n, c.token(guest(fmt.Sprintf("g%02d", i))), "big", nil); r.Status != http.StatusAccepted {
			b.Fatalf("knock %d: %d %s", i, r.Status, r.Body)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	streams := make([]*consoleStream, consoles)
	for i := range streams {
		streams[i] = openConsoleStream(b, n, "big", hostTok)
		streams[i].until(b, func(string) bool { return true })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	size := <-streams[0].bytes
	var lat latencies
	locked := false
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		path := "big/lock"
		if locked {
			path = "big/unlock"
		}
		locked = !locked
		if r := call(b, nil, http.MethodPost, n.apiURL(path), hostTok, map[string]any{}); r.Status != http.StatusOK {
			b.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		want := fmt.Sprintf(`"locked":%v`, locked)
		for _, s := range streams {
			s.until(b, func(v string) bool { return strings.Contains(v, want) })
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b, "ms")
	// Both client and server sides of the streams live in this process:
	// the figure bounds the gateway's share from above.
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/consoles, "heap-B/console")
	b.ReportMetric(float64(size), "B/push")
}
