package e2eeapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestKick_EveryKickLeavesTheSignedRosterUnderStarvation hunts the browser run where a kick never rotated, with
// Go clients only: one CPU for the whole process (GOMAXPROCS=1) shared with busy goroutines, a room of running
// members in a room that requires e2ee, a host console asking the room's e2ee status all along (it takes the
// meeting's lock), and in every cycle a newcomer whose key is registered while another person registers and
// joins, a flood of unrelated room events that overruns the follower's subscription (so events are dropped and
// the follower must resubscribe and resync), and the newcomer kicked at a different point of its own join: right
// after registering, while its client syncs, once it follows the meeting, or (as a browser page does) with its
// key registered before its admission and taken into the roster by its first request, which the kick races. After
// each kick the gateway's own signed head (read from its store, not from any client) must come to lack the
// kicked credential; a follower blocked for good, or a reconcile that quietly keeps the credential, fails it.
func TestKick_EveryKickLeavesTheSignedRosterUnderStarvation(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e := newEnv(t, envOptions{sweep: 24 * time.Hour})
	const room, noise = "starved", "noise"
	capacity := 200
	alice := e.user("alice")
	required := true
	e.createRoom(room, alice, rooms.SettingsChange{Capacity: &capacity, E2EERequired: &required})
	e.createRoom(noise, nil, rooms.SettingsChange{})

	// Busy goroutines: the gateway, the clients and the test share one P with them.
	busy, stopBusy := context.WithCancel(e.ctx)
	defer stopBusy()
	for range 3 {
		go func() {
			sum := sha256.Sum256(nil)
			for busy.Err() == nil {
				sum = sha256.Sum256(sum[:])
			}
		}()
	}

	e.admit(alice, room, rooms.RoleHost)
	members := []*e2ee.Client{e.client(alice, room, 0)}
	for i := range 5 {
		u := e.user(fmt.Sprintf("member%d", i))
		e.admit(u, room, rooms.RoleParticipant)
		members = append(members, e.client(u, room, 0))
	}
	for _, c := range members {
		e.run(c)
	}
	e.settle(members, len(members))
	// The host console: its e2ee status takes the meeting's lock, as often as the one CPU allows.
	go func() {
		for busy.Err() == nil {
			_, _ = e.api.RoomStatus(busy, room)
			runtime.Gosched()
		}
	}()

	const cycles = 16
	var kickedCreds []e2ee.Hash
	for i := range cycles {
		k := e.user(fmt.Sprintf("kicked%d", i))
		beforeAdmission := i%4 == 3
		var pk rooms.Participant
		if !beforeAdmission {
			pk = e.admit(k, room, rooms.RoleParticipant)
		}
		ck := e.client(k, room, 0)
		j := e.user(fmt.Sprintf("joiner%d", i))

		var wg sync.WaitGroup
		// Unrelated events, more than a subscriber's buffer, while the kick is published.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 1500 {
				tags := []string{fmt.Sprintf("t%d", n%7)}
				if _, err := e.rooms.Put(e.ctx, noise, "nobody|owner", rooms.SettingsChange{Tags: &tags}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		// Someone else registers and joins meanwhile (takes the meeting lock, signs epochs).
		var cj *e2ee.Client
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.admit(j, room, rooms.RoleParticipant)
			cj = e.client(j, room, 0)
			if _, err := cj.Register(e.ctx); err != nil {
				t.Errorf("joiner %d: %v", i, err)
			}
		}()
		cred, err := ck.Register(e.ctx)
		if err != nil {
			t.Fatalf("cycle %d: register: %v", i, err)
		}
		kickedCreds = append(kickedCreds, cred.Hash())
		switch i % 4 {
		case 1:
			go func() { _, _ = ck.Sync(e.ctx) }()
		case 2, 3:
			if beforeAdmission {
				pk = e.admit(k, room, rooms.RoleParticipant)
			}
			stop, _ := e.run(ck)
			defer stop()
		}
		if _, err := e.rooms.Remove(e.ctx, room, pk.ID, false); err != nil {
			t.Fatalf("cycle %d: kick: %v", i, err)
		}
		kicked := time.Now()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// No time limit of our own: the sweep is set far beyond the test, so only the event path can rotate, and a
		// kick that never rotates is caught by the test's own deadline, with the follower's log dumped first.
		deadline := hangDeadline(t)
		for {
			head, err := signedHead(e, room)
			if err == nil && !head.Has(cred.Hash()) {
				t.Logf("cycle %d: epoch %d without the kicked member, %v after the kick", i, head.Epoch, time.Since(kicked))
				break
			}
			if time.Now().After(deadline) {
				dumpGoroutines(t, "")
				epoch := uint64(0)
				if head != nil {
					epoch = head.Epoch
				}
				t.Fatalf("cycle %d: the gateway's signed roster (epoch %d, %v) still lists the kicked credential %v after the kick; its e2ee log:\n%s",
					i, epoch, err, time.Since(kicked), followerLog(e))
			}
			time.Sleep(5 * time.Millisecond)
		}
		members = append(members, cj)
		e.run(cj)
	}
	stopBusy()
	e.settle(members, len(members))
	// Nor did any kicked key come back later (a key taken in by a request that raced its kick).
	head, err := signedHead(e, room)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range kickedCreds {
		if head.Has(c) {
			t.Errorf("the credential kicked in cycle %d is in the final roster (epoch %d)", i, head.Epoch)
		}
	}
	t.Logf("the follower resubscribed %d times after its subscription was cut off", strings.Count(string(e.logs.Bytes()), "room events interrupted"))
}

// hangDeadline is when a wait for something that must happen eventually gives up: a minute before `go test
// -timeout` would kill the binary (so the test can still dump what it knows), or ten minutes without -timeout. It
// detects hangs; it measures nothing.
func hangDeadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-time.Minute)
	}
	return time.Now().Add(10 * time.Minute)
}

// signedHead reads the room's current roster head as the gateway stored it.
func signedHead(e *env, room string) (*e2ee.Roster, error) {
	inst, err := e.store.Get(e.ctx, "e2ee-instance/"+room+"/")
	if err != nil {
		return nil, err
	}
	raw, err := e.store.Get(e.ctx, "e2ee/"+url.PathEscape(room)+"/"+url.PathEscape(string(inst))+"/head")
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil, e2ee.ErrNoRoster
	}
	if err != nil {
		return nil, err
	}
	return e2ee.ParseRoster(raw)
}

// followerLog is what the gateway logged about following room events and reconciling rosters.
func followerLog(e *env) string {
	var b strings.Builder
	for _, line := range strings.Split(string(e.logs.Bytes()), "\n") {
		if strings.Contains(line, `"logger":"e2ee`) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// dumpGoroutines writes the stack of every goroutine of the test process (the gateway's room-event follower
// among them) to a file in dir (a new temporary directory when ""), kept after the test, and logs its path: what
// shows where a follower that stopped following is blocked.
func dumpGoroutines(t testing.TB, dir string) {
	t.Helper()
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "meetguard-goroutines-"); err != nil {
			t.Logf("goroutine dump: %v", err)
			return
		}
	}
	f, err := os.Create(filepath.Join(dir, "goroutines.txt"))
	if err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	t.Logf("every goroutine's stack: %s", f.Name())
}
