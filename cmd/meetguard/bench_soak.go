package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meetguard/meetguard/gateway/devidp"
	"github.com/meetguard/meetguard/gateway/liveconn"
)

// maxSoakUsers bounds `bench gateway --users`: the provider keeps them all
// in memory and the login page would list them.
const maxSoakUsers = 20000

// soakUser is the i-th soak identity: staff (example.com is a staff domain
// in the shipped policy's data.json), a password sign-in, no host group.
func soakUser(i int) devidp.User {
	return devidp.User{
		Subject: fmt.Sprintf("soak-%04d", i), Email: fmt.Sprintf("soak-%04d@example.com", i), EmailVerified: true,
		Name: fmt.Sprintf("Soak %04d", i), Groups: []string{"staff"}, ACR: "aal1", AMR: []string{"pwd"},
	}
}

func soakUsers(n int) []devidp.User {
	us := make([]devidp.User, n)
	for i := range us {
		us[i] = soakUser(i)
	}
	return us
}

// soakOptions are `bench soak`'s flags.
type soakOptions struct {
	gateway, metrics string
	conns, users     int
	perRoom          int
	duration, warmup time.Duration
	churn            float64 // cycles per second
	kickFraction     float64
	sample           time.Duration
	workers          int
	samplesFile      string
	// Tolerances of the verdict, per churn cycle (see soakTolerance).
	tolCountPerCycle float64
	tolHeapPerCycle  float64
}

func runBenchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench soak", stderr)
	var o soakOptions
	fs.StringVar(&o.gateway, "gateway", "", "base URL of a `meetguard bench gateway --users N`")
	fs.StringVar(&o.metrics, "metrics", "", "the gateway's admin /metrics URL")
	fs.IntVar(&o.conns, "conns", 1000, "WebSockets to hold")
	fs.IntVar(&o.users, "users", 0, "distinct identities (default --conns; the gateway needs at least as many)")
	fs.IntVar(&o.perRoom, "per-room", 50, "sockets per room (rooms get capacity per-room+10)")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to hold and churn once all sockets are open")
	fs.DurationVar(&o.warmup, "warmup", time.Minute, "start of the duration left out of the trend (caches and rate-limit windows fill)")
	fs.Float64Var(&o.churn, "churn", 10, "churn cycles per second (each: echo on a held socket, leave or kick, join, open, echo)")
	fs.Float64Var(&o.kickFraction, "kick-fraction", 0.5, "share of the cycles that are host kicks instead of leaves")
	fs.DurationVar(&o.sample, "sample", 5*time.Second, "metrics sampling interval")
	fs.IntVar(&o.workers, "workers", 32, "cycles in flight at most")
	fs.StringVar(&o.samplesFile, "samples", "", "also write every sample to this TSV file")
	fs.Float64Var(&o.tolCountPerCycle, "tol-count", 0.01, "goroutines and descriptors the trend may gain per churn cycle")
	fs.Float64Var(&o.tolHeapPerCycle, "tol-heap", 1024, "heap bytes the trend may gain per churn cycle")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if o.users == 0 {
		o.users = o.conns
	}
	switch {
	case o.gateway == "" || o.metrics == "":
		fmt.Fprintln(stderr, "meetguard bench soak: --gateway and --metrics are required")
		return exitUsage
	case o.conns < 1 || o.users < o.conns || o.users > maxSoakUsers:
		fmt.Fprintf(stderr, "meetguard bench soak: need 1 ≤ --conns ≤ --users ≤ %d\n", maxSoakUsers)
		return exitUsage
	case o.perRoom < 1 || o.perRoom > 290:
		fmt.Fprintln(stderr, "meetguard bench soak: --per-room must be 1…290")
		return exitUsage
	case o.churn <= 0 || o.kickFraction < 0 || o.kickFraction > 1 || o.workers < 1 || o.sample <= 0:
		fmt.Fprintln(stderr, "meetguard bench soak: --churn, --workers and --sample must be positive, --kick-fraction 0…1")
		return exitUsage
	case o.warmup < 0 || o.duration < o.warmup+3*o.sample:
		fmt.Fprintln(stderr, "meetguard bench soak: --duration must exceed --warmup by at least three samples")
		return exitUsage
	}
	s := newSoak(o, stderr)
	rep, err := s.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard bench soak: %v\n", err)
		return 1
	}
	rep.write(stdout)
	if o.samplesFile != "" {
		if err := os.WriteFile(o.samplesFile, rep.samplesTSV(), 0o644); err != nil {
			fmt.Fprintf(stderr, "meetguard bench soak: %v\n", err)
			return 1
		}
	}
	if rep.errorCount() > 0 || rep.verdict() == "GROWS" {
		return 1
	}
	return 0
}

