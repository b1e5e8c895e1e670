package e2eeapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// capturingTransport hands the sender's commit to the benchmark instead of posting it.
type capturingTransport struct {
	e2ee.Transport
	epoch  uint64
	commit []byte
}

func (c *capturingTransport) PostCommit(_ context.Context, epoch uint64, b []byte) error {
	c.epoch, c.commit = epoch, bytes.Clone(b)
	return nil
}

// relayRoom is a room of members (the last one the sender) registered through the gateway, and the sender's
// client whose commit is captured instead of posted.
type relayRoom struct {
	e       *env
	sender  *user
	first   *user // a recipient
	client  *e2ee.Client
	capture *capturingTransport
	members int
}

const benchRoom = "bench"

func newRelayRoom(b *testing.B, kem e2ee.KEM, members int) *relayRoom {
	e := newEnv(b, envOptions{classic: true})
	capacity := 1000
	e.createRoom(benchRoom, nil, rooms.SettingsChange{Capacity: &capacity})
	rr := &relayRoom{e: e, members: members}
	for i := 0; i < members-1; i++ {
		u := e.user("member" + strconv.Itoa(i))
		if i == 0 {
			rr.first = u
		}
		e.admit(u, benchRoom, rooms.RoleParticipant)
		c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: e.transport(u, benchRoom), AuthorityKey: e.api.PublicKey(),
			Room: benchRoom, KEM: kem, AllowClassicKEM: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Register(e.ctx); err != nil {
			b.Fatal(err)
		}
	}
	rr.sender = e.user("sender")
	e.admit(rr.sender, benchRoom, rooms.RoleHost)
	rr.capture = &capturingTransport{Transport: e.transport(rr.sender, benchRoom)}
	c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: rr.capture, AuthorityKey: e.api.PublicKey(), Room: benchRoom, KEM: kem,
		AllowClassicKEM: true, CommitTimeout: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Register(e.ctx); err != nil {
		b.Fatal(err)
	}
	rr.client = c
	if st, err := c.Sync(e.ctx); err != nil || len(st.Members) != members || rr.capture.commit == nil {
		b.Fatalf("sync: %d members, commit %v, %v", len(st.Members), rr.capture.commit != nil, err)
	}
	rr.do(b, rr.sender, http.MethodPost, "commits", "epoch="+strconv.FormatUint(rr.capture.epoch, 10), rr.capture.commit, http.StatusNoContent)
	return rr
}

func (rr *relayRoom) do(b *testing.B, u *user, method, endpoint, query string, body []byte, want int) int {
	req, _ := http.NewRequest(method, rr.e.URL+e2eehttp.APIPath(benchRoom)+endpoint+"?"+query, bytes.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", e2eehttp.ContentType)
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

// BenchmarkFetch_HTTP is what one member's downloads cost the gateway in a 302-member room, through the real
// gateway: its sealed epoch secret (GET keys: everything one rekey costs a member), the roster a joiner fetches
// (GET roster?since=0: the head and every member's credential), and the key packages a committer fetches.
// answer_bytes is the figure docs/performance.md quotes.
func BenchmarkFetch_HTTP(b *testing.B) {
	for _, kem := range []e2ee.KEM{e2ee.KEMXWing, e2ee.KEMX25519} {
		b.Run(kem.String(), func(b *testing.B) {
			rr := newRelayRoom(b, kem, 302)
			epoch := "epoch=" + strconv.FormatUint(rr.capture.epoch, 10)
			for _, tc := range []struct{ name, endpoint, query string }{{"keys", "keys", epoch}, {"roster", "roster", "since=0"},
				{"keypackages", "keypackages", epoch}} {
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

// BenchmarkKickToNewKeys_HTTP is the end-to-end time from a kick in the rooms store to every remaining member
// holding the next epoch's secret, through one gateway node: the rooms event, the roster epoch, every member's
// long-poll waking, the designated member's commit (key packages fetched, verified, sealed), and every member
// fetching and opening its sealed secret. (The handler keeps admission bindings per process, so a room is
// served by one node; two Authorities on one store converge, see TestAuthority_LoserOfAnEpochRaceReloadsAndRetries.)
func BenchmarkKickToNewKeys_HTTP(b *testing.B) {
	for _, n := range []int{10, 30} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchKick(b, n) })
	}
}

func benchKick(b *testing.B, n int) {
	e := newEnv(b, envOptions{})
	const room = "kick-bench"
	capacity := 1000
	e.createRoom(room, nil, rooms.SettingsChange{Capacity: &capacity})
	next := 0
	join := func() (*e2ee.Client, rooms.ParticipantID) {
		u := e.user(fmt.Sprintf("member%03d", next))
		p := e.admit(u, room, rooms.RoleParticipant)
		tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: e.URL, Room: room, Authorize: u.authorize(room), MaxWait: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		next++
		c, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: e.api.PublicKey(), Room: room})
		if err != nil {
			b.Fatal(err)
		}
		e.run(c)
		return c, p.ID
	}
	var clients []*e2ee.Client
	for range n {
		c, _ := join()
		clients = append(clients, c)
	}
	e.settle(clients, n)
	wait := func(want int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := settled(clients, want); err == nil {
				return
			} else if time.Now().After(deadline) {
				b.Fatalf("never settled: %v", err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	for b.Loop() {
		b.StopTimer()
		kicked, pid := join()
		all := append(clients, kicked)
		e.settle(all, n+1)
		b.StartTimer()
		if _, err := e.rooms.Remove(e.ctx, room, pid, false); err != nil {
			b.Fatal(err)
		}
		wait(n)
	}
}
