package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

// writeNodeLogs makes the closed audit logs of three gateway nodes, each
// with its own key (and .pub beside its log), one meeting's admissions
// spread over them: alice on gw-a, bob on gw-b, carol on gw-c, then dave
// on gw-a.
func writeNodeLogs(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	logs := map[string]*audit.Log{}
	paths := map[string]string{}
	for _, node := range []string{"gw-a", "gw-b", "gw-c"} {
		path := filepath.Join(t.TempDir(), node, "audit.log")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		key, err := audit.LoadOrCreateKey(path + ".key")
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(ctx, audit.Options{Path: path, Node: node, SigningKey: key})
		if err != nil {
			t.Fatal(err)
		}
		logs[node], paths[node] = l, path
	}
	for _, r := range []struct{ node, sub string }{{"gw-a", "alice"}, {"gw-b", "bob"}, {"gw-c", "carol"}, {"gw-a", "dave"}} {
		if err := logs[r.node].Record(ctx, audit.EventAdmissionDecision, zap.String("room", "standup"), zap.String("subject", r.sub), zap.String("decision", "allow")); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func TestAuditCLI_SeveralNodes(t *testing.T) {
	paths := writeNodeLogs(t)
	files := []string{paths["gw-c"], paths["gw-a"], paths["gw-b"]}

	code, out, errs := runCLI(append([]string{"audit", "verify", "--sealed"}, files...)...)
	if code != 0 || !strings.Contains(out, "node gw-b: OK: ") || !strings.Contains(out, "3 nodes: OK, every chain verifies") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	if strings.Count(errs, "using public key") != 3 {
		t.Fatalf("each node's .pub should be found:\n%s", errs)
	}

	code, out, _ = runCLI(append([]string{"audit", "report", "--room", "standup"}, files...)...)
	if code != 0 {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	order := []int{strings.Index(out, "alice"), strings.Index(out, "bob"), strings.Index(out, "carol"), strings.Index(out, "dave")}
	for i := 1; i < len(order); i++ {
		if order[i-1] < 0 || order[i] <= order[i-1] {
			t.Fatalf("report is not in time order across nodes:\n%s", out)
		}
	}
	if !strings.Contains(out, "from 3 nodes (gw-a, gw-b, gw-c)") || !strings.Contains(out, "node gw-c: chain of") {
		t.Fatalf("report does not name the nodes and their chains:\n%s", out)
	}

	code, out, _ = runCLI(append([]string{"audit", "query", "--node", "gw-a", "--event", "admission.decision"}, files...)...)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "dave") || strings.Contains(out, "bob") || !strings.Contains(out, "NODE") {
		t.Fatalf("query --node gw-a: exit %d\n%s", code, out)
	}

	// gw-c killed mid-write: a torn tail on gw-c only, exit 3.
	b, _ := os.ReadFile(paths["gw-c"])
	if err := os.WriteFile(paths["gw-c"], b[:len(b)-30], 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(append([]string{"audit", "verify"}, files...)...)
	if code != 3 || !strings.Contains(out, "node gw-c: TRUNCATED (torn tail)") || !strings.Contains(out, "3 nodes: TRUNCATED (torn tail) (gw-c)") {
		t.Fatalf("verify with a torn node: exit %d\n%s%s", code, out, errs)
	}

	// bob's admission on gw-b rewritten: tampering named with its node,
	// and it outranks gw-c's torn tail.
	b, _ = os.ReadFile(paths["gw-b"])
	if err := os.WriteFile(paths["gw-b"], []byte(strings.Replace(string(b), `"bob"`, `"bot"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(append([]string{"audit", "verify"}, files...)...)
	if code != 1 || !strings.Contains(out, "node gw-b: TAMPERED: modified") || !strings.Contains(out, "3 nodes: TAMPERED (gw-b)") || !strings.Contains(out, "node gw-a: OK") {
		t.Fatalf("verify with a tampered node: exit %d\n%s%s", code, out, errs)
	}
}