// soakSlot is one held WebSocket: its identity, room and admission.
type soakSlot struct {
	user, room string
	busy       atomic.Bool
	// Owned by the one cycle that set busy.
	conn      *websocket.Conn
	ticket    string
	pid       string
	ticketEnd time.Time
}

type soakToken struct {
	mu  sync.Mutex
	tok string
	at  time.Time
}

type soak struct {
	o      soakOptions
	log    io.Writer
	hc     *http.Client
	wsc    *http.Client
	slots  []*soakSlot
	rooms  []string
	tokens []soakToken // per user; the last one is alice's
	wsBase string

	joins, leaves, leavesByClose, kicks, kickClosed, echoes, cycles atomic.Int64
	heldN                                                           atomic.Int64

	emu    sync.Mutex
	errs   map[string]int
	first  map[string]string
	logged int
}

func newSoak(o soakOptions, log io.Writer) *soak {
	u, _ := url.Parse(o.gateway)
	ws := "ws://" + u.Host
	if u.Scheme == "https" {
		ws = "wss://" + u.Host
	}
	return &soak{
		o: o, log: log, wsBase: ws,
		hc:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * o.workers}},
		wsc:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}},
		tokens: make([]soakToken, o.users+1),
		errs:   map[string]int{}, first: map[string]string{},
	}
}

// fail counts an unexpected outcome of kind and keeps its first message.
func (s *soak) fail(kind string, err error) {
	s.emu.Lock()
	defer s.emu.Unlock()
	s.errs[kind]++
	if _, ok := s.first[kind]; !ok {
		s.first[kind] = err.Error()
	}
	if s.logged < 20 {
		s.logged++
		fmt.Fprintf(s.log, "soak: %s: %v\n", kind, err)
	}
}

// token returns user i's bearer token (i == users: alice), minting a new
// one when it is more than half-way through the provider's ten minutes.
func (s *soak) token(ctx context.Context, i int) (string, error) {
	t := &s.tokens[i]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && time.Since(t.at) < 5*time.Minute {
		return t.tok, nil
	}
	name := "alice@example.com"
	if i < s.o.users {
		name = soakUser(i).Email
	}
	tok, err := fetchDevToken(ctx, s.hc, s.o.gateway, name)
	if err != nil {
		return "", err
	}
	t.tok, t.at = tok, time.Now()
	return t.tok, nil
}

