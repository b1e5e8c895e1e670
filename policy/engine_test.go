package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNew_ShippedPolicyLoadsAndReportsStatus(t *testing.T) {
	e := newEngine(t, Options{Dir: shippedPolicies})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(e.Revision()) {
		t.Errorf("Revision() = %q, want a SHA-256 hex digest", e.Revision())
	}
	st := e.Status()
	if !st.Loaded || st.Revision != e.Revision() || st.Source != shippedPolicies || st.Tests == 0 || st.LastReloadError != "" {
		t.Errorf("Status() = %+v", st)
	}
}

func TestDecide_ShippedPolicy(t *testing.T) {
	e := newEngine(t, Options{Dir: shippedPolicies})
	confidential := func(in Input) Input {
		in.Room.Tags = []string{"confidential"}
		return in
	}
	tests := []struct {
		name       string
		in         Input
		allow      bool
		lobby      bool
		role       string
		reason     string
		messageHas string
	}{
		{name: "staff joins as participant", in: staffInput(), allow: true, role: RoleParticipant, reason: "staff_domain"},
		{name: "host group member joins as host", in: hostInput(), allow: true, role: RoleHost, reason: "host_group"},
		{name: "guest waits in lobby as viewer", in: guestInput(), lobby: true, role: RoleViewer, reason: "guest_lobby", messageHas: "wait"},
		{name: "nobody signed in is refused", in: Input{}, reason: "unauthenticated", messageHas: "sign in"},
		{name: "locked room refuses staff", in: func() Input { in := staffInput(); in.Room.Locked = true; return in }(), reason: "room_locked"},
		{name: "locked room admits host", in: func() Input { in := hostInput(); in.Room.Locked = true; return in }(), allow: true, role: RoleHost, reason: "host_group"},
		{name: "confidential room without MFA", in: confidential(staffInput()), reason: "mfa_required"},
		{name: "confidential room with MFA and key", in: func() Input {
			in := confidential(staffInput())
			in.Identity.AMR = []string{"pwd", "mfa"}
			in.Device = Device{KeyRegistered: true, KeyFingerprint: "SHA256:x", PQ: true}
			return in
		}(), allow: true, role: RoleParticipant, reason: "staff_domain"},
		{name: "full room", in: func() Input { in := staffInput(); in.Room.Occupancy = 50; return in }(), reason: "room_full"},
		{name: "repeated passcode failures", in: func() Input { in := staffInput(); in.History.Identity.PasscodeFailures = 5; return in }(), reason: "rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(context.Background(), tt.in)
			if d.Allow != tt.allow || d.Lobby != tt.lobby || d.Role != tt.role {
				t.Fatalf("got allow=%v lobby=%v role=%q reasons=%v, want allow=%v lobby=%v role=%q", d.Allow, d.Lobby, d.Role, d.Reasons, tt.allow, tt.lobby, tt.role)
			}
			if len(d.Reasons) == 0 || d.Reasons[0] != tt.reason {
				t.Errorf("reasons = %v, want first %q", d.Reasons, tt.reason)
			}
			if !strings.Contains(strings.ToLower(d.UserMessage), tt.messageHas) {
				t.Errorf("user_message = %q, want it to mention %q", d.UserMessage, tt.messageHas)
			}
			if d.Revision != e.Revision() || len(d.DecisionID) != 36 {
				t.Errorf("decision_id=%q revision=%q, want a UUID and %q", d.DecisionID, d.Revision, e.Revision())
			}
		})
	}
}

func TestDecideCreate_ShippedPolicy(t *testing.T) {
	e := newEngine(t, Options{Dir: shippedPolicies})
	newRoom := func(in Input) Input {
		in.Room = Room{ID: "retro"}
		return in
	}
	if d := e.DecideCreate(context.Background(), newRoom(staffInput())); !d.Allow || d.Role != RoleHost {
		t.Errorf("staff create: %+v, want allowed as host", d)
	}
	if d := e.DecideCreate(context.Background(), newRoom(guestInput())); d.Allow || d.Reasons[0] != "not_room_creator" {
		t.Errorf("guest create: %+v, want refused as not_room_creator", d)
	}
}

