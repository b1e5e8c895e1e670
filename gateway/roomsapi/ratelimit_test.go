package roomsapi_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// These tests run the rate limits as an IT team meets them: real gateways,
// the shipped policy and default limits, many people behind one address.
// Each client dials from its own 127.0.0.x source address, so the gateway
// sees that peer (no forwarding headers are trusted); the audit log's
// client_ip shows it did.

// fromAddr is a client whose connections leave from ip.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// eachStore runs fn on one gateway with the memory store and on two
// gateways sharing a real Redis.
func eachStore(t *testing.T, o clusterOptions, fn func(t *testing.T, c *cluster)) {
	for _, shared := range []bool{false, true} {
		name := "memory"
		if shared {
			name = "redis"
		}
		t.Run(name, func(t *testing.T) {
			o := o
			if shared {
				o.redis, o.nodes = true, 2
			}
			fn(t, newCluster(t, o))
		})
	}
}

// joinFrom is one join through node i mod the cluster size.
func (c *cluster) joinFrom(cl *http.Client, i int, w who, room, passcode string) reply {
	c.t.Helper()
	var body any
	if passcode != "" {
		body = map[string]string{"passcode": passcode}
	}
	return call(c.t, cl, http.MethodPost, c.nodes[i%len(c.nodes)].apiURL(room+"/join"), c.token(w), body)
}

