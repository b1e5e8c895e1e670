package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shippedPolicies is the bundle security teams start from.
const shippedPolicies = "../policies"

// copyShipped copies the shipped bundle into a fresh directory that a test
// may change.
func copyShipped(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(shippedPolicies, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(shippedPolicies, p)
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !relevantFile(filepath.ToSlash(rel)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeFiles creates files (relative path -> content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// policyDir is a fresh directory holding only the given files.
func policyDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

// appendTo adds text to the end of a file.
func appendTo(t testing.TB, name, text string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, append(b, text...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceIn edits a file, failing the test if old is not there.
func replaceIn(t testing.TB, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	if err := os.WriteFile(name, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newEngine builds an engine whose decisions, unless the test sets a
// timeout, get a minute: a test of what the policy decides must not fail
// because a loaded machine (-race, parallel packages) took more than the
// production 100 ms. Tests of the deadline set their own.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// staffInput is a verified example.com employee joining an ordinary room
// on a Wednesday morning in Berlin, as the gateway would describe it.
func staffInput() Input {
	return Input{
		Identity: Identity{
			Iss: "https://idp.example.com", Sub: "u-alice", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice", Groups: []string{"staff"}, ACR: "aal1", AMR: []string{"pwd"},
			AuthTime: 1772611200, Via: ViaSession,
		},
		Room:   Room{ID: "weekly-sync", Exists: true, Owner: "u-olga", Occupancy: 4, LobbyEnabled: true, HostPresent: true, Tags: []string{}},
		Device: Device{},
		Request: Request{
			Time: time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC), IP: "192.0.2.10", UserAgent: "Mozilla/5.0",
			Method: "GET", Path: "/r/weekly-sync", Origin: "https://meet.example.com",
		},
		History: History{WindowSeconds: 900, Identity: Counters{JoinAttempts: 1}, IP: AddressCounters{Counters: Counters{JoinAttempts: 3}}},
	}
}

func guestInput() Input {
	in := staffInput()
	in.Identity.Sub, in.Identity.Email, in.Identity.Groups = "u-gina", "gina@partner.test", nil
	return in
}

func hostInput() Input {
	in := staffInput()
	in.Identity.Groups = []string{"meeting-hosts"}
	return in
}
