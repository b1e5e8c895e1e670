package roomsapi_test

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// Room names of one length, so that even a page naming its room has the
// same size for each.
const (
	roomMissing  = "room-missing"
	roomLocked   = "room-locked1"
	roomBanned   = "room-banned1"
	roomMembers  = "room-members"
	roomPasscode = "room-passcd1"
	roomFull     = "room-isfull1"
	roomConfid   = "room-confid1"
)

// refusalRooms sets up one room per way of being refused, and bans the
// given subjects from roomBanned.
func refusalRooms(t testing.TB, c *cluster, banned ...who) {
	t.Helper()
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, roomLocked, map[string]any{"locked": true, "lobby_enabled": false})
	c.createRoom(n, h, roomBanned, map[string]any{"lobby_enabled": false})
	c.createRoom(n, h, roomMembers, map[string]any{"lobby_enabled": false})
	c.createRoom(n, h, roomPasscode, map[string]any{"lobby_enabled": false, "passcode": "271828"})
	c.createRoom(n, h, roomFull, map[string]any{"lobby_enabled": false, "capacity": 1})
	c.createRoom(n, h, roomConfid, map[string]any{"lobby_enabled": false, "tags": []string{"confidential"}})
	c.mustJoin(n, staff("filler"), roomFull)
	for _, w := range banned {
		_, pid := c.mustJoin(n, w, roomBanned)
		r := call(t, nil, http.MethodPost, n.apiURL(roomBanned+"/participants/"+pid+"/remove"), c.token(h), map[string]any{"ban": true})
		if r.Status != http.StatusOK {
			t.Fatalf("ban %s: %d %s", w.sub, r.Status, r.Body)
		}
	}
}

// comparable drops what differs on every response (date, request id).
func comparable(r reply, room string) string {
	var keys []string
	for k, v := range r.Header {
		switch k {
		case "Date", "X-Request-Id":
			keys = append(keys, k)
		default:
			keys = append(keys, k+"="+strings.Join(v, ","))
		}
	}
	sort.Strings(keys)
	return fmt.Sprintf("%d\n%s\n%s", r.Status, strings.Join(keys, "\n"), strings.ReplaceAll(string(r.Body), room, "ROOM"))
}

// TestJoin_RefusalsLookTheSameWhateverTheReason: a missing room, a locked
// room, a room the caller is banned from, and rooms the policy refuses
// (members only, passcode, full, MFA) give a non-member the same status,
// headers and body, through the API and through the proxy, as JSON and as
// a page.
func TestJoin_RefusalsLookTheSameWhateverTheReason(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	// One caller per way of asking, so that no caller reaches the
	// policy's failure limit (which would rightly answer 429).
	callers := []who{staff("vic0"), staff("vic1"), staff("vic2"), staff("vic3")}
	refusalRooms(t, c, callers...)
	n := c.nodes[0]
	ways := []struct {
		name string
		do   func(tok, room string) reply
	}{
		{"api", func(tok, room string) reply { return c.join(n, tok, room, nil) }},
		{"api with passcode", func(tok, room string) reply { return c.join(n, tok, room, map[string]string{"passcode": "000000"}) }},
		{"proxy json", func(tok, room string) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+room+"/x", tok, nil, "Accept", "application/json")
		}},
		{"proxy page", func(tok, room string) reply {
			return call(t, nil, http.MethodGet, n.URL+"/room/"+room, tok, nil, "Accept", "text/html")
		}},
	}
	for i, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			caller, tag := callers[i], fmt.Sprint(i)
			cases := []struct {
				name string
				room string
				who  who
			}{
				{"missing", roomMissing, caller},
				{"locked", roomLocked, caller},
				{"banned", roomBanned, caller},
				{"members only, guest", roomMembers, guest("gwen" + tag)},
				{"passcode not given", roomPasscode, staff("pat" + tag)},
				{"full", roomFull, staff("fay" + tag)},
				{"needs MFA", roomConfid, staff("mo" + tag)},
			}
			want := ""
			for _, tc := range cases {
				r := way.do(c.token(tc.who), tc.room)
				if r.Status != http.StatusForbidden {
					t.Fatalf("%s: status %d, want 403: %s", tc.name, r.Status, r.Body)
				}
				got := comparable(r, tc.room)
				if want == "" {
					want = got
					continue
				}
				if got != want {
					t.Errorf("%s answers differently from a missing room:\n--- missing\n%s\n--- %s\n%s", tc.name, want, tc.name, got)
				}
			}
		})
	}
}