// storm runs n joins on 16 workers and returns the replies in order.
func storm(n int, join func(i int) reply) []reply {
	out := make([]reply, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = join(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

func statuses(rs []reply) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

// rateLimitRecords are the audit records of refusals for a rate limit:
// the store's (admission.rate_limited) and the policy's.
func (c *cluster) rateLimitRecords() []*audit.Entry {
	var out []*audit.Entry
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventAdmissionRateLimited || e.Event == audit.EventAdmissionDecision && e.Str(audit.FieldUnit) != "" {
			out = append(out, e)
		}
	}
	return out
}

// seenFrom checks that the gateway took subject's address from the
// connection.
func (c *cluster) seenFrom(t *testing.T, subject, ip string) {
	t.Helper()
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventAdmissionDecision && e.Str(audit.FieldSubject) == subject {
			if got := e.Str(audit.FieldClientIP); got != ip {
				t.Fatalf("the gateway saw %s at %s, want %s", subject, got, ip)
			}
			return
		}
	}
	t.Fatalf("no admission.decision for %s", subject)
}

// awayFromBoundary waits until the fixed window of length w has at least
// margin left, so that what a test counts stays in one window.
func awayFromBoundary(w, margin time.Duration) {
	if left := w - time.Duration(time.Now().UnixMilli()%w.Milliseconds())*time.Millisecond; left < margin {
		time.Sleep(left + 100*time.Millisecond)
	}
}

func wantRetryAfter(t *testing.T, what string, r reply) int {
	t.Helper()
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != http.StatusTooManyRequests || err != nil || s < 1 {
		t.Fatalf("%s: %d Retry-After %q %s; want 429 with Retry-After", what, r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	return s
}

// TestRateLimit_AllHandsFromOneAddress: 320 colleagues behind one office
// address join a 400-seat all-hands and all get in; 300 guests behind
// another address knock and meet the waiting-room cap and their own
// limits; capacity and lobby refusals count against nobody's address.
func TestRateLimit_AllHandsFromOneAddress(t *testing.T) {
	o := clusterOptions{policyTimeout: time.Minute, policyConfig: func(cfg map[string]any) { cfg["capacity"].(map[string]any)["max"] = 1000 }}
	eachStore(t, o, func(t *testing.T, c *cluster) {
		const officeIP, guestIP = "127.0.0.2", "127.0.0.3"
		office, guests := fromAddr(officeIP), fromAddr(guestIP)
		c.createRoom(c.nodes[0], host("hanna"), "townhall", map[string]any{"capacity": 400, "lobby_enabled": true})
		c.createRoom(c.nodes[0], host("hanna"), "huddle", map[string]any{"capacity": 5, "lobby_enabled": true})
		c.createRoom(c.nodes[0], host("hanna"), "lounge", map[string]any{"lobby_enabled": true})

		rs := storm(320, func(i int) reply { return c.joinFrom(office, i, staff(fmt.Sprintf("emp%03d", i)), "townhall", "") })
		if got := statuses(rs); got[http.StatusOK] != 320 {
			t.Fatalf("320 colleagues from one address: %v, want all 320 admitted", got)
		}
		c.seenFrom(t, "emp000", officeIP)

		// A busy office fills a small room: 55 refusals for capacity
		// are nobody's failure.
		rs = storm(60, func(i int) reply { return c.joinFrom(office, i, staff(fmt.Sprintf("emp%03d", i)), "huddle", "") })
		if got := statuses(rs); got[http.StatusOK] != 5 || got[http.StatusForbidden] != 55 {
			t.Fatalf("60 colleagues into 5 seats: %v", got)
		}
		if r := c.joinFrom(office, 0, guest("visitor"), "townhall", ""); r.Status != http.StatusAccepted {
			t.Fatalf("a visitor at the office after the capacity refusals: %d %s, want waiting", r.Status, r.Body)
		}

		rs = storm(300, func(i int) reply { return c.joinFrom(guests, i, guest(fmt.Sprintf("g%03d", i)), "townhall", "") })
		got := statuses(rs)
		lobbyCap := rooms.Config{}.WithDefaults().LobbyPerRoom
		if got[http.StatusAccepted] != lobbyCap-1 || got[http.StatusTooManyRequests] != 300-(lobbyCap-1) || got[http.StatusOK] != 0 {
			t.Fatalf("300 guests from one address: %v, want %d waiting (the visitor holds one place), the rest lobby_full", got, lobbyCap-1)
		}
		for _, r := range rs {
			if r.Status == http.StatusTooManyRequests && r.str(t, "status") != "lobby_full" {
				t.Fatalf("guest refused with %s", r.Body)
			}
		}
		// One guest hammering: its own attempt limit, told for how long.
		// (The window is fixed: 2×limit attempts cross at most one
		// boundary, so one window holds more than the limit.)
		perIdentity := rooms.Config{}.WithDefaults().RateLimits.JoinAttemptsPerIdentity
		var last reply
		for i := range 2 * perIdentity {
			last = c.joinFrom(guests, i, guest("g000"), "townhall", "")
			if last.str(t, "status") == "rate_limited" {
				break
			}
		}
		wantRetryAfter(t, "a guest over its attempt limit", last)
		if last.str(t, "status") != "rate_limited" || !strings.Contains(last.str(t, "message"), "your account") {
			t.Fatalf("a guest over its attempt limit: %s", last.Body)
		}
		// Lobby outcomes did not count against the guests' address.
		if r := c.joinFrom(guests, 1, guest("g999"), "lounge", ""); r.Status != http.StatusAccepted {
			t.Fatalf("another guest from the same address: %d %s, want waiting", r.Status, r.Body)
		}
		for _, e := range c.rateLimitRecords() {
			if e.Str(audit.FieldSubject) != "g000" || e.Str(audit.FieldUnit) != string(rooms.UnitIdentity) {
				t.Fatalf("rate-limit record for someone who did not cause one: %s %s unit %q", e.Event, e.Str(audit.FieldSubject), e.Str(audit.FieldUnit))
			}
		}
	})
}

// TestRateLimit_OfficeTyposBlockOnlyTheTypist: 21 colleagues mistype the
// passcode once and one six times, all behind one address. The 23rd
// colleague with the right passcode gets in, so do the 21; the one with
// six typos is blocked from any address and told for how long.
func TestRateLimit_OfficeTyposBlockOnlyTheTypist(t *testing.T) {
	eachStore(t, clusterOptions{}, func(t *testing.T, c *cluster) {
		const right, officeIP, homeIP = "271828", "127.0.0.5", "127.0.0.6"
		office := fromAddr(officeIP)
		c.createRoom(c.nodes[0], host("hanna"), "sync", map[string]any{"passcode": right, "lobby_enabled": true})
		rs := storm(21, func(i int) reply { return c.joinFrom(office, i, staff(fmt.Sprintf("typo%02d", i)), "sync", "27182") })
		if got := statuses(rs); got[http.StatusForbidden] != 21 {
			t.Fatalf("21 single typos: %v", got)
		}
		clumsy := staff("clumsy")
		for i := range 6 {
			r := c.joinFrom(office, i, clumsy, "sync", "00000"+strconv.Itoa(i))
			if want := map[bool]int{true: http.StatusForbidden, false: http.StatusTooManyRequests}[i < 5]; r.Status != want {
				t.Fatalf("clumsy's typo %d: %d %s, want %d", i+1, r.Status, r.Body, want)
			}
		}
		c.seenFrom(t, "clumsy", officeIP)

		if r := c.joinFrom(office, 0, staff("punctual"), "sync", right); r.Status != http.StatusOK {
			t.Fatalf("the 23rd colleague with the right passcode: %d %s, want admitted", r.Status, r.Body)
		}
		rs = storm(21, func(i int) reply { return c.joinFrom(office, i, staff(fmt.Sprintf("typo%02d", i)), "sync", right) })
		if got := statuses(rs); got[http.StatusOK] != 21 {
			t.Fatalf("the 21 retrying with the right passcode: %v", got)
		}
		// Blocked from any address, with a fresh token, and told so.
		r := c.joinFrom(fromAddr(homeIP), 1, clumsy, "sync", right)
		secs := wantRetryAfter(t, "clumsy from home with the right passcode", r)
		if msg := r.str(t, "message"); !strings.Contains(msg, "your account") || !strings.Contains(msg, "try again in") {
			t.Fatalf("clumsy is told %q", msg)
		}
		if secs > int(rooms.Config{}.WithDefaults().RateLimits.FailureMemory/time.Second) {
			t.Fatalf("Retry-After %d beyond the failure memory", secs)
		}
		// A browser loading the room is shown the same on a page.
		page := call(t, fromAddr(homeIP), http.MethodGet, c.nodes[0].URL+"/room/sync/", c.token(clumsy), nil, "Accept", "text/html")
		wantRetryAfter(t, "clumsy's browser", page)
		if !strings.Contains(string(page.Body), "your account") || !strings.Contains(string(page.Body), "try again in") {
			t.Fatalf("clumsy's page: %s", page.Body)
		}
		records := c.rateLimitRecords()
		if len(records) < 2 {
			t.Fatalf("%d rate-limit records, want clumsy's", len(records))
		}
		for _, e := range records {
			if e.Str(audit.FieldSubject) != "clumsy" || e.Str(audit.FieldUnit) != string(rooms.UnitIdentity) || e.Str(audit.FieldLimit) == "" {
				t.Fatalf("rate-limit record %s for %s unit %q limit %q; want only clumsy's, unit identity",
					e.Event, e.Str(audit.FieldSubject), e.Str(audit.FieldUnit), e.Str(audit.FieldLimit))
			}
		}
	})
}

// TestRateLimit_OutsideAccountsGuessingFromOneAddress: 20 outside accounts
// behind one address guess once each; the 21st, with the right passcode,
// does not get in directly. With the defaults it waits for a host (the
// shipped policy never admits outsiders directly); with the address limit
// at 20 the address backstop refuses it, and still not a colleague
// behind that address.
func TestRateLimit_OutsideAccountsGuessingFromOneAddress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		want  int
	}{
		{"defaults", 0, http.StatusAccepted},
		{"address limit 20", 20, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An hour's window, so that the 20 guesses never straddle a
			// window boundary.
			o := clusterOptions{rooms: func(cfg *rooms.Config) {
				cfg.RateLimits.FailuresPerAddress, cfg.RateLimits.Window = tc.limit, time.Hour
			}}
			eachStore(t, o, func(t *testing.T, c *cluster) {
				const right, farmIP = "161803", "127.0.0.7"
				farm := fromAddr(farmIP)
				c.createRoom(c.nodes[0], host("hanna"), "pitch", map[string]any{"passcode": right, "lobby_enabled": true})
				rs := storm(20, func(i int) reply {
					return c.joinFrom(farm, i, guest(fmt.Sprintf("out%02d", i)), "pitch", fmt.Sprintf("%06d", i))
				})
				if got := statuses(rs); got[http.StatusForbidden] != 20 {
					t.Fatalf("20 guesses: %v", got)
				}
				r := c.joinFrom(farm, 0, guest("out20"), "pitch", right)
				if r.Status != tc.want {
					t.Fatalf("the 21st outside account with the right passcode: %d %s, want %d", r.Status, r.Body, tc.want)
				}
				if r.Status == http.StatusTooManyRequests && !strings.Contains(r.str(t, "message"), "your network") {
					t.Fatalf("told %s", r.Body)
				}
				c.seenFrom(t, "out20", farmIP)
				if r := c.joinFrom(farm, 1, staff("colleague"), "pitch", right); r.Status != http.StatusOK {
					t.Fatalf("a colleague behind the same address: %d %s, want admitted", r.Status, r.Body)
				}
				if tc.limit == 0 {
					return
				}
				// A guesser trying again is refused for the address before
				// its passcode is looked at; the audit log says so.
				wantRetryAfter(t, "a guesser again", c.joinFrom(farm, 1, guest("out03"), "pitch", right))
				units := map[string]int{}
				for _, e := range c.rateLimitRecords() {
					units[e.Event+" "+e.Str(audit.FieldUnit)+" "+e.Str(audit.FieldLimit)]++
				}
				want := map[string]int{
					"admission.decision address address_failures":     1,
					"admission.rate_limited address address_failures": 1,
				}
				if fmt.Sprint(units) != fmt.Sprint(want) {
					t.Fatalf("rate-limit records %v, want %v", units, want)
				}
			})
		})
	}
}

