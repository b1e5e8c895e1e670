package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/policy"
)

const shippedPolicyDir = "../../policies"

// policyCmd runs `meetguard policy args...` in-process.
func policyCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"policy"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// policyCmdCopy copies the shipped policy directory (policy files only).
func policyCmdCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(shippedPolicyDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(shippedPolicyDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if !strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, ".json") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func policyCmdWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyTest_ShippedBundlePassesWithCoverage(t *testing.T) {
	code, out, errOut := policyCmd(t, "test", shippedPolicyDir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"PASS:", "tests passed", "coverage:", "admission.rego"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyTest_FailuresExitNonZero(t *testing.T) {
	dir := t.TempDir()
	policyCmdWrite(t, filepath.Join(dir, "p.rego"), "package meetguard.admission\n\ndecision := {\"allow\": false}\n\nextra if input.room.locked\n")
	policyCmdWrite(t, filepath.Join(dir, "p_test.rego"), "package meetguard.admission_test\n\nimport data.meetguard.admission\n\ntest_denies if admission.decision.allow == false\n\ntest_wrong if admission.decision.allow == true\n")

	code, out, _ := policyCmd(t, "test", dir, "--threshold", "0")
	if code != 1 || !strings.Contains(out, "FAIL data.meetguard.admission_test.test_wrong ("+filepath.Join(dir, "p_test.rego")+":7)") {
		t.Errorf("failing test: exit %d\n%s", code, out)
	}

	policyCmdWrite(t, filepath.Join(dir, "p_test.rego"), "package meetguard.admission_test\n\nimport data.meetguard.admission\n\ntest_denies if admission.decision.allow == false\n")
	code, out, errOut := policyCmd(t, "test", "--threshold", "90", dir)
	if code != 1 || !strings.Contains(errOut, "below the 90.0% threshold") || !strings.Contains(out, "not covered: "+filepath.Join(dir, "p.rego")+":5") {
		t.Errorf("low coverage: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := policyCmd(t, "test", "--threshold", "0", dir); code != 0 {
		t.Errorf("passing tests without threshold: exit %d", code)
	}
	if code, _, errOut := policyCmd(t, "test", "--timeout", "0s", dir); code != policyUsage || !strings.Contains(errOut, "--timeout") {
		t.Errorf("zero per-test timeout: exit %d: %s", code, errOut)
	}
}

func TestPolicyCheck_NamesFileLineAndProblem(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{name: "syntax", file: "admission.rego", content: "\nbroken := {\"a\" 1}\n", want: "rego_parse_error"},
		{name: "schema typo", file: "admission.rego", content: "\ntypo if input.identty.sub == \"x\"\n", want: "undefined ref: input.identty.sub"},
		{name: "forbidden built-in", file: "admission.rego", content: "\nleak if net.lookup_ip_addr(\"evil.test\")\n", want: "built-in net.lookup_ip_addr is not allowed"},
		{name: "data.json syntax", file: "data.json", content: "\n,", want: "json_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyCmdCopy(t)
			name := filepath.Join(dir, tt.file)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			policyCmdWrite(t, name, string(b)+tt.content)
			wantLine := strings.Count(string(b), "\n") + 2
			code, out, errOut := policyCmd(t, "check", dir)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q", code, out)
			}
			loc := name + ":" + itoa(wantLine)
			if !strings.Contains(errOut, loc) || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr lacks %s and %q:\n%s", loc, tt.want, errOut)
			}
		})
	}
	code, out, _ := policyCmd(t, "check", shippedPolicyDir)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("shipped policy: exit %d %q", code, out)
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

func TestPolicyEval_PrintsDecisionAndWhy(t *testing.T) {
	input := "../../policy/testdata/inputs/guest.json"
	code, out, errOut := policyCmd(t, "eval", "--input", input, "--explain", shippedPolicyDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`"lobby": true`, `"role": "viewer"`, "lobby viewer [guest_lobby]", "why:", "email_domain = \"partner.test\""} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = policyCmd(t, "eval", "--query", "create_room", "--input", input, shippedPolicyDir)
	if code != 0 || !strings.Contains(out, "not_room_creator") {
		t.Errorf("create_room: exit %d\n%s", code, out)
	}
}

func TestPolicyEval_BadInputFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, want string }{
		{name: "not JSON", content: "identity: alice\n", want: "in.json:1:1: input must be a JSON object"},
		{name: "typo", content: "{\n  \"identty\": {}\n}\n", want: "in.json:2:"},
		{name: "wrong type", content: "{\"room\": {\"locked\": \"no\"}}", want: "room.locked: must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(dir, "in.json")
			policyCmdWrite(t, name, tt.content)
			code, out, errOut := policyCmd(t, "eval", "--input", name, shippedPolicyDir)
			if code != 1 || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d stdout %q stderr %q, want %q", code, out, errOut, tt.want)
			}
		})
	}
	if code, _, _ := policyCmd(t, "eval", shippedPolicyDir); code != 2 {
		t.Errorf("missing --input: exit %d, want 2", code)
	}
}

