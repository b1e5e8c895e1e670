package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped unit keeps its hardening and is accepted by systemd itself.
func TestSystemdUnit_HardenedAndVerifies(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/meetguard.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, d := range []string{
		"DynamicUser=yes", "StateDirectory=meetguard", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(unit, "\n"+d+"\n") {
			t.Errorf("unit lacks %s", d)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): skipping unit verification")
	}
	// verify insists that ExecStart exists; point it at a real executable.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meetguard.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/meetguard", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
