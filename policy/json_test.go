package policy

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Without methods: what encoding/json writes by reflection.
type (
	reflectedInput    Input
	reflectedDecision Decision
)

// reflected encodes v by reflection, with or without HTML escaping, as
// json.Marshal (on) and zap's reflected encoder (off) do.
func reflected(t testing.TB, v any, escapeHTML bool) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hostileStrings are what an identity provider, a client or a room name
// could put into an input.
var hostileStrings = []string{
	"", "plain", `quo"te`, `back\slash`, "<script>&amp;</script>", "tab\there\nnew\rline",
	"\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f", "\u2028line\u2029para", "\xff\xfe", "ok\xc3", "\xed\xa0\x80surrogate",
	"\xe2\x80", "日本語 emoji 🙂", "\u212Aelvin", "\ufffd",
}

// hugeString is a field near the audit log's record limit.
var hugeString = strings.Repeat("A\x01é<", 200000)

func hostileInput(r *rand.Rand) Input {
	s := func() string { return hostileStrings[r.IntN(len(hostileStrings))] }
	list := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{s(), s(), s()}
	}
	in := corpusInput(r)
	in.Identity.Iss, in.Identity.Sub, in.Identity.Email, in.Identity.Name = s(), s(), s(), s()
	in.Identity.Groups, in.Identity.AMR, in.Identity.ACR, in.Identity.Via = list(), list(), s(), s()
	in.Identity.AuthTime = r.Int64() - r.Int64()
	in.Room.ID, in.Room.Owner, in.Room.Tags = s(), s(), list()
	in.Room.Capacity, in.Room.Occupancy = r.IntN(1<<40)-(1<<39), -r.IntN(3)
	in.Device.KeyFingerprint = s()
	in.Request.IP, in.Request.UserAgent, in.Request.Method, in.Request.Path, in.Request.Origin = s(), s(), s(), s(), s()
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600+1800), time.FixedZone("X", -7*3600)}
	in.Request.Time = time.Date(r.IntN(3000), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(3)*r.IntN(1e9), zones[r.IntN(3)])
	in.History.Identity.JoinFailures, in.History.IP.PasscodeFailures, in.History.Room.PasscodeFailures = r.Int(), -r.Int(), r.IntN(9)
	if r.IntN(100) == 0 {
		in.Request.UserAgent = hugeString
	}
	return in
}

func checkInputJSON(t *testing.T, in Input) {
	t.Helper()
	for _, escape := range []bool{false, true} {
		want, werr := reflected(t, reflectedInput(in), escape)
		got, gerr := reflected(t, in, escape)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("escapeHTML=%v: reflection error %v, hand-written error %v", escape, werr, gerr)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("escapeHTML=%v: the hand-written encoding differs\nreflection:   %.400q\nhand-written: %.400q", escape, want, got)
		}
	}
	want, werr := reflected(t, reflectedInput(in), false)
	raw, gerr := in.AppendJSON(nil)
	if werr == nil && (gerr != nil || !bytes.Equal(want, raw)) {
		t.Fatalf("AppendJSON differs: %v\nreflection:   %.400q\nhand-written: %.400q", gerr, want, raw)
	}
}

func TestInputJSON_SameBytesAsReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 1))
	for range 1000 {
		checkInputJSON(t, hostileInput(r))
	}
	checkInputJSON(t, Input{})
	in := staffInput()
	in.Request.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // both refuse it
	checkInputJSON(t, in)
	if _, err := in.MarshalJSON(); err == nil {
		t.Fatal("a year past 9999 was encoded")
	}
}

func TestDecisionJSON_SameBytesAsReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 2))
	s := func() string { return hostileStrings[r.IntN(len(hostileStrings))] }
	for i := range 2000 {
		d := Decision{Allow: r.IntN(2) == 0, Lobby: r.IntN(2) == 0, Member: r.IntN(2) == 0, Role: s(), UserMessage: s(),
			TTLSeconds: r.IntN(1000) - 10, DecisionID: s(), Revision: s()}
		switch i % 3 {
		case 1:
			d.Reasons, d.Obligations = []string{}, map[string]any{}
		case 2:
			d.Reasons = []string{s(), s()}
			d.Obligations = map[string]any{"require_e2ee": true, "max_duration_minutes": json.Number("480"), s(): s(), "n": 1.5, "list": []any{s(), nil}}
		}
		for _, escape := range []bool{false, true} {
			want, werr := reflected(t, reflectedDecision(d), escape)
			got, gerr := reflected(t, d, escape)
			if werr != nil || gerr != nil || !bytes.Equal(want, got) {
				t.Fatalf("escapeHTML=%v: %v %v\nreflection:   %.400q\nhand-written: %.400q", escape, werr, gerr, want, got)
			}
		}
	}
}

// FuzzInputJSON compares the hand-written input encoding with reflection
// on fuzzer-chosen strings.
func FuzzInputJSON(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, "alice@example.com", int64(0))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		in := staffInput()
		in.Identity.Email, in.Identity.Name, in.Room.Tags = a, b, []string{b, a}
		in.Request.UserAgent, in.Identity.AuthTime = a+b, n
		in.Request.Time = time.Unix(n%(1<<36), n%1e9)
		checkInputJSON(t, in)
	})
}
