package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// fullInput sets every field, so that a field missing from value() shows.
func fullInput() Input {
	return Input{
		Identity: Identity{Iss: "https://idp", Sub: "s", Email: "e@x.test", EmailVerified: true, Name: "N",
			Groups: []string{"g1", "g2"}, ACR: "aal2", AMR: []string{"pwd", "mfa"}, AuthTime: 1772611200, Via: ViaBearer},
		Room: Room{ID: "r", Exists: true, Owner: "o", Capacity: 7, Occupancy: 3, Locked: true, LobbyEnabled: true,
			HostPresent: true, PasscodeRequired: true, PasscodeOK: true, E2EERequired: true, Tags: []string{"t"}, Banned: true},
		Device:  Device{KeyRegistered: true, KeyFingerprint: "SHA256:f", PQ: true},
		Request: Request{Time: time.Date(2026, 3, 4, 9, 30, 0, 123456789, time.FixedZone("CET", 3600)), IP: "192.0.2.1", UserAgent: "ua", Method: "POST", Path: "/p", Origin: "https://o"},
		History: History{WindowSeconds: 900, Identity: Counters{1, 2, 3}, IP: AddressCounters{Counters{4, 5, 6}, true, true},
			Room: RoomCounters{PasscodeFailures: 7, PasscodeAttack: true}},
	}
}

// viaJSON is the reference conversion: what OPA would get from the JSON the
// audit log records.
func viaJSON(t *testing.T, in Input) ast.Value {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := util.UnmarshalJSON(b, &v); err != nil {
		t.Fatal(err)
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return val
}

func TestInputValue_EqualsJSONConversion(t *testing.T) {
	in := fullInput()
	if got, want := in.value(), viaJSON(t, in); got.Compare(want) != 0 {
		t.Fatalf("value() differs from the JSON form:\n got %v\nwant %v", got, want)
	}
	// Every field counts: changing any one changes the value.
	rv := reflect.ValueOf(&in).Elem()
	for i := range rv.NumField() {
		section := rv.Field(i)
		for j := range section.NumField() {
			f := section.Field(j)
			if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(time.Time{}) {
				continue
			}
			changed := fullInput()
			cf := reflect.ValueOf(&changed).Elem().Field(i).Field(j)
			switch cf.Kind() {
			case reflect.String:
				cf.SetString(cf.String() + "!")
			case reflect.Bool:
				cf.SetBool(!cf.Bool())
			case reflect.Int, reflect.Int64:
				cf.SetInt(cf.Int() + 1)
			case reflect.Slice:
				cf.Set(reflect.Append(cf, reflect.ValueOf("extra")))
			case reflect.Struct:
				cf.Set(reflect.ValueOf(time.Unix(0, 0).UTC()))
			}
			if changed.value().Compare(in.value()) == 0 {
				t.Errorf("%s.%s does not reach the policy", rv.Type().Field(i).Name, section.Type().Field(j).Name)
			}
		}
	}
}

// TestInputValue_EqualsJSONConversionOnEveryExample checks value() against the
// reference conversion on the documented inputs, the fuzz seeds and the
// zero input: equal as values and equal in hash (OPA's object and set
// lookups go by hash first), and two conversions of one input are equal.
// They do share OPA's interned terms (the empty string and list), which
// neither OPA's evaluation nor the decision log's masking (it edits a JSON
// copy) ever changes.
func TestInputValue_EqualsJSONConversionOnEveryExample(t *testing.T) {
	inputs := map[string]Input{"zero": {}, "full": fullInput()}
	emptyLists := fullInput()
	emptyLists.Identity.Groups, emptyLists.Identity.AMR, emptyLists.Room.Tags = []string{}, nil, []string{}
	inputs["empty lists"] = emptyLists
	files, err := filepath.Glob("testdata/inputs/*.json")
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := filepath.Glob("testdata/fuzz/FuzzParseInput/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if inputs[name], err = ParseInput(name, b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		data, ok := fuzzSeedBytes(b)
		if !ok {
			t.Fatalf("%s: not a []byte seed", name)
		}
		if in, err := ParseInput(name, data); err == nil {
			inputs[name] = in
		}
	}
	if len(inputs) < 3+len(files)+1 {
		t.Fatalf("only %d inputs parsed; the seeds did not load", len(inputs))
	}
	for name, in := range inputs {
		got, want := in.value(), viaJSON(t, nilListsEmpty(in))
		if got.Compare(want) != 0 {
			t.Errorf("%s: value() differs from the JSON form:\n got %v\nwant %v", name, got, want)
		}
		if got.Hash() != want.Hash() {
			t.Errorf("%s: hash %d, JSON form's %d", name, got.Hash(), want.Hash())
		}
		if again := in.value(); again.Compare(got) != 0 || again.Hash() != got.Hash() {
			t.Errorf("%s: two conversions differ", name)
		}
	}
}

// nilListsEmpty is in with its nil lists empty, as value() gives them to
// policies (encoding/json would write null).
func nilListsEmpty(in Input) Input {
	for _, l := range []*[]string{&in.Identity.Groups, &in.Identity.AMR, &in.Room.Tags} {
		if *l == nil {
			*l = []string{}
		}
	}
	return in
}

// fuzzSeedBytes reads the one []byte value of a seed corpus file.
func fuzzSeedBytes(file []byte) ([]byte, bool) {
	lines := strings.SplitN(string(file), "\n", 3)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "go test fuzz v1") {
		return nil, false
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
	if !ok {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	return []byte(s), err == nil
}

func BenchmarkInputValue(b *testing.B) {
	in := fullInput()
	b.ReportAllocs()
	for b.Loop() {
		_ = in.value()
	}
}

func TestInputValue_NilListsAreEmptyLists(t *testing.T) {
	v := (&Input{}).value().(ast.Object)
	groups, err := v.Find(ast.MustParseRef("x.identity.groups")[1:])
	if err != nil {
		t.Fatal(err)
	}
	if arr, ok := groups.(*ast.Array); !ok || arr.Len() != 0 {
		t.Errorf("nil groups became %v, want []", groups)
	}
}

func TestParseInput_AcceptsTheDocumentedExamples(t *testing.T) {
	for _, name := range []string{"testdata/inputs/guest.json", "testdata/inputs/staff_confidential.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		in, err := ParseInput(name, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if in.Identity.Sub == "" || in.Request.Time.IsZero() || in.History.WindowSeconds != 900 {
			t.Errorf("%s parsed as %+v", name, in)
		}
	}
}

func TestParseInput_HostileInputs(t *testing.T) {
	valid, err := json.Marshal(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		doc      string
		line     int
		field    string
		contains string
	}{
		{name: "empty", doc: "", contains: "empty"},
		{name: "whitespace", doc: " \n\t", contains: "empty"},
		{name: "not JSON", doc: "identity: alice", line: 1, contains: "must be a JSON object"},
		{name: "array", doc: "[]", line: 1, contains: "must be a JSON object"},
		{name: "null", doc: "null", line: 1, contains: "must be a JSON object"},
		{name: "syntax error on line 3", doc: "{\n  \"room\": {},\n  \"device\": {,}\n}", line: 3, contains: "invalid JSON"},
		{name: "truncated", doc: "{\"identity\": {\"sub\": \"x\"", contains: "unexpected end"},
		{name: "typo in a field", doc: "{\n\"identty\": {}}", line: 2, field: "identty", contains: "unknown field"},
		{name: "typo in a nested field", doc: "{\"room\": {\n\"capasity\": 3}}", line: 2, field: "capasity", contains: "unknown field"},
		{name: "string for a number", doc: "{\"room\":\n {\"capacity\": \"ten\"}}", line: 2, field: "room.capacity", contains: "must be a whole number"},
		{name: "fraction for a number", doc: `{"room": {"occupancy": 1.5}}`, field: "room.occupancy", contains: "whole number"},
		{name: "string for a bool", doc: `{"room": {"locked": "false"}}`, field: "room.locked", contains: "true or false"},
		{name: "object for a list", doc: `{"identity": {"groups": {"admin": true}}}`, field: "identity.groups", contains: "a list"},
		{name: "bad time", doc: `{"request": {"time": "yesterday"}}`, field: "request.time", contains: "RFC 3339"},
		{name: "trailing document", doc: string(valid) + "\n{}", line: 2, contains: "after the input object"},
		{name: "trailing garbage", doc: string(valid) + " x", contains: "after the input object"},
		{name: "too large", doc: `{"identity": {"name": "` + strings.Repeat("a", maxInputBytes) + `"}}`, contains: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInput("in.json", []byte(tt.doc))
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "in.json:") || !strings.Contains(msg, tt.contains) {
				t.Errorf("error %q: want file name and %q", msg, tt.contains)
			}
			if tt.line > 0 && ie.Line != tt.line {
				t.Errorf("line = %d, want %d (%s)", ie.Line, tt.line, msg)
			}
			if ie.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", ie.Field, tt.field, msg)
			}
		})
	}
}