// api calls the rooms API as user i and decodes a JSON answer into out.
func (s *soak) api(ctx context.Context, i int, method, path, ticket string, body any, out any) (int, error) {
	tok, err := s.token(ctx, i)
	if err != nil {
		return 0, err
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.o.gateway+"/.meetguard/api/v1/rooms/"+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ticket != "" {
		req.Header.Set("Meetguard-Ticket", ticket)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if out != nil && resp.StatusCode/100 == 2 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

func (s *soak) alice() int { return s.o.users }

// open joins slot i's room as its user, opens the WebSocket through the
// gateway with the ticket, and checks one echo.
func (s *soak) open(ctx context.Context, i int) {
	sl := s.slots[i]
	var joined struct {
		Status        string    `json:"status"`
		Ticket        string    `json:"ticket"`
		ParticipantID string    `json:"participant_id"`
		ExpiresAt     time.Time `json:"expires_at"`
	}
	if _, err := s.api(ctx, i, http.MethodPost, sl.room+"/join", "", map[string]any{}, &joined); err != nil {
		s.fail("join", err)
		return
	}
	if joined.Status != "admitted" || joined.Ticket == "" {
		s.fail("join_not_admitted", fmt.Errorf("join %s as %s: status %q", sl.room, sl.user, joined.Status))
		return
	}
	s.joins.Add(1)
	tok, err := s.token(ctx, i)
	if err != nil {
		s.fail("token", err)
		return
	}
	h := http.Header{"Authorization": {"Bearer " + tok}, "Meetguard-Ticket": {joined.Ticket}}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, s.wsBase+"/room/"+sl.room+"/ws", &websocket.DialOptions{HTTPClient: s.wsc, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		s.fail("dial", err)
		s.leave(ctx, i, joined.Ticket)
		return
	}
	c.SetReadLimit(1 << 10)
	sl.conn, sl.ticket, sl.pid, sl.ticketEnd = c, joined.Ticket, joined.ParticipantID, joined.ExpiresAt
	s.heldN.Add(1)
	if err := s.echo(ctx, c); err != nil {
		s.fail("echo_new", err)
		s.drop(ctx, i)
	}
}

// echo sends one message and waits for the upstream's echo.
func (s *soak) echo(ctx context.Context, c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		return err
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if string(msg) != "ping" {
		return fmt.Errorf("echo %q", msg)
	}
	s.echoes.Add(1)
	return nil
}

// leave gives up the admission with its ticket. A ticket at the end of its
// life cannot (404): then closing the socket is the leave, as the gateway
// ends an admission whose last WebSocket closed a few seconds ago.
func (s *soak) leave(ctx context.Context, i int, ticket string) {
	sl := s.slots[i]
	if !sl.ticketEnd.IsZero() && time.Until(sl.ticketEnd) < 10*time.Second {
		s.leavesByClose.Add(1)
		return
	}
	if _, err := s.api(ctx, i, http.MethodPost, sl.room+"/leave", ticket, nil, nil); err != nil {
		s.fail("leave", err)
		return
	}
	s.leaves.Add(1)
}

// drop closes slot i's socket after a failure and leaves.
func (s *soak) drop(ctx context.Context, i int) {
	sl := s.slots[i]
	if sl.conn != nil {
		_ = sl.conn.CloseNow()
		s.leave(ctx, i, sl.ticket)
		s.heldN.Add(-1)
	}
	sl.conn, sl.ticket, sl.pid, sl.ticketEnd = nil, "", "", time.Time{}
}

// cycle is one churn step on slot i: the held socket must still echo;
// then its user leaves (closes the socket, POST leave) or a host kicks it
// (the gateway must close the socket with 4001); then it joins again.
func (s *soak) cycle(ctx context.Context, i int, kick bool) {
	sl := s.slots[i]
	s.cycles.Add(1)
	if sl.conn != nil {
		if err := s.echo(ctx, sl.conn); err != nil {
			s.fail("held_echo", err)
			s.drop(ctx, i)
		} else if kick {
			s.kick(ctx, i)
		} else {
			if err := sl.conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				s.fail("close", err)
			}
			s.leave(ctx, i, sl.ticket)
			s.heldN.Add(-1)
			sl.conn, sl.ticket, sl.pid, sl.ticketEnd = nil, "", "", time.Time{}
		}
	}
	if ctx.Err() == nil {
		s.open(ctx, i)
	}
}

func (s *soak) kick(ctx context.Context, i int) {
	sl := s.slots[i]
	c := sl.conn
	sl.conn, sl.ticket, sl.ticketEnd = nil, "", time.Time{}
	s.heldN.Add(-1)
	defer c.CloseNow()
	if _, err := s.api(ctx, s.alice(), http.MethodPost, sl.room+"/participants/"+url.PathEscape(sl.pid)+"/remove", "",
		map[string]any{"ban": false, "reason": "soak"}, nil); err != nil {
		s.fail("kick", err)
		return
	}
	s.kicks.Add(1)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, msg, err := c.Read(rctx)
	switch {
	case err == nil:
		s.fail("kick_not_closed", fmt.Errorf("kicked socket in %s still relays: %q", sl.room, msg))
	case websocket.CloseStatus(err) == websocket.StatusCode(liveconn.CodeRemoved):
		s.kickClosed.Add(1)
	default:
		s.fail("kick_close_code", fmt.Errorf("kicked socket in %s: %w (want close code %d)", sl.room, err, liveconn.CodeRemoved))
	}
}

// soakSample is one scrape of the gateway's metrics.
type soakSample struct {
	at                           time.Duration // since the soak started
	heapInuse, heapGoal, rss     float64
	goroutines, fds              float64
	held, cycles, joins, errorsN int64
}

var soakMetricNames = []string{"go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "process_resident_memory_bytes", "go_goroutines", "process_open_fds"}

func (s *soak) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.o.metrics, nil)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := map[string]float64{}
	for _, name := range soakMetricNames {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return nil, fmt.Errorf("metrics: no %s", name)
		}
		m := f.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			out[name] = m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			out[name] = m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			out[name] = m.GetUntyped().GetValue()
		}
	}
	return out, nil
}