// TestEnumeration_ProbesAreRateLimitedLookAlikeAndAudited is zWarDial
// against meetguard: one identity tries thousands of room ids, with a real
// locked room among them.
func TestEnumeration_ProbesAreRateLimitedLookAlikeAndAudited(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), roomLocked, map[string]any{"locked": true})
	prober := staff("zed")
	tok := c.token(prober)
	const probes = 2000
	targets := make([]string, probes)
	for i := range targets {
		// The first ones alternate so that both kinds are refused before
		// the limits bite; then one in ten is the real room.
		if (i < 10 && i%2 == 0) || (i >= 10 && i%10 == 0) {
			targets[i] = roomLocked
		} else {
			targets[i] = randomRoom()
		}
	}
	type seen struct {
		real bool
		r    reply
	}
	results := make([]seen, probes)
	for i := range 10 {
		results[i] = seen{targets[i] == roomLocked, c.join(n, tok, targets[i], nil)}
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = seen{targets[i] == roomLocked, c.join(n, tok, targets[i], nil)}
			}
		}()
	}
	for i := 10; i < probes; i++ {
		work <- i
	}
	close(work)
	wg.Wait()

	byStatus := map[int]map[string]map[bool]int{}
	for i, s := range results {
		if s.r.Status != http.StatusForbidden && s.r.Status != http.StatusTooManyRequests {
			t.Fatalf("probe %d (%s): status %d %s", i, targets[i], s.r.Status, s.r.Body)
		}
		if s.r.Status == http.StatusTooManyRequests && s.r.Header.Get("Retry-After") == "" {
			t.Errorf("probe %d: 429 without Retry-After", i)
		}
		room := targets[i]
		k := comparable(s.r, room)
		if s.r.Status == http.StatusTooManyRequests {
			// Retry-After (and the body's seconds) count down with time,
			// not with the room.
			// "1 second" and "2 seconds" are the same answer a second apart.
			body := regexp.MustCompile(`[0-9]+( second| minute| hour)s?`).ReplaceAll(s.r.Body, []byte("N$1s"))
			body = regexp.MustCompile(`[0-9]+`).ReplaceAll(body, []byte("N"))
			k = comparable(reply{Status: s.r.Status, Body: body, Header: http.Header{"Retry-After": nil, "Content-Type": s.r.Header["Content-Type"]}}, room)
		}
		if byStatus[s.r.Status] == nil {
			byStatus[s.r.Status] = map[string]map[bool]int{}
		}
		if byStatus[s.r.Status][k] == nil {
			byStatus[s.r.Status][k] = map[bool]int{}
		}
		byStatus[s.r.Status][k][s.real]++
	}
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		answers := byStatus[status]
		if len(answers) != 1 {
			t.Errorf("status %d came in %d different forms: %v", status, len(answers), answers)
		}
		for _, kinds := range answers {
			if kinds[true] == 0 || kinds[false] == 0 {
				t.Errorf("status %d: real room %d times, random ids %d times; want both", status, kinds[true], kinds[false])
			}
		}
	}
	limited := 0
	for _, kinds := range byStatus[http.StatusTooManyRequests] {
		limited += kinds[true] + kinds[false]
	}
	if limited < probes*9/10 {
		t.Errorf("only %d of %d probes were rate limited", limited, probes)
	}
	if len(c.up.requestsBy(prober.sub)) != 0 {
		t.Error("a probe reached the upstream")
	}
	records := 0
	for _, e := range c.auditEntries() {
		if e.Str(audit.FieldSubject) == prober.sub && (e.Event == audit.EventAdmissionDecision || e.Event == "admission.rate_limited") {
			records++
		}
	}
	if records != probes {
		t.Errorf("audit has %d records of the probes, want one for each of %d", records, probes)
	}
	t.Logf("%d probes: %d refused outright, %d rate limited", probes, probes-limited, limited)
}