func TestPolicyFmt_ListsThenRewrites(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "p.rego")
	policyCmdWrite(t, name, "package p\nallow if {   input.x == 1 }\n")
	code, out, _ := policyCmd(t, "fmt", dir)
	if code != 1 || !strings.Contains(out, name+": not formatted") {
		t.Errorf("check: exit %d %q", code, out)
	}
	if code, _, errOut := policyCmd(t, "fmt", "-w", dir); code != 0 {
		t.Fatalf("-w: exit %d %s", code, errOut)
	}
	if code, out, _ := policyCmd(t, "fmt", dir); code != 0 || out != "" {
		t.Errorf("after -w: exit %d %q", code, out)
	}
	policyCmdWrite(t, name, "package p\nallow if {\n")
	if code, _, errOut := policyCmd(t, "fmt", "-w", dir); code != 1 || !strings.Contains(errOut, name+":") {
		t.Errorf("unparsable file: exit %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(name); string(b) != "package p\nallow if {\n" {
		t.Errorf("unparsable file was rewritten: %q", b)
	}
}

func TestPolicyReplay_ListsWhoWouldBeTreatedDifferently(t *testing.T) {
	candidate := policyCmdCopy(t)
	data, err := os.ReadFile("../../policy/testdata/replay/candidate-data.json")
	if err != nil {
		t.Fatal(err)
	}
	policyCmdWrite(t, filepath.Join(candidate, "data.json"), string(data))
	audit := "../../policy/testdata/replay/audit.jsonl"

	code, out, errOut := policyCmd(t, "replay", "--audit", audit, "--candidate", candidate)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"replayed 5 admission decisions",
		"2 people would be treated differently",
		`alice@example.com [iss=https://idp.example.com sub=u-alice] in room "weekly-sync" (2 decisions)`,
		"was: allow participant [staff_domain]",
		"now: lobby viewer [guest_lobby]",
		"bob@example.org",
		"now: deny [room_full]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range []string{":4:", ":8:", ":10:", ":11:"} {
		if !strings.Contains(errOut, "warning: "+audit+line) {
			t.Errorf("stderr lacks a warning for %s%s:\n%s", audit, line, errOut)
		}
	}
	if code, _, _ := policyCmd(t, "replay", "--fail-on-change", "--candidate", candidate, audit); code != 3 {
		t.Errorf("--fail-on-change: exit %d, want 3", code)
	}
	bad := policyCmdCopy(t)
	policyCmdWrite(t, filepath.Join(bad, "extra.rego"), "package meetguard.admission\n\nleak if http.send({})\n")
	if code, _, errOut := policyCmd(t, "replay", "--audit", audit, "--candidate", bad); code != 1 || !strings.Contains(errOut, "http.send") {
		t.Errorf("invalid candidate: exit %d %s", code, errOut)
	}
	if code, _, _ := policyCmd(t, "replay", "--audit", audit); code != 2 {
		t.Errorf("no candidate: exit %d, want 2", code)
	}
}

func TestPolicy_Usage(t *testing.T) {
	if code, _, _ := policyCmd(t); code != 2 {
		t.Errorf("no subcommand: exit %d", code)
	}
	if code, _, errOut := policyCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown subcommand: exit %d %q", code, errOut)
	}
	if code, _, _ := policyCmd(t, "check", "a", "b"); code != 2 {
		t.Errorf("two directories: exit %d", code)
	}
}

// TestPrintReplay_Plurals: one of anything is said in the singular.
func TestPrintReplay_Plurals(t *testing.T) {
	for _, tc := range []struct {
		rep  policy.ReplayReport
		want []string
	}{
		{policy.ReplayReport{Candidate: "next", Decisions: 1, Other: 1, Warnings: []policy.ReplayWarning{{}},
			Changes: []policy.ReplayChange{{Iss: "i", Sub: "a", Count: 1}}},
			[]string{"replayed 1 admission decision under", "1 other event, 1 line skipped", "1 person would be treated differently (1 distinct change)"}},
		{policy.ReplayReport{Candidate: "next", Decisions: 3, Changes: []policy.ReplayChange{{Iss: "i", Sub: "a"}, {Iss: "i", Sub: "b"}}},
			[]string{"replayed 3 admission decisions under", "0 other events, 0 lines skipped", "2 people would be treated differently (2 distinct changes)"}},
	} {
		var b strings.Builder
		printReplay(&b, &tc.rep)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, b.String())
			}
		}
	}
}
