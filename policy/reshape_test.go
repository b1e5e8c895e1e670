package policy

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// The shipped admission.rego was reshaped for speed (lookups instead of
// key sets, no set built for min, comparisons instead of negated input
// fields). testdata/admission-v1/admission.rego is the bundle's admission
// policy before that; these tests decide a large generated corpus, and the
// fuzzer's inputs, with both and require identical decisions: outcome,
// role, reasons in order, message, TTL, obligations and membership.

// reshapePair is the same bundle and data with the old and the new
// admission.rego. dataDir, when set, is a bundle whose data.json is used.
type reshapePair struct{ old, new *Engine }

func newReshapePair(t testing.TB, dataFrom string) reshapePair {
	t.Helper()
	newDir := copyShipped(t)
	oldDir := copyShipped(t)
	if dataFrom != "" {
		for _, dir := range []string{newDir, oldDir} {
			copyFile(t, filepath.Join(dataFrom, "data.json"), filepath.Join(dir, "data.json"))
		}
	}
	copyFile(t, filepath.Join("testdata", "admission-v1", "admission.rego"), filepath.Join(oldDir, "admission.rego"))
	return reshapePair{old: newEngine(t, Options{Dir: oldDir, Timeout: 10 * time.Second}), new: newEngine(t, Options{Dir: newDir, Timeout: 10 * time.Second})}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameDecision compares everything but the per-decision id and revision.
func (p reshapePair) check(t testing.TB, in Input) Decision {
	t.Helper()
	ctx := context.Background()
	want, got := p.old.Decide(ctx, in), p.new.Decide(ctx, in)
	want.DecisionID, want.Revision, got.DecisionID, got.Revision = "", "", "", ""
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("the reshaped policy decides differently\ninput: %+v\nold:   %+v\nnew:   %+v", in, want, got)
	}
	if slices.Contains(got.Reasons, "policy_error") {
		t.Fatalf("input makes the policy fail, so it compares nothing: %+v", in)
	}
	return got
}