func TestDecide_FailsClosed(t *testing.T) {
	const pkg = "package meetguard.admission\n\n"
	tests := []struct {
		name    string
		rego    string
		timeout time.Duration
	}{
		{name: "built-in error", rego: `decision := {"allow": true, "role": "host"} if to_number(input.room.id) > 0`},
		{name: "bad time in meeting hours", rego: `decision := {"allow": true, "role": "host"} if time.parse_rfc3339_ns("yesterday") > 0`},
		{name: "undefined", rego: `decision := {"allow": true, "role": "host"} if input.room.id == "elsewhere"`},
		{name: "conflicting values", rego: "decision := {\"allow\": true, \"role\": \"host\"} if input.room.exists\n\ndecision := {\"allow\": false} if input.room.lobby_enabled"},
		{name: "not an object", rego: `decision := true`},
		{name: "a set of decisions", rego: `decision contains {"allow": true, "role": "host"}`},
		{name: "allow is a string", rego: `decision := {"allow": "true", "role": "host"}`},
		{name: "allow missing", rego: `decision := {"lobby": false, "role": "host"}`},
		{name: "allow and lobby", rego: `decision := {"allow": true, "lobby": true, "role": "host"}`},
		{name: "unknown role", rego: `decision := {"allow": true, "role": "admin"}`},
		{name: "no role", rego: `decision := {"allow": true}`},
		{name: "reason not a string", rego: `decision := {"allow": true, "role": "host", "reasons": [1]}`},
		{name: "negative ttl", rego: `decision := {"allow": true, "role": "host", "ttl_seconds": -1}`},
		{name: "fractional ttl", rego: `decision := {"allow": true, "role": "host", "ttl_seconds": 1.5}`},
		{name: "obligations not an object", rego: `decision := {"allow": true, "role": "host", "obligations": ["require_e2ee"]}`},
		{name: "timeout", timeout: 20 * time.Millisecond,
			rego: `decision := {"allow": true, "role": "host"} if count([x | some x in numbers.range(1, 100000000)]) > 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, Options{Dir: policyDir(t, map[string]string{"p.rego": pkg + tt.rego + "\n"}), Timeout: tt.timeout})
			start := time.Now()
			d := e.Decide(context.Background(), staffInput())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("decision took %v", took)
			}
			if d.Allow || d.Lobby || d.Role != "" || !slices.Equal(d.Reasons, []string{ReasonPolicyError}) || d.UserMessage != policyErrorMessage {
				t.Fatalf("got %+v, want a policy_error deny", d)
			}
			if d.DecisionID == "" || d.Revision != e.Revision() {
				t.Errorf("decision_id=%q revision=%q", d.DecisionID, d.Revision)
			}
		})
	}

	// The same engine and input admit when the policy is well formed, so the
	// cases above fail for the reason they name.
	e := newEngine(t, Options{Dir: policyDir(t, map[string]string{"p.rego": pkg + `decision := {"allow": true, "role": "host"}` + "\n"})})
	if d := e.Decide(context.Background(), staffInput()); !d.Allow || d.Role != RoleHost {
		t.Fatalf("control policy: got %+v, want allow as host", d)
	}
}

func TestDecide_CancelledContextIsPolicyError(t *testing.T) {
	e := newEngine(t, Options{Dir: shippedPolicies})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := e.Decide(ctx, hostInput()); d.Allow || d.Reasons[0] != ReasonPolicyError {
		t.Fatalf("got %+v, want policy_error", d)
	}
}

// lineOf finds the 1-based line of the first occurrence of s in a file.
func lineOf(t *testing.T, name, s string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), s)
	if i < 0 {
		t.Fatalf("%s does not contain %q", name, s)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}

func TestNew_RefusesBadPolicyNamingFileAndLine(t *testing.T) {
	tests := []struct {
		name  string
		file  string // file to edit; its line of `mark` is where the problem must be reported
		add   string
		mark  string
		stage string
		want  string
	}{
		{name: "syntax error", file: "admission.rego", add: "\nbroken := {\"a\" 1}\n", mark: "broken :=", stage: "parse", want: "rego_parse_error"},
		{name: "schema typo", file: "admission.rego", add: "\ntypo if input.identty.sub == \"x\"\n", mark: "typo if", stage: "compile", want: "undefined ref: input.identty.sub"},
		{name: "schema type mismatch", file: "create_room.rego", add: "\nbad_type if input.room.capacity == \"ten\"\n", mark: "bad_type if", stage: "compile", want: "rego_type_error"},
		{name: "http.send", file: "admission.rego", add: "\nleak if http.send({\"method\": \"GET\", \"url\": \"https://evil.test\"})\n", mark: "leak if", stage: "compile", want: "built-in http.send is not allowed"},
		{name: "net.lookup_ip_addr", file: "admission.rego", add: "\nleak if net.lookup_ip_addr(\"evil.test\")\n", mark: "leak if", stage: "compile", want: "built-in net.lookup_ip_addr is not allowed"},
		{name: "opa.runtime", file: "admission.rego", add: "\nleak if opa.runtime().env\n", mark: "leak if", stage: "compile", want: "built-in opa.runtime is not allowed"},
		{name: "rand.intn", file: "admission.rego", add: "\ncoin if rand.intn(\"x\", 2) == 1\n", mark: "coin if", stage: "compile", want: "built-in rand.intn is not allowed"},
		{name: "failing test", file: "admission_test.rego", add: "\ntest_always_fails if false\n", mark: "test_always_fails if", stage: "test", want: "test_always_fails failed"},
		{name: "unused variable (strict)", file: "admission.rego", add: "\nsloppy if {\n\tx := 1\n\tinput.room.exists\n}\n", mark: "x := 1", stage: "compile", want: "assigned var x unused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyShipped(t)
			name := filepath.Join(dir, tt.file)
			appendTo(t, name, tt.add)
			wantLine := lineOf(t, name, tt.mark)
			_, err := New(context.Background(), Options{Dir: dir})
			assertLoadError(t, err, ErrInvalidPolicy, tt.stage, name, wantLine, tt.want)
		})
	}
}

func TestNew_RefusesBadDataNamingTheSetting(t *testing.T) {
	tests := []struct {
		name, old, new, want string
		stage                string
		line                 bool
	}{
		{name: "JSON syntax", old: `"lobby_ttl_seconds": 30,`, new: `"lobby_ttl_seconds": 30,,`, stage: "parse", want: "json_error", line: true},
		{name: "misspelt setting", old: `"staff_domains"`, new: `"staff_domain"`, stage: "test", want: "staff_domain: unknown setting"},
		{name: "wrong type", old: `"default": 50`, new: `"default": "fifty"`, stage: "test", want: "capacity.default: must be a whole number above 0"},
		{name: "unknown time zone", old: `"Europe/Berlin"`, new: `"Europe/Atlantis"`, stage: "test", want: "meeting_hours.business-hours.timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyShipped(t)
			name := filepath.Join(dir, "data.json")
			replaceIn(t, name, tt.old, tt.new)
			_, err := New(context.Background(), Options{Dir: dir})
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalidPolicy) || le.Stage != tt.stage {
				t.Fatalf("err = %v, want a %s-stage LoadError", err, tt.stage)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
			if tt.line {
				assertLoadError(t, err, ErrInvalidPolicy, tt.stage, name, lineOf(t, name, ",,"), tt.want)
			}
		})
	}
}

func TestNew_RefusesUnusableSources(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		kind  error
		want  string
	}{
		{name: "no rego files", files: map[string]string{"README.md": "hello"}, kind: ErrInvalidPolicy, want: "no .rego files"},
		{name: "no decision rule", files: map[string]string{"p.rego": "package meetguard.other\n\nx := 1\n"}, kind: ErrInvalidPolicy, want: "no rule defines data.meetguard.admission.decision"},
		{name: "broken schema", files: map[string]string{"p.rego": "package meetguard.admission\n\ndecision := {\"allow\": false}\n", "schema/input.json": "{\"type\": "}, kind: ErrInvalidPolicy, want: "schema/input.json:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), Options{Dir: policyDir(t, tt.files)})
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.kind, tt.want)
			}
		})
	}
	if _, err := New(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, ErrPolicySource) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: err = %v, want ErrPolicySource wrapping not-exist", err)
	}
}

func assertLoadError(t *testing.T, err error, kind error, stage, file string, line int, want string) {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, kind) {
		t.Fatalf("err = %v, want a LoadError matching %v", err, kind)
	}
	if le.Stage != stage {
		t.Errorf("stage = %q, want %q (%v)", le.Stage, stage, err)
	}
	for _, p := range le.Problems {
		if p.File == file && p.Line == line && strings.Contains(p.String(), want) {
			return
		}
	}
	t.Errorf("no problem at %s:%d saying %q; got:\n%v", file, line, want, err)
}

func TestNew_InvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "neither dir nor bundle", opts: Options{}},
		{name: "both dir and bundle", opts: Options{Dir: shippedPolicies, Bundle: "b.tar.gz"}},
		{name: "query not a data ref", opts: Options{Dir: shippedPolicies, Query: "input.x"}},
		{name: "query with a variable", opts: Options{Dir: shippedPolicies, Query: "data.meetguard[x]"}},
		{name: "query not a ref", opts: Options{Dir: shippedPolicies, Query: "1 + 1"}},
		{name: "negative timeout", opts: Options{Dir: shippedPolicies, Timeout: -time.Second}},
		{name: "mask not a pointer", opts: Options{Dir: shippedPolicies, MaskFields: []string{"identity.email"}}},
		{name: "mask of everything", opts: Options{Dir: shippedPolicies, MaskFields: []string{"/input"}}},
		{name: "mask with empty segment", opts: Options{Dir: shippedPolicies, MaskFields: []string{"/identity//email"}}},
		{name: "verification key missing", opts: Options{Dir: shippedPolicies, BundleVerificationKey: "/nonexistent/key.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(context.Background(), tt.opts); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestRevision_IsTheContentHash(t *testing.T) {
	a := copyShipped(t)
	b := copyShipped(t)
	writeFiles(t, b, map[string]string{"README.md": "notes", ".admission.rego.swp": "vim", "schema/NOTES.txt": "x"})
	ra, err := Check(context.Background(), CheckOptions{Dir: a})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Check(context.Background(), CheckOptions{Dir: b})
	if err != nil {
		t.Fatal(err)
	}
	if ra != rb {
		t.Errorf("same policy with unrelated files: revisions %s and %s differ", ra, rb)
	}
	replaceIn(t, filepath.Join(b, "data.json"), `"lobby_ttl_seconds": 30`, `"lobby_ttl_seconds": 31`)
	rc, err := Check(context.Background(), CheckOptions{Dir: b})
	if err != nil {
		t.Fatal(err)
	}
	if rc == ra {
		t.Error("changing data.json did not change the revision")
	}
}

// The input schema is the gateway's: a bundle can neither drop it (opa build
// writes no schema files) nor loosen it with a schema of its own.
func TestSchema_PublishedSchemaAlwaysApplies(t *testing.T) {
	const typo = "\ntypo if input.identty.sub == \"x\"\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{name: "no schema files", setup: func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "schema")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bundle schema allows anything", setup: func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schema/input.json": `{"type": "object"}`})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyShipped(t)
			tt.setup(t, dir)
			newEngine(t, Options{Dir: dir}) // the policy itself is fine
			appendTo(t, filepath.Join(dir, "admission.rego"), typo)
			if _, err := New(context.Background(), Options{Dir: dir}); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "input.identty") {
				t.Fatalf("err = %v, want the typo refused", err)
			}
		})
	}
}