// TestRateLimit_DistributedGuessingSpendsTheRoomBudget: 100 accounts on
// 100 addresses guess one room's passcode once each, so no identity or
// address limit ever trips. Once the room's budget is spent, the right
// passcode only gets a colleague into the waiting room, where a host lets
// them in; the audit log records the attack on the room once.
func TestRateLimit_DistributedGuessingSpendsTheRoomBudget(t *testing.T) {
	eachStore(t, clusterOptions{}, func(t *testing.T, c *cluster) {
		const right = "141421"
		rl := rooms.Config{}.WithDefaults().RateLimits
		budget := rl.RoomPasscodeFailures
		awayFromBoundary(rl.RoomPasscodeWindow, 30*time.Second)
		c.createRoom(c.nodes[0], host("hanna"), "vault", map[string]any{"passcode": right, "lobby_enabled": true})
		guess := func(i int) reply {
			return c.joinFrom(fromAddr(fmt.Sprintf("127.0.1.%d", i+1)), i, staff(fmt.Sprintf("att%03d", i)), "vault", fmt.Sprintf("%06d", i))
		}
		for i := range budget - 1 {
			if r := guess(i); r.Status != http.StatusForbidden {
				t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		c.seenFrom(t, "att007", "127.0.1.8")
		if r := c.joinFrom(fromAddr("127.0.2.1"), 0, staff("early"), "vault", right); r.Status != http.StatusOK {
			t.Fatalf("the right passcode before the budget is spent: %d %s, want admitted", r.Status, r.Body)
		}
		for i := budget - 1; i < 100; i++ {
			if r := guess(i); r.Status != http.StatusForbidden {
				t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		sam := c.joinFrom(fromAddr("127.0.2.2"), 1, staff("sam"), "vault", right)
		if sam.Status != http.StatusAccepted || sam.str(t, "wait_id") == "" {
			t.Fatalf("a colleague with the right passcode during the attack: %d %s, want the waiting room", sam.Status, sam.Body)
		}
		if r := c.joinFrom(fromAddr("127.0.2.3"), 0, guest("gus"), "vault", right); r.Status != http.StatusAccepted {
			t.Fatalf("a guest with the right passcode: %d %s, want the waiting room", r.Status, r.Body)
		}
		if r := c.joinFrom(fromAddr("127.0.2.4"), 0, host("hanna"), "vault", ""); r.Status != http.StatusOK {
			t.Fatalf("the host: %d %s, want admitted", r.Status, r.Body)
		}
		// The host sees why people are waiting.
		view := call(t, nil, http.MethodGet, c.nodes[1%len(c.nodes)].apiURL("vault"), c.token(host("hanna")), nil)
		guard, _ := view.json(t)["passcode_guard"].(map[string]any)
		if view.Status != http.StatusOK || guard["under_attack"] != true || guard["wrong_passcodes"] != float64(100) || guard["budget"] != float64(budget) {
			t.Fatalf("the host's view of the room: %d %s", view.Status, view.Body)
		}
		if r := call(t, nil, http.MethodPost, c.nodes[0].apiURL("vault/lobby/"+sam.str(t, "wait_id")+"/admit"), c.token(host("hanna")), nil); r.Status != http.StatusOK {
			t.Fatalf("the host admits sam: %d %s", r.Status, r.Body)
		}
		var attacks []*audit.Entry
		knockReasons := map[string][]string{}
		for _, e := range c.auditEntries() {
			switch {
			case e.Event == audit.EventRoomPasscodeAttack:
				attacks = append(attacks, e)
			case e.Event == audit.EventAdmissionDecision && e.Str(audit.FieldDecision) == audit.DecisionLobby:
				knockReasons[e.Str(audit.FieldSubject)] = e.Strs(audit.FieldReasons)
			}
		}
		if len(attacks) != 1 || attacks[0].Str(audit.FieldRoom) != "vault" || attacks[0].Str(audit.FieldUnit) != string(rooms.UnitRoom) ||
			attacks[0].Str(audit.FieldLimit) != rooms.ReasonPasscodeAttack {
			t.Fatalf("passcode attack records: %d %v, want one for vault", len(attacks), attacks)
		}
		if got := knockReasons["sam"]; len(got) != 1 || got[0] != "passcode_attack" {
			t.Fatalf("sam waits for %v, want passcode_attack", got)
		}
		if n := len(c.rateLimitRecords()); n != 0 {
			t.Fatalf("%d rate-limit records: nobody guessed more than once", n)
		}
	})
}

// BenchmarkStorm302FromOneAddress is an office's all-hands under the
// default rate limits: per iteration, 302 colleagues behind one NAT
// address (127.0.0.8) join one fresh room of capacity 302 at once, over
// two gateway nodes sharing one Redis. Every one must get in. It reports
// joins/s, the join latency percentiles, and Redis round trips per join
// (scripts run, from Redis's own counters: BeginJoin, the rate-limit
// bookkeeping, then Facts and Admit).
func BenchmarkStorm302FromOneAddress(b *testing.B) {
	c := newCluster(b, clusterOptions{nodes: 2, redis: true})
	tokens := make([]string, 302)
	for i := range tokens {
		tokens[i] = c.token(staff(fmt.Sprintf("office%03d", i)))
	}
	office := fromAddr("127.0.0.8")
	owner := rooms.SubjectKey(c.idp.URL + "|hanna")
	capacity, lobby := 302, false
	rdb := c.redis.Client(b)
	// Every room-state operation is one EVALSHA: one round trip. (Redis
	// also counts the commands run inside scripts, so its total is no
	// measure of round trips.)
	commands := func() int64 {
		s, err := rdb.Info(b.Context(), "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
				n, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
				return n
			}
		}
		return 0
	}
	var lat latencies
	var elapsed time.Duration
	var cmds, trips int64
	var cpu, redisCPU time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for it := range b.N {
		b.StopTimer()
		room := fmt.Sprintf("allhands-%d", it)
		if _, err := c.nodes[0].store.Put(b.Context(), room, owner, rooms.SettingsChange{Capacity: &capacity, LobbyEnabled: &lobby}); err != nil {
			b.Fatal(err)
		}
		before, beforeTrips, cpu0, rcpu0 := commands(), c.trips.n.Load(), processCPU(), serverCPU(b, rdb)
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		var admitted atomic.Int32
		for i, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				r := call(b, office, http.MethodPost, c.nodes[i%2].apiURL(room+"/join"), tok, nil)
				lat.add(time.Since(t0))
				if r.Status == http.StatusOK {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		b.StopTimer()
		cpu += processCPU() - cpu0
		redisCPU += serverCPU(b, rdb) - rcpu0
		cmds += commands() - before
		trips += c.trips.n.Load() - beforeTrips
		b.StartTimer()
		if admitted.Load() != 302 {
			b.Fatalf("all-hands %d admitted %d of 302 colleagues from one address", it, admitted.Load())
		}
	}
	b.ReportMetric(float64(302*b.N)/elapsed.Seconds(), "joins/s")
	b.ReportMetric(float64(cmds)/float64(302*b.N), "redis-scripts/join")
	b.ReportMetric(float64(trips)/float64(302*b.N), "redis-trips/join")
	b.ReportMetric(float64(cpu.Microseconds())/float64(302*b.N), "cpu-µs/join")
	b.ReportMetric(float64(redisCPU.Microseconds())/float64(302*b.N), "redis-cpu-µs/join")
	lat.report(b, "ms")
}