// corpusInput draws one input from small alphabets chosen so that every
// rule's condition is met and missed: thresholds on both sides, staff
// addresses and their look-alikes, configured and unconfigured rooms, tags
// in any case, times inside and outside meeting hours.
func corpusInput(r *rand.Rand) Input {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	some := func(xs ...string) []string {
		var out []string
		for _, x := range xs {
			if r.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	flip := func() bool { return r.IntN(2) == 0 }
	n := func(xs ...int) int { return xs[r.IntN(len(xs))] }
	sub := pick("u-alice", "u-olga", "")
	in := Input{
		Identity: Identity{
			Iss: pick("https://idp.example.com", "https://idp.example.com", ""), Sub: sub,
			Email: pick("alice@example.com", "Alice@EXAMPLE.COM", "bob@lab.example.com", "eve@example.com.evil.test",
				"eve@evilexample.com", "a@b@example.com", "@example.com", "mallory@\u212Aexample.com", "gina@partner.test", ""),
			EmailVerified: r.IntN(4) != 0, Name: "Someone",
			Groups: some("staff", "meeting-hosts", "comms-team", "board-members", "team-042-leads", "it-admins"),
			ACR:    pick("", "aal1", "aal2", "phr"), AMR: some("pwd", "mfa", "otp"),
			AuthTime: 1772611200, Via: pick(ViaSession, ViaBearer, ViaSession, "cookie", ""),
		},
		Room: Room{
			ID: pick("all-hands", "board", "room-042", "room-007", "weekly-sync", ""), Exists: r.IntN(8) != 0,
			Owner: pick("u-alice", "u-olga", ""), Capacity: n(0, 0, 10, 20, 400), Occupancy: n(0, 4, 11, 12, 19, 20, 49, 50, 61, 301, 302, 500),
			Locked: r.IntN(6) == 0, LobbyEnabled: flip(), HostPresent: flip(), PasscodeRequired: r.IntN(3) == 0, PasscodeOK: flip(),
			E2EERequired: r.IntN(4) == 0, Tags: some("business-hours", "Business-Hours", "confidential", "CONFIDENTIAL", "engineering"),
			Banned: r.IntN(10) == 0,
		},
		Device: Device{KeyRegistered: flip(), KeyFingerprint: pick("", "SHA256:abc"), PQ: flip()},
		Request: Request{
			Time: time.Date(2026, 3, n(2, 4, 7, 8), n(0, 5, 6, 7, 12, 18, 19, 23), n(0, 29, 59), n(0, 30), 0, time.UTC),
			IP:   "192.0.2.10", UserAgent: "Mozilla/5.0", Method: "GET", Path: "/r/x", Origin: "https://meet.example.com",
		},
		History: History{
			WindowSeconds: 900,
			Identity:      Counters{JoinAttempts: n(0, 3), JoinFailures: n(0, 0, 1, 9, 10, 11), PasscodeFailures: n(0, 0, 1, 4, 5, 6)},
			IP:            AddressCounters{Counters: Counters{JoinAttempts: 3, JoinFailures: n(0, 40)}, Trusted: flip(), Limited: r.IntN(4) == 0},
			Room:          RoomCounters{PasscodeFailures: n(0, 30), PasscodeAttack: r.IntN(4) == 0},
		},
	}
	if flip() {
		in.Room.Owner = sub
	}
	if flip() {
		// Half the corpus passes every deny rule but one or two, so that
		// the branches after the deny set (hosts, the passcode attack,
		// staff, the lobby) are reached often.
		in.Identity.Iss, in.Identity.Via = "https://idp.example.com", ViaBearer
		in.Room.Exists, in.Room.Banned, in.Room.Locked = true, false, r.IntN(20) == 0
		in.Room.Occupancy = n(0, 4, 11, 500)
		in.History.Identity.JoinFailures, in.History.Identity.PasscodeFailures = 0, 0
		in.History.IP.Limited = r.IntN(20) == 0
		in.Room.PasscodeOK = r.IntN(5) != 0
		in.Device.KeyRegistered = r.IntN(5) != 0
		in.Request.Time = time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)
	}
	return in
}

// wantSeen are the reasons and roles the corpus must produce, so that it
// cannot shrink into comparing only the easy branches.
var wantSeen = []string{
	"unauthenticated", "rate_limited", "rate_limited_identity", "rate_limited_passcode", "rate_limited_address",
	"banned", "room_not_found", "room_locked", "outside_meeting_hours", "room_full", "mfa_required",
	"e2ee_key_required", "passcode_required", "guests_not_allowed", "host_group", "room_owner", "passcode_attack",
	"staff_domain", "waiting_for_host", "guest_lobby",
	"role:host", "role:participant", "role:viewer", "role:", "lobby", "allow", "member", "require_e2ee",
}

func TestAdmissionReshape_DecidesAsBefore(t *testing.T) {
	for _, bc := range []struct {
		name string
		data func(testing.TB) string
		n    int
	}{
		{name: "shipped-data", data: func(testing.TB) string { return "" }, n: 2000},
		{name: "100-rooms", data: benchPolicy, n: 2000},
		{name: "wait-for-host", data: waitForHostData, n: 1500},
	} {
		t.Run(bc.name, func(t *testing.T) {
			p := newReshapePair(t, bc.data(t))
			r := rand.New(rand.NewPCG(17, uint64(len(bc.name))))
			seen := map[string]bool{}
			for range bc.n {
				d := p.check(t, corpusInput(r))
				for _, reason := range d.Reasons {
					seen[reason] = true
				}
				seen["role:"+string(d.Role)] = true
				seen["lobby"] = seen["lobby"] || d.Lobby
				seen["allow"] = seen["allow"] || d.Allow
				seen["member"] = seen["member"] || d.Member
				seen["require_e2ee"] = seen["require_e2ee"] || d.Obligations["require_e2ee"] == true
			}
			for _, want := range wantSeen {
				if !seen[want] && !(bc.name == "wait-for-host" && want == "staff_domain") && !(bc.name != "wait-for-host" && want == "waiting_for_host") {
					t.Errorf("corpus never produced %q: it no longer covers that branch", want)
				}
			}
		})
	}
}

// waitForHostData is the shipped data with participants_wait_for_host on
// and a meeting-hours tag spelt in capitals.
func waitForHostData(t testing.TB) string {
	dir := copyShipped(t)
	name := filepath.Join(dir, "data.json")
	replaceIn(t, name, `"participants_wait_for_host": false`, `"participants_wait_for_host": true`)
	replaceIn(t, name, `"business-hours": {`, `"Business-Hours": {`)
	return dir
}

// FuzzAdmissionReshape decides fuzzer-chosen inputs with the old and the
// new admission.rego. The bytes steer the same alphabets as the corpus, and
// the free-form strings go into the email, a group, a tag and the room.
func FuzzAdmissionReshape(f *testing.F) {
	f.Add(uint64(1), "alice@example.com", "meeting-hosts", "business-hours", "board")
	f.Add(uint64(42), "x@EXAMPLE.com", "comms-team", "CONFIDENTIAL", "all-hands")
	f.Add(uint64(7), "a@\u0130xample.com", "", "\xff", "")
	p := newReshapePair(f, "")
	f.Fuzz(func(t *testing.T, seed uint64, email, group, tag, room string) {
		in := corpusInput(rand.New(rand.NewPCG(seed, binary.LittleEndian.Uint64([]byte(fmt.Sprintf("%-8s", email))[:8]))))
		in.Identity.Email = email
		in.Identity.Groups = append(in.Identity.Groups, group)
		in.Room.Tags = append(in.Room.Tags, tag)
		if seed%2 == 0 {
			in.Room.ID = room
		}
		p.check(t, in)
	})
}
