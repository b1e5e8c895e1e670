package main

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// startDevWith runs `meetguard dev` with o (listen and audit filled in) and
// returns its base URL, audit path and a stop function that waits until
// the gateway has closed its audit log.
func startDevWith(t *testing.T, o devOptions) (string, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o.listen, o.audit, o.stdout = "127.0.0.1:0", filepath.Join(t.TempDir(), "audit.log"), io.Discard
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.ready = func(b string) { ready <- b }
	go func() { done <- dev(ctx, o) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop")
		}
	}
	t.Cleanup(stop)
	select {
	case base := <-ready:
		waitReady(t, base)
		return base, o.audit, stop
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not start")
	}
	return "", "", nil
}

// waitForRecord polls the audit log until a record of event appears.
func waitForRecord(t *testing.T, path, event string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"event":"`+event+`"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s record in the audit log", event)
}

// TestServe_EveryRecordHasItsDocumentedMembers runs the real gateway with a
// watched policy directory, admits people, breaks the policy, mends it and
// stops; then every record it wrote must have exactly the members
// docs/audit.md documents, and `audit report` must tell the reloads
// with their revisions (it used to print "policy - rejected, - stays").
func TestServe_EveryRecordHasItsDocumentedMembers(t *testing.T) {
	dir := t.TempDir()
	if err := policies.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	base, auditPath, stop := startDevWith(t, devOptions{policyDir: dir})
	for _, user := range []string{"alice@example.com", "eve@guest.test"} {
		// Alice walks in on the room path; Eve knocks (only a join may).
		req, _ := http.NewRequest(http.MethodGet, base+"/room/demo", nil)
		if strings.HasPrefix(user, "eve") {
			req, _ = http.NewRequest(http.MethodPost, base+"/.meetguard/api/v1/rooms/demo/join", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+devToken(t, base, user))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	rego := filepath.Join(dir, "admission.rego")
	good, err := os.ReadFile(rego)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rego, append(append([]byte{}, good...), "\nthis is { not rego\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	waitForRecord(t, auditPath, audit.EventPolicyReloadRejected)
	// The public probe says the policy is ok (the last good revision
	// serves) and nothing about the rejected file.
	resp, err := http.Get(base + "/.meetguard/readyz")
	if err != nil {
		t.Fatal(err)
	}
	probe, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(probe), `"policy":"ok"`) ||
		strings.Contains(string(probe), "rego") || strings.Contains(string(probe), dir) {
		t.Errorf("public readyz after a rejected reload: %d %s", resp.StatusCode, probe)
	}
	if err := os.WriteFile(rego, append(append([]byte{}, good...), "\n# mended\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	waitForRecord(t, auditPath, audit.EventPolicyReload)
	stop()

	seen := map[string]*audit.Entry{}
	if _, err := audit.ReadEntries(context.Background(), []string{auditPath}, func(e *audit.Entry) error {
		if err := audit.CheckEntry(e); err != nil {
			t.Errorf("%v\n%s", err, e.Raw)
		}
		if _, ok := seen[e.Event]; !ok {
			seen[e.Event] = e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{audit.EventGatewayStart, audit.EventAdmissionDecision, audit.EventLobbyKnock,
		audit.EventPolicyReloadRejected, audit.EventPolicyReload, audit.EventGatewayStop} {
		if seen[ev] == nil {
			t.Errorf("no %s record", ev)
		}
	}
	rej, rel := seen[audit.EventPolicyReloadRejected], seen[audit.EventPolicyReload]
	if rej == nil || rel == nil {
		t.FailNow()
	}
	start := seen[audit.EventGatewayStart].Str(audit.FieldPolicyRevision)
	if got := rej.Str(audit.FieldCurrentRevision); got != start {
		t.Errorf("rejected reload: current_revision %q, want the serving %q", got, start)
	}
	if rej.Str(audit.FieldRevision) == "" || !strings.Contains(rej.Str(audit.FieldError), "admission.rego") {
		t.Errorf("rejected reload does not say which revision failed and where: %s", rej.Raw)
	}
	if rel.Str(audit.FieldPreviousRevision) != start || rel.Str(audit.FieldRevision) == "" || rel.Str(audit.FieldRevision) == start {
		t.Errorf("reload does not say what replaced what: %s", rel.Raw)
	}

	code, out, errs := runCLI("audit", "report", "--room", "demo", auditPath)
	if code != 0 {
		t.Fatalf("report: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"policy " + rej.Str(audit.FieldRevision) + " rejected, " + start + " stays",
		"policy reloaded: " + start + " → " + rel.Str(audit.FieldRevision),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "policy - rejected") {
		t.Errorf("report shows a reload without revisions:\n%s", out)
	}
}

// TestAuditWriters_NameEventsAndMembersFromTheSchema reads the gateway's and
// this command's sources: every audit record's event and every member a
// writer builds must be named by gateway/audit's constants (the schema that
// docs/audit.md, `audit report` and `audit query` are checked against), never
// by a string literal that could drift from it. A zap field is a log field,
// exempt, only where it is an argument of a logger call.
func TestAuditWriters_NameEventsAndMembersFromTheSchema(t *testing.T) {
	if policy.AuditEventDecision != audit.EventAdmissionDecision {
		t.Errorf("policy replays %q records, the gateway writes %q", policy.AuditEventDecision, audit.EventAdmissionDecision)
	}
	logCalls := map[string]bool{"Info": true, "Warn": true, "Error": true, "Debug": true, "With": true, "Fatal": true, "Panic": true, "DPanic": true, "Check": true, "Log": true}
	var found []string
	for _, dir := range []string{filepath.Join("..", "..", "gateway"), "."} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "audit" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			var stack []ast.Node
			ast.Inspect(f, func(n ast.Node) bool {
				if n == nil {
					stack = stack[:len(stack)-1]
					return true
				}
				stack = append(stack, n)
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				literal := func(e ast.Expr) (string, bool) {
					if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
						return bl.Value, true
					}
					return "", false
				}
				if name := sel.Sel.Name; (name == "Record" || name == "record" || name == "audit") && len(call.Args) >= 2 {
					if v, ok := literal(call.Args[1]); ok {
						found = append(found, fmt.Sprintf("%s: event %s", fset.Position(call.Args[1].Pos()), v))
					}
				}
				if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "zap" || len(call.Args) == 0 {
					return true
				}
				v, ok := literal(call.Args[0])
				if !ok {
					return true
				}
				for i := len(stack) - 2; i >= 0; i-- {
					if outer, ok := stack[i].(*ast.CallExpr); ok {
						if s, ok := outer.Fun.(*ast.SelectorExpr); ok && logCalls[s.Sel.Name] {
							return true
						}
						break
					}
				}
				found = append(found, fmt.Sprintf("%s: member %s", fset.Position(call.Args[0].Pos()), v))
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range found {
		t.Errorf("%s named by a literal: use gateway/audit's constant", f)
	}
}
