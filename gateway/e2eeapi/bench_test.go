package e2eeapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/rooms"
)

type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *benchClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// capturingTransport hands the sender's bundles to the benchmark instead of posting them.
type capturingTransport struct {
	e2ee.Transport
	epoch  uint64
	bundle []byte
}

func (c *capturingTransport) PostBundle(_ context.Context, epoch uint64, b []byte) error {
	c.epoch, c.bundle = epoch, bytes.Clone(b)
	return nil
}

// BenchmarkRelayBundle_HTTP is the gateway's relay time for one sender's bundle over HTTP through the real
// gateway: bearer token check, ticket and membership check, body read, and the Authority's validation and
// storage of one sealed key per recipient. Sealing (client CPU) is outside the timer.
func BenchmarkRelayBundle_HTTP(b *testing.B) {
	for _, kem := range []e2ee.KEM{e2ee.KEMXWing, e2ee.KEMX25519} {
		for _, members := range []int{3, 302} {
			b.Run(fmt.Sprintf("%v/members=%d", kem, members), func(b *testing.B) { benchRelay(b, kem, members) })
		}
	}
}

// relayRoom is a room of members (the last one the sender) registered through the gateway, and the sender's
// client whose bundles are captured instead of posted.
type relayRoom struct {
	e       *env
	sender  *user
	first   *user // a recipient
	client  *e2ee.Client
	capture *capturingTransport
	clock   *benchClock
	members int
}

const benchRoom = "bench"

func newRelayRoom(b *testing.B, kem e2ee.KEM, members int) *relayRoom {
	e := newEnv(b, envOptions{classic: true})
	capacity := 1000
	e.createRoom(benchRoom, nil, rooms.SettingsChange{Capacity: &capacity})
	rr := &relayRoom{e: e, members: members, clock: &benchClock{t: time.Now()}}
	for i := 0; i < members-1; i++ {
		u := e.user("member" + strconv.Itoa(i))
		if i == 0 {
			rr.first = u
		}
		e.admit(u, benchRoom, rooms.RoleParticipant)
		if _, err := e.client(u, benchRoom, kem).Register(e.ctx); err != nil {
			b.Fatal(err)
		}
	}
	rr.sender = e.user("sender")
	e.admit(rr.sender, benchRoom, rooms.RoleHost)
	rr.capture = &capturingTransport{Transport: e.transport(rr.sender, benchRoom)}
	c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: rr.capture, AuthorityKey: e.api.PublicKey(), Room: benchRoom, KEM: kem,
		Clock: rr.clock, RekeyInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Register(e.ctx); err != nil {
		b.Fatal(err)
	}
	rr.client = c
	return rr
}

// next makes the sender seal a fresh bundle (a timer re-key: the next generation).
func (rr *relayRoom) next(b *testing.B) {
	rr.capture.bundle = nil
	rr.clock.Advance(2 * time.Second)
	if st, err := rr.client.Sync(rr.e.ctx); err != nil || len(st.Members) != rr.members || rr.capture.bundle == nil {
		b.Fatalf("sync: %d members, bundle %v, %v", len(st.Members), rr.capture.bundle != nil, err)
	}
}

func (rr *relayRoom) do(b *testing.B, u *user, method, endpoint, query string, body []byte, want int) int {
	req, _ := http.NewRequest(method, rr.e.URL+e2ee.APIPath(benchRoom)+endpoint+"?"+query, bytes.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", e2ee.ContentType)
	}
	_ = u.authorize(benchRoom)(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d", method, endpoint, resp.StatusCode)
	}
	return int(n)
}

func (rr *relayRoom) post(b *testing.B) {
	rr.do(b, rr.sender, http.MethodPost, "bundles", "epoch="+strconv.FormatUint(rr.capture.epoch, 10), rr.capture.bundle, http.StatusNoContent)
}

func benchRelay(b *testing.B, kem e2ee.KEM, members int) {
	rr := newRelayRoom(b, kem, members)
	rr.next(b)
	rr.post(b) // warm connections
	b.SetBytes(int64(len(rr.capture.bundle)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rr.next(b)
		b.StartTimer()
		rr.post(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(rr.capture.bundle)), "bundle_bytes")
}

// BenchmarkFetch_HTTP is what one member's downloads cost the gateway in a 302-member room, through the real
// gateway: its sealed key from one sender (GET keys), and the roster a joiner fetches (GET roster?since=0: the
// head and every member's credential).
func BenchmarkFetch_HTTP(b *testing.B) {
	for _, kem := range []e2ee.KEM{e2ee.KEMXWing, e2ee.KEMX25519} {
		b.Run(kem.String(), func(b *testing.B) {
			rr := newRelayRoom(b, kem, 302)
			rr.next(b)
			rr.post(b)
			epoch := "epoch=" + strconv.FormatUint(rr.capture.epoch, 10)
			for _, tc := range []struct{ name, endpoint, query string }{{"keys", "keys", epoch}, {"roster", "roster", "since=0"}} {
				b.Run(tc.name, func(b *testing.B) {
					n := rr.do(b, rr.first, http.MethodGet, tc.endpoint, tc.query, nil, http.StatusOK)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						rr.do(b, rr.first, http.MethodGet, tc.endpoint, tc.query, nil, http.StatusOK)
					}
					b.ReportMetric(float64(n), "answer_bytes")
				})
			}
		})
	}
}