// held is the number of open sockets (a slot in a cycle holds its socket
// until it leaves or is kicked).
func (s *soak) held() int64 { return s.heldN.Load() }

func (s *soak) errorCount() int64 {
	s.emu.Lock()
	defer s.emu.Unlock()
	var n int64
	for _, c := range s.errs {
		n += int64(c)
	}
	return n
}

// run opens the sockets, churns and samples for the duration, checks every
// held socket once more, and reports.
func (s *soak) run(ctx context.Context) (*soakReport, error) {
	start := time.Now()
	la0 := loadAvg()
	if _, err := s.scrape(ctx); err != nil {
		return nil, err
	}
	rooms := (s.o.conns + s.o.perRoom - 1) / s.o.perRoom
	for r := range rooms {
		s.rooms = append(s.rooms, fmt.Sprintf("soak-%03d", r))
	}
	for _, room := range s.rooms {
		if _, err := s.api(ctx, s.alice(), http.MethodPut, room, "", map[string]any{"capacity": s.o.perRoom + 10, "lobby_enabled": false}, nil); err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
	}
	for i := range s.o.conns {
		s.slots = append(s.slots, &soakSlot{user: soakUser(i).Email, room: s.rooms[i/s.o.perRoom]})
	}
	fmt.Fprintf(s.log, "soak: %d rooms; opening %d WebSockets as %d users...\n", len(s.rooms), s.o.conns, s.o.conns)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s.open(ctx, i)
			}
		}()
	}
	for i := range s.slots {
		work <- i
	}
	close(work)
	wg.Wait()
	// The ramp's 50 keep-alive connections would sit idle until the
	// gateway's idle timeout and then fall out of its goroutine and
	// descriptor counts in the middle of the trend.
	s.hc.CloseIdleConnections()
	rampEnd := time.Now()
	fmt.Fprintf(s.log, "soak: %d held after %s; churning %.1f cycles/s for %s\n", s.held(), rampEnd.Sub(start).Round(time.Second), s.o.churn, s.o.duration)

	cctx, stop := context.WithDeadline(ctx, rampEnd.Add(s.o.duration))
	defer stop()
	var samples []soakSample
	var smu sync.Mutex
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // sampler
		defer bg.Done()
		t := time.NewTicker(s.o.sample)
		defer t.Stop()
		lastLog := time.Now()
		for {
			m, err := s.scrape(cctx)
			if err != nil && cctx.Err() == nil {
				s.fail("metrics", err)
			}
			if err == nil {
				smp := soakSample{at: time.Since(rampEnd), heapInuse: m["go_memstats_heap_inuse_bytes"], heapGoal: m["go_memstats_next_gc_bytes"],
					rss: m["process_resident_memory_bytes"], goroutines: m["go_goroutines"], fds: m["process_open_fds"],
					held: s.held(), cycles: s.cycles.Load(), joins: s.joins.Load(), errorsN: s.errorCount()}
				smu.Lock()
				samples = append(samples, smp)
				smu.Unlock()
				if time.Since(lastLog) >= 30*time.Second {
					lastLog = time.Now()
					fmt.Fprintf(s.log, "soak: %s held %d cycles %d errors %d heap %.1f MiB goroutines %.0f fds %.0f (load %s)\n",
						smp.at.Round(time.Second), smp.held, smp.cycles, smp.errorsN, smp.heapInuse/(1<<20), smp.goroutines, smp.fds, loadAvg())
				}
			}
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	// The churn: slots in a shuffled round robin, so every socket is held
	// for conns/churn seconds and checked at the end of it.
	order := rand.Perm(len(s.slots))
	jobs := make(chan [2]int, s.o.workers)
	for range s.o.workers {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for j := range jobs {
				// A cycle under way when the duration ends completes.
				s.cycle(ctx, j[0], j[1] == 1)
				s.slots[j[0]].busy.Store(false)
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / s.o.churn)
	tick := time.NewTicker(interval)
	var skipped int64
	for k := 0; cctx.Err() == nil; k++ {
		select {
		case <-cctx.Done():
		case <-tick.C:
			i := order[k%len(order)]
			if !s.slots[i].busy.CompareAndSwap(false, true) {
				skipped++
				continue
			}
			kick := 0
			if rand.Float64() < s.o.kickFraction {
				kick = 1
			}
			select {
			case jobs <- [2]int{i, kick}:
			case <-cctx.Done():
				s.slots[i].busy.Store(false)
			}
		}
	}
	tick.Stop()
	close(jobs)
	bg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Every socket still held must still echo.
	churnLeaves := s.leaves.Load()
	final := 0
	for i, sl := range s.slots {
		if sl.conn == nil {
			continue
		}
		if err := s.echo(ctx, sl.conn); err != nil {
			s.fail("held_echo", err)
		} else {
			final++
		}
		_ = sl.conn.Close(websocket.StatusNormalClosure, "done")
		s.leave(ctx, i, sl.ticket)
	}
	rep := &soakReport{o: s.o, samples: samples, load: [2]string{la0, loadAvg()}, when: start.UTC(),
		rooms: len(s.rooms), finalHeld: final, skipped: skipped,
		joins: s.joins.Load(), leaves: churnLeaves, finalLeaves: s.leaves.Load() - churnLeaves, leavesByClose: s.leavesByClose.Load(), kicks: s.kicks.Load(),
		kickClosed: s.kickClosed.Load(), echoes: s.echoes.Load(), cycles: s.cycles.Load(),
		errs: s.errs, first: s.first}
	return rep, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// soakReport is what a soak prints.
type soakReport struct {
	o                                                       soakOptions
	samples                                                 []soakSample
	load                                                    [2]string
	when                                                    time.Time
	rooms, finalHeld                                        int
	skipped                                                 int64
	joins, leaves, leavesByClose, kicks, kickClosed, echoes int64
	finalLeaves                                             int64
	cycles                                                  int64
	errs                                                    map[string]int
	first                                                   map[string]string
	trends                                                  []soakTrend
}

// soakTrend is one measure over the steady window.
type soakTrend struct {
	name, unit                    string
	scale                         float64 // shown value = raw / scale
	first, last, min, max, median float64
	slope, se                     float64 // raw units per minute
	tol                           float64 // raw units per minute
	verdict                       string
}

// linearTrend fits y = a + b·x by least squares and returns b and its
// standard error (0 with fewer than three points).
func linearTrend(x, y []float64) (slope, se float64) {
	n := float64(len(x))
	if len(x) < 2 || len(x) != len(y) {
		return 0, 0
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return 0, 0
	}
	slope = sxy / sxx
	if len(x) < 3 {
		return slope, 0
	}
	var ssr float64
	for i := range x {
		r := y[i] - (my + slope*(x[i]-mx))
		ssr += r * r
	}
	return slope, math.Sqrt(ssr / (n - 2) / sxx)
}

// trendVerdict judges a slope (per minute) against a tolerance (per
// minute), given the slope's standard error: "flat" within ±tol; "falls"
// below -tol (what the warm-up left going back: not a leak); "grows" when
// even slope-2·se is above tol (a leak at least the tolerance's size);
// else "unclear": above the tolerance but within the noise, so the run was
// too short to tell.
func trendVerdict(slope, se, tol float64) string {
	switch {
	case math.Abs(slope) <= tol:
		return "flat"
	case slope < -tol:
		return "falls"
	case slope-2*se > tol:
		return "grows"
	}
	return "unclear"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// steady is the samples after the warm-up.
func (r *soakReport) steady() []soakSample {
	var out []soakSample
	for _, s := range r.samples {
		if s.at >= r.o.warmup {
			out = append(out, s)
		}
	}
	return out
}

// cyclesPerMinute is the churn the steady window saw.
func (r *soakReport) cyclesPerMinute() float64 {
	st := r.steady()
	if len(st) < 2 {
		return 0
	}
	d := st[len(st)-1].at - st[0].at
	if d <= 0 {
		return 0
	}
	return float64(st[len(st)-1].cycles-st[0].cycles) / d.Minutes()
}

func (r *soakReport) computeTrends() []soakTrend {
	if r.trends != nil {
		return r.trends
	}
	st := r.steady()
	cpm := r.cyclesPerMinute()
	x := make([]float64, len(st))
	for i, s := range st {
		x[i] = s.at.Minutes()
	}
	// Tolerances per minute scale with the churn: a leak of tol-count
	// goroutines or descriptors, or tol-heap bytes, per cycle, or more,
	// reads "grows". At least one object per minute: a count moves in
	// whole steps.
	countTol := math.Max(1, r.o.tolCountPerCycle*cpm)
	heapTol := r.o.tolHeapPerCycle * cpm
	for _, m := range []struct {
		name, unit string
		scale, tol float64
		get        func(soakSample) float64
	}{
		{"heap in use (go_memstats_heap_inuse_bytes)", "MiB", 1 << 20, heapTol, func(s soakSample) float64 { return s.heapInuse }},
		{"heap goal after GC (go_memstats_next_gc_bytes)", "MiB", 1 << 20, heapTol, func(s soakSample) float64 { return s.heapGoal }},
		{"goroutines (go_goroutines)", "", 1, countTol, func(s soakSample) float64 { return s.goroutines }},
		{"open descriptors (process_open_fds)", "", 1, countTol, func(s soakSample) float64 { return s.fds }},
		{"resident memory (process_resident_memory_bytes)", "MiB", 1 << 20, math.NaN(), func(s soakSample) float64 { return s.rss }},
	} {
		y := make([]float64, len(st))
		for i, s := range st {
			y[i] = m.get(s)
		}
		t := soakTrend{name: m.name, unit: m.unit, scale: m.scale, tol: m.tol}
		if len(y) > 0 {
			t.first, t.last, t.min, t.max, t.median = y[0], y[len(y)-1], slices.Min(y), slices.Max(y), median(y)
		}
		t.slope, t.se = linearTrend(x, y)
		t.verdict = "(shown only)"
		if !math.IsNaN(m.tol) {
			t.verdict = trendVerdict(t.slope, t.se, m.tol)
		}
		r.trends = append(r.trends, t)
	}
	return r.trends
}

// verdict is "flat" when no measure grows or is unclear, "GROWS" when one
// grows, else "unclear".
func (r *soakReport) verdict() string {
	v := "flat"
	for _, t := range r.computeTrends() {
		switch t.verdict {
		case "grows":
			return "GROWS"
		case "unclear":
			v = "unclear (run longer)"
		}
	}
	return v
}

func (r *soakReport) errorCount() int {
	n := 0
	for _, c := range r.errs {
		n += c
	}
	return n
}

func (r *soakReport) write(w io.Writer) {
	st := r.steady()
	trends := r.computeTrends()
	fmt.Fprintf(w, "## Soak: %d WebSockets as %d identities in %d rooms, %s, churn %.1f cycles/s (kick share %.2f)\n\n",
		r.o.conns, r.o.conns, r.rooms, r.o.duration, r.o.churn, r.o.kickFraction)
	fmt.Fprintf(w, "Started %s. Load average at start %s, at end %s. Trend over %d samples every %s from %s to the end (warm-up left out).\n\n",
		r.when.Format("2006-01-02 15:04 UTC"), r.load[0], r.load[1], len(st), r.o.sample, r.o.warmup)
	fmt.Fprintln(w, "| measure | first | last | min | max | median | slope per minute (± s.e.) | tolerance per minute | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, t := range trends {
		f := func(v float64) string {
			if t.scale == 1 {
				return fmt.Sprintf("%.0f", v)
			}
			return fmt.Sprintf("%.1f", v/t.scale)
		}
		fs := func(v float64) string {
			if t.scale == 1 {
				return fmt.Sprintf("%+.2f", v)
			}
			return fmt.Sprintf("%+.3f", v/t.scale)
		}
		name := t.name
		if t.unit != "" {
			name += ", " + t.unit
		}
		tol := "–"
		if !math.IsNaN(t.tol) {
			tol = "±" + strings.TrimPrefix(fs(t.tol), "+")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s (± %s) | %s | %s |\n", name, f(t.first), f(t.last), f(t.min), f(t.max), f(t.median),
			fs(t.slope), strings.TrimPrefix(fs(t.se), "+"), tol, t.verdict)
	}
	var heldMin, heldMax int64 = math.MaxInt64, 0
	for _, s := range st {
		heldMin, heldMax = min(heldMin, s.held), max(heldMax, s.held)
	}
	if len(st) == 0 {
		heldMin = 0
	}
	fmt.Fprintf(w, "\nTolerances: %.3g goroutines or descriptors (at least 1 per minute) and %.0f heap bytes per churn cycle, at the %.0f cycles per minute measured.\n",
		r.o.tolCountPerCycle, r.o.tolHeapPerCycle, r.cyclesPerMinute())
	fmt.Fprintf(w, "Sockets open in the samples: %d–%d; at the end %d, each echoed once more, closed and left (%d leaves).\n", heldMin, heldMax, r.finalHeld, r.finalLeaves)
	fmt.Fprintf(w, "Operations: %d cycles; joins %d (the first %d included); leaves %d by `POST …/leave` and %d by closing a socket whose ticket was expiring; kicks %d, kicked sockets closed by the gateway with %d: %d; echoes %d; cycles skipped because the slot was still busy: %d.\n",
		r.cycles, r.joins, r.o.conns, r.leaves, r.leavesByClose, r.kicks, liveconn.CodeRemoved, r.kickClosed, r.echoes, r.skipped)
	if r.errorCount() == 0 {
		fmt.Fprintln(w, "Errors: none.")
	} else {
		kinds := make([]string, 0, len(r.errs))
		for k := range r.errs {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprintln(w, "Errors:")
		for _, k := range kinds {
			fmt.Fprintf(w, "- %s: %d (first: %s)\n", k, r.errs[k], r.first[k])
		}
	}
	fmt.Fprintf(w, "\nVerdict: %s, %d unexpected errors.\n", r.verdict(), r.errorCount())
}

func (r *soakReport) samplesTSV() []byte {
	var b bytes.Buffer
	b.WriteString("seconds\theap_inuse_bytes\theap_goal_bytes\trss_bytes\tgoroutines\topen_fds\theld\tcycles\tjoins\terrors\n")
	for _, s := range r.samples {
		fmt.Fprintf(&b, "%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%d\n", s.at.Seconds(), s.heapInuse, s.heapGoal, s.rss, s.goroutines, s.fds, s.held, s.cycles, s.joins, s.errorsN)
	}
	return b.Bytes()
}
