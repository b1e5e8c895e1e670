package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every way of asking for help prints to stdout and succeeds, so that
// `meetguard X --help | less` works and scripts can check it.
func TestHelp_EveryCommandPrintsToStdoutAndSucceeds(t *testing.T) {
	cmds := [][]string{
		{}, {"serve"}, {"dev"}, {"config"}, {"config", "validate"},
		{"policy"}, {"policy", "test"}, {"policy", "check"}, {"policy", "eval"}, {"policy", "fmt"}, {"policy", "replay"}, {"policy", "init"},
		{"audit"}, {"audit", "verify"}, {"audit", "query"}, {"audit", "tail"}, {"audit", "report"}, {"audit", "keygen"},
		{"e2ee"}, {"e2ee", "join"},
	}
	for _, c := range cmds {
		for _, flag := range []string{"--help", "-h"} {
			args := append(append([]string{}, c...), flag)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := runCLI(args...)
				if code != 0 || !strings.Contains(strings.ToLower(stdout), "usage") || stderr != "" {
					t.Fatalf("exit %d\nstdout: %q\nstderr: %q", code, stdout, stderr)
				}
			})
		}
	}
	// Without a command it is a usage error, on stderr.
	if code, stdout, _ := runCLI(); code != 2 || stdout != "" {
		t.Fatalf("no command: exit %d stdout %q", code, stdout)
	}
}

func TestVersion_PrintsVersionCommitAndGo(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, _ := runCLI(args...)
		if code != 0 || !strings.HasPrefix(stdout, "meetguard ") || !strings.Contains(stdout, "\ncommit: ") || !strings.Contains(stdout, "\ngo: go1.") {
			t.Fatalf("%v: exit %d\n%s", args, code, stdout)
		}
	}
}

func TestPolicyInit_WritesABundleThatPassesItsTests(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-policies")
	if code, _, stderr := runCLI("policy", "init", dir); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"admission.rego", "admission_test.rego", "data.json", "schema"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	for _, sub := range []string{"test", "check", "fmt"} {
		if code, stdout, stderr := runCLI("policy", sub, dir); code != 0 {
			t.Fatalf("policy %s on the written bundle: exit %d\n%s%s", sub, code, stdout, stderr)
		}
	}
	// An edited policy is never overwritten by a second init.
	edited := filepath.Join(dir, "admission.rego")
	if err := os.WriteFile(edited, []byte("package meetguard.admission\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI("policy", "init", dir)
	if code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second init: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(edited); string(b) != "package meetguard.admission\n" {
		t.Fatal("init overwrote an edited policy")
	}
}
