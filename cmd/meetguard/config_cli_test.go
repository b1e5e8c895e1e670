package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkNoRepeatedPrefix fails on a line that says the same thing twice in
// a row, such as "audit key: audit key: open …" or "audit key: audit key
// /etc/k: …".
func checkNoRepeatedPrefix(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		segs := strings.Split(line, ": ")
		for i := 0; i+1 < len(segs); i++ {
			a := strings.ToLower(strings.TrimSpace(segs[i]))
			if k := strings.LastIndexAny(a, "\"{("); k >= 0 {
				a = a[k+1:] // inside a JSON log line or a parenthesis
			}
			if len(a) >= 3 && strings.HasPrefix(strings.ToLower(segs[i+1]), a) {
				t.Errorf("message repeats its prefix %q: %s", a, line)
			}
		}
	}
}

// brokenConfig writes a config with one problem of every class that used
// to hide the others or pass validation: an unset ${VAR}, an unknown field,
// a secret file that cannot be read (which must not be reported again as
// a missing key), a missing policy directory, missing TLS files, and an
// audit directory that does not exist.
func brokenConfig(t *testing.T) (path string, want []string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "meetguard.yaml")
	yaml := `public_url: https://meet.example.org
oidc:
  issuer: https://idp.example.org
  client_id: meetguard
  client_secret: ${MEETGUARD_TEST_UNSET_SECRET}
session:
  secret: 0123456789abcdef0123456789abcdef
upstreams:
  - name: demo
    url: http://127.0.0.1:9
    colour: blue
policy:
  dir: ` + dir + `/no-such-policies
tls:
  cert_file: ` + dir + `/missing.crt
  key_file: ` + dir + `/missing.key
audit:
  path: ` + dir + `/no-such-dir/audit.log
rooms:
  ticket_key_file: ` + dir + `/missing-ticket.key
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, []string{
		"line 5: oidc.client_secret: environment variable MEETGUARD_TEST_UNSET_SECRET is not set",
		"line 11: upstreams[0].colour: unknown field",
		"line 13: policy.dir: cannot read " + dir + "/no-such-policies: no such file or directory",
		"line 15: tls.cert_file: cannot read " + dir + "/missing.crt: no such file or directory",
		"line 16: tls.key_file: cannot read " + dir + "/missing.key: no such file or directory",
		"line 18: audit.path: cannot write to directory " + dir + "/no-such-dir",
		"line 20: rooms.ticket_key_file: cannot read secret file " + dir + "/missing-ticket.key: no such file or directory",
	}
}

// TestConfigValidate_ReportsEveryProblemAtOnce: `config validate` used to
// stop at an unset ${VAR} and let missing files pass; now one run names
// every problem with its line, each once, and `serve` refuses with the
// same lines.
func TestConfigValidate_ReportsEveryProblemAtOnce(t *testing.T) {
	path, want := brokenConfig(t)
	code, out, errs := runCLI("config", "validate", "--config", path)
	if code != 1 || out != "" {
		t.Fatalf("config validate: exit %d, stdout %q", code, out)
	}
	for _, w := range want {
		if !strings.Contains(errs, path+":"+w) {
			t.Errorf("config validate does not report %q:\n%s", w, errs)
		}
	}
	if strings.Contains(errs, "rooms.ticket_key:") || strings.Contains(errs, "oidc.client_secret: is required") {
		t.Errorf("a problem is reported twice, once as a missing value:\n%s", errs)
	}
	if n := strings.Count(errs, "\n"); n != len(want)+1 {
		t.Errorf("%d lines, want %d problems and the count:\n%s", n, len(want), errs)
	}
	checkNoRepeatedPrefix(t, errs)

	scode, sout, serrs := runCLI("serve", "--config", path)
	if scode == 0 || sout != "" || serrs != errs {
		t.Errorf("serve: exit %d; its report differs from config validate's:\n--- validate\n%s--- serve\n%s", scode, errs, serrs)
	}
}

// TestCLI_FailureMessagesNeverRepeatTheirPrefix runs the CLI's failure
// paths and checks what they print ("audit key: audit key: open …" was one).
func TestCLI_FailureMessagesNeverRepeatTheirPrefix(t *testing.T) {
	dir := t.TempDir()
	badKey := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(badKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(good, []byte(`public_url: http://127.0.0.1:1
listen: 127.0.0.1:0
admin: {listen: ""}
oidc: {issuer: "http://127.0.0.1:1", client_id: x, client_secret: y}
session: {secret: 0123456789abcdef0123456789abcdef}
upstreams: [{name: demo, url: "http://127.0.0.1:9"}]
audit: {path: `+dir+`/audit.log, key_file: `+badKey+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--config", filepath.Join(dir, "missing.yaml")},
		{"serve", "--config", good}, // validates; the audit key is not a key
		{"config", "validate"},
		{"config", "validate", "--config", filepath.Join(dir, "missing.yaml")},
		{"config", "bogus"},
		{"audit", "verify", filepath.Join(dir, "missing.log")},
		{"audit", "keygen"},
		{"policy", "check", filepath.Join(dir, "missing")},
	} {
		code, out, errs := runCLI(args...)
		if code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		checkNoRepeatedPrefix(t, out+errs)
		if args[0] == "serve" && len(args) == 3 && args[2] == good && !strings.Contains(errs, "audit key") {
			t.Errorf("%v: does not say the audit key is wrong:\n%s", args, errs)
		}
	}
}
