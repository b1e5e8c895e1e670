package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestLayout_ImportRules checks the dependency rules of the README's Layout section with `go list -deps`:
// crypto/ and policy/ import nothing from gateway/ (they are used by the gateway through interfaces it
// declares), and the rooms API, the e2ee API and the upstream adapters never import the edge package
// gateway: they implement gateway/admission's contract.
func TestLayout_ImportRules(t *testing.T) {
	const mod = "github.com/meetguard/meetguard/"
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", "../../crypto/...", "../../policy/...",
		"../../gateway/roomsapi/...", "../../gateway/e2eeapi/...", "../../gateway/upstream/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkg, ok := strings.CutPrefix(p.ImportPath, mod)
		if !ok {
			continue
		}
		leaf := strings.HasPrefix(pkg, "crypto/") || pkg == "policy" || strings.HasPrefix(pkg, "policy/")
		behind := strings.HasPrefix(pkg, "gateway/roomsapi") || strings.HasPrefix(pkg, "gateway/e2eeapi") ||
			strings.HasPrefix(pkg, "gateway/upstream")
		if !leaf && !behind {
			continue
		}
		checked++
		for _, d := range p.Deps {
			dep, ok := strings.CutPrefix(d, mod)
			switch {
			case !ok:
			case leaf && (dep == "gateway" || strings.HasPrefix(dep, "gateway/")):
				t.Errorf("%s imports %s: crypto/ and policy/ must import nothing from gateway/", pkg, dep)
			case behind && dep == "gateway":
				t.Errorf("%s imports the edge package gateway: use gateway/admission", pkg)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages: go list did not list the layout", checked)
	}
}
