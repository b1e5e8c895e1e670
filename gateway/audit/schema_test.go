package audit_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

// docMembers reads the "### `event`" sections of docs/audit.md and the
// "Members:" line of each: names before "optional:" are required, after it
// optional.
func docMembers(t *testing.T, examples map[string][]string) map[string]audit.EventSpec {
	t.Helper()
	f, err := os.Open("../../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heading := regexp.MustCompile("^### `([a-z0-9_.]+)`$")
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	out := map[string]audit.EventSpec{}
	inEvents, current := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inEvents = line == "## Events"
			current = ""
			continue
		}
		if !inEvents {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			current = m[1]
			if _, dup := out[current]; dup {
				t.Errorf("docs/audit.md: event %s documented twice", current)
			}
			out[current] = audit.EventSpec{Event: current}
			continue
		}
		if current != "" && strings.HasPrefix(line, `{"seq":`) {
			examples[current] = append(examples[current], line)
			continue
		}
		if current == "" || !strings.HasPrefix(line, "Members: ") {
			continue
		}
		spec := out[current]
		if spec.Required != nil || spec.Optional != nil {
			t.Errorf("docs/audit.md: %s has two Members lines", current)
		}
		req, opt, _ := strings.Cut(line, "optional:")
		for _, m := range name.FindAllStringSubmatch(req, -1) {
			spec.Required = append(spec.Required, m[1])
		}
		for _, m := range name.FindAllStringSubmatch(opt, -1) {
			spec.Optional = append(spec.Optional, m[1])
		}
		out[current] = spec
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkExample checks the members of an example record (hashes shortened,
// so ParseEntry cannot read it) against the schema.
func checkExample(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return err
	}
	var event string
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		switch key {
		case "seq", "ts", "prev", "hash":
		case "event":
			_ = json.Unmarshal(v, &event)
		default:
			keys = append(keys, key)
		}
	}
	return audit.CheckEvent(event, keys)
}

// membersLine is the line docs/audit.md must carry for s.
func membersLine(s audit.EventSpec) string {
	q := func(names []string) string {
		var b []string
		for _, n := range names {
			b = append(b, "`"+n+"`")
		}
		return strings.Join(b, ", ")
	}
	line := "Members: " + q(s.Required)
	if len(s.Optional) > 0 {
		line += "; optional: " + q(s.Optional)
	}
	return line + "."
}

// TestSchema_MatchesDocs: docs/audit.md documents exactly the events of the
// schema, each with exactly the schema's members, required and optional.
func TestSchema_MatchesDocs(t *testing.T) {
	examples := map[string][]string{}
	docs := docMembers(t, examples)
	for _, s := range audit.Schema() {
		if len(examples[s.Event]) == 0 {
			t.Errorf("docs/audit.md: %s has no example record", s.Event)
		}
		for _, ex := range examples[s.Event] {
			if err := checkExample(ex); err != nil {
				t.Errorf("docs/audit.md: example of %s: %v", s.Event, err)
			}
		}
		d, ok := docs[s.Event]
		switch {
		case !ok:
			t.Errorf("docs/audit.md has no section for %s; add:\n### `%s`\n\n%s", s.Event, s.Event, membersLine(s))
		case !slices.Equal(d.Required, s.Required) || !slices.Equal(d.Optional, s.Optional):
			t.Errorf("docs/audit.md, %s:\n have %s\n want %s", s.Event, membersLine(d), membersLine(s))
		}
		delete(docs, s.Event)
	}
	for ev := range docs {
		t.Errorf("docs/audit.md documents %s, which the schema does not know", ev)
	}
}

// TestSchema_EveryEventConstantIsDocumented: the Event* constants and the
// schema name the same events.
func TestSchema_EveryEventConstantIsDocumented(t *testing.T) {
	for _, ev := range []string{
		audit.EventLoginSuccess, audit.EventLoginFailure, audit.EventLogout, audit.EventSessionRevoked,
		audit.EventAdmissionDecision, audit.EventAdmissionRateLimited, audit.EventLobbyKnock, audit.EventLobbyAdmit,
		audit.EventLobbyDeny, audit.EventRoomLock, audit.EventRoomUnlock, audit.EventRoomRemove, audit.EventRoomBan,
		audit.EventRoomSuspend, audit.EventRoomCreate, audit.EventRoomUpdate, audit.EventRoomRecreated, audit.EventE2EEKeyRegistered,
		audit.EventE2EEEpoch, audit.EventE2EERejected, audit.EventE2EEClientAlarm, audit.EventPolicyReload, audit.EventPolicyReloadRejected,
		audit.EventConfigReload, audit.EventConfigReloadRejected, audit.EventTLSReload, audit.EventTLSReloadRejected, audit.EventStoreFailure, audit.EventUpstreamParticipant,
		audit.EventGatewayStart, audit.EventGatewayStop, audit.EventCheckpoint, audit.EventOpened, audit.EventRecovered,
	} {
		if _, ok := audit.LookupEvent(ev); !ok {
			t.Errorf("event %s has no schema entry", ev)
		}
	}
}

func TestEventSpec_Check(t *testing.T) {
	reload, _ := audit.LookupEvent(audit.EventPolicyReload)
	for _, tc := range []struct {
		name string
		keys []string
		want string // "" for ok
	}{
		{"exact", []string{"revision", "previous_revision", "trigger", "shadow"}, ""},
		{"the old names", []string{"old_revision", "new_revision", "problem", "shadow", "trigger"}, `undocumented member "old_revision"`},
		{"missing", []string{"revision", "trigger", "shadow"}, `missing member "previous_revision"`},
		{"twice", []string{"revision", "revision", "previous_revision", "trigger", "shadow"}, `given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reload.Check(tc.keys)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, audit.ErrSchema) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check(%v) = %v, want ErrSchema saying %q", tc.keys, err, tc.want)
			}
		})
	}
	if err := audit.CheckEvent("made.up", nil); !errors.Is(err, audit.ErrSchema) {
		t.Fatalf("undocumented event: %v", err)
	}
}

// TestTypedFacts_MatchSchema: every typed constructor builds exactly its
// event's documented members.
func TestTypedFacts_MatchSchema(t *testing.T) {
	for _, f := range []audit.Fact{
		audit.PolicyReloaded("rev-b", "rev-a", "watch", false),
		audit.PolicyReloadRejected("", "rev-a", "x.rego:1: parse error", "reload", true),
		audit.GatewayStarted("1.0", "https://meet.example", "rev-a"),
		audit.GatewayStopped("shutdown"),
		audit.UpstreamParticipant("livekit", "standup", "participant_joined", "p-1", "mg-1", "EV_1"),
	} {
		if err := audit.CheckFields(f.Event, f.Fields); err != nil {
			t.Error(err)
		}
	}
}

// TestRecord_StrictSchemaRefusesDrift: a log opened with StrictSchema
// refuses the policy.reload record the gateway used to write, and writes
// the typed one.
func TestRecord_StrictSchemaRefusesDrift(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	key, err := audit.GenerateKey(dir + "/audit.key")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Options{Path: dir + "/audit.log", SigningKey: key, StrictSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Record(ctx, audit.EventPolicyReload, zap.String("old_revision", "a"), zap.String("new_revision", "b"),
		zap.String("problem", ""), zap.Bool("shadow", false), zap.String("trigger", "watch"))
	if !errors.Is(err, audit.ErrSchema) {
		t.Fatalf("old-style record: %v, want ErrSchema", err)
	}
	if err := audit.Write(ctx, l, audit.PolicyReloaded("b", "a", "watch", false)); err != nil {
		t.Fatal(err)
	}
}