func randomRoom() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, len(roomLocked))
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// TestEnumeration_RefusalTimingDoesNotTellRoomsApart measures many
// interleaved refusals of each kind from one identity (limits raised so
// that none is rate limited) and compares the distributions: medians and
// upper quartiles must agree within noise. Loose bounds on purpose: this
// machine is shared; a real oracle (an extra store round trip, an Argon2id)
// costs far more.
func TestEnumeration_RefusalTimingDoesNotTellRoomsApart(t *testing.T) {
	if testing.Short() {
		t.Skip("timing distributions need many samples")
	}
	caller := staff("tim")
	c := newCluster(t, clusterOptions{
		rooms: func(cfg *rooms.Config) {
			r := &cfg.RateLimits
			r.JoinAttemptsPerIdentity, r.FailuresPerAddress = 1<<30, 1<<30
			r.PasscodeFailuresPerIdentity = 1 << 30
		},
		policyConfig: func(cfg map[string]any) {
			cfg["rate_limit"] = map[string]any{"identity_join_failures": 1 << 30, "identity_passcode_failures": 1 << 30}
		},
	})
	refusalRooms(t, c, caller)
	n := c.nodes[0]
	tok := c.token(caller)
	kinds := []struct {
		name     string
		room     func() string
		passcode string
	}{
		{"missing", randomRoom, ""},
		{"locked", func() string { return roomLocked }, ""},
		{"banned", func() string { return roomBanned }, ""},
		{"full", func() string { return roomFull }, ""},
		{"needs MFA", func() string { return roomConfid }, ""},
		{"missing, with a passcode", randomRoom, "123456"},
		{"passcode room, wrong passcode", func() string { return roomPasscode }, "123456"},
	}
	samples := make([][]time.Duration, len(kinds))
	rounds := 250
	if raceEnabled {
		rounds = 120
	}
	for round := -20; round < rounds; round++ {
		order := make([]int, len(kinds))
		for i := range order {
			order[i] = i
		}
		shuffle(order)
		for _, k := range order {
			var body any
			if kinds[k].passcode != "" {
				body = map[string]string{"passcode": kinds[k].passcode}
			}
			t0 := time.Now()
			r := c.join(n, tok, kinds[k].room(), body)
			d := time.Since(t0)
			if r.Status != http.StatusForbidden {
				t.Fatalf("%s: %d %s", kinds[k].name, r.Status, r.Body)
			}
			if round >= 0 {
				samples[k] = append(samples[k], d)
			}
		}
	}
	q := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(float64(len(s)-1)*p)]
	}
	close := func(a, b time.Duration) bool {
		diff := a - b
		if diff < 0 {
			diff = -diff
		}
		return diff <= 400*time.Microsecond || float64(diff) <= 0.35*float64(max(a, b))
	}
	compare := func(i, j int) {
		for _, p := range []float64{0.5, 0.75} {
			a, b := q(samples[i], p), q(samples[j], p)
			if !close(a, b) {
				t.Errorf("p%.0f: %s %v vs %s %v: refusals can be told apart by time", p*100, kinds[i].name, a, kinds[j].name, b)
			}
		}
	}
	for k := range kinds {
		t.Logf("%-30s p50 %v p75 %v p90 %v", kinds[k].name, q(samples[k], .5), q(samples[k], .75), q(samples[k], .9))
	}
	for k := 1; k < 5; k++ {
		compare(0, k)
	}
	compare(5, 6)
}

func shuffle(xs []int) {
	for i := len(xs) - 1; i > 0; i-- {
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		xs[i], xs[j.Int64()] = xs[j.Int64()], xs[i]
	}
}