func TestParseInput_RoundTrips(t *testing.T) {
	want := fullInput()
	b, _ := json.Marshal(want)
	got, err := ParseInput("x", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.value().Compare(want.value()) != 0 {
		t.Errorf("round trip changed the input:\n got %+v\nwant %+v", got, want)
	}
}

func FuzzParseInput(f *testing.F) {
	for _, name := range []string{"testdata/inputs/guest.json", "testdata/inputs/staff_confidential.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"identity": {"sub": "x", "groups": null}, "request": {"time": "2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"room": {"capacity": 1e400}}`))
	f.Add([]byte(`{"identity": {"sub": "\ud800"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput("fuzz.json", data)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if ie.Line < 0 || ie.Column < 0 {
				t.Fatalf("negative position in %v", err)
			}
			return
		}
		// Whatever parses converts, and converts the same way as its JSON.
		b, err := json.Marshal(in)
		if err != nil {
			return // e.g. a year outside what encoding/json writes
		}
		again, err := ParseInput("again.json", b)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", b, err)
		}
		if again.value().Compare(in.value()) != 0 {
			t.Fatalf("round trip changed %s", b)
		}
		if got, want := in.value(), viaJSON(t, nilListsEmpty(in)); got.Compare(want) != 0 || got.Hash() != want.Hash() {
			t.Fatalf("value() differs from the JSON form of %s:\n got %v\nwant %v", b, got, want)
		}
	})
}
