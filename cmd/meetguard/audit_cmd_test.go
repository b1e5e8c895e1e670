package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

// writeLog makes a real, closed audit log with a few meeting events.
func writeLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	key, err := audit.LoadOrCreateKey(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Options{Path: path, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ sub, decision string }{{"alice", "allow"}, {"eve", "lobby"}, {"mallory", "deny"}} {
		if err := l.Record(ctx, audit.EventAdmissionDecision, zap.String("room", "standup"), zap.String("subject", r.sub), zap.String("decision", r.decision)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditCLI_VerifyQueryReport(t *testing.T) {
	path := writeLog(t)
	if code, out, errs := runCLI("audit", "verify", "--sealed", "--key", path+".pub", path); code != 0 {
		t.Fatalf("verify intact log: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ := runCLI("audit", "query", "--decision", "deny", "--json", path)
	if code != 0 || !strings.Contains(out, `"mallory"`) || strings.Contains(out, `"alice"`) {
		t.Fatalf("query --decision deny: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("audit", "report", "--room", "standup", path)
	if code != 0 || !strings.Contains(out, "mallory") || !strings.Contains(out, "alice") {
		t.Fatalf("report: exit %d\n%s", code, out)
	}

	// One changed byte in a record is named, with a non-zero exit.
	b, _ := os.ReadFile(path)
	doctored := bytes.Replace(b, []byte(`"mallory"`), []byte(`"mallorz"`), 1)
	if bytes.Equal(b, doctored) {
		t.Fatal("tampering did not change the file")
	}
	if err := os.WriteFile(path, doctored, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI("audit", "verify", "--key", path+".pub", path)
	if code != 1 || !strings.Contains(out+errs, "modified") {
		t.Fatalf("verify doctored log: exit %d\n%s%s", code, out, errs)
	}
}

func TestConfigValidate_NamesFieldsAndLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("public_url: https://meet.example.org\noidc:\n  issuer: not a url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI("config", "validate", "--config", path)
	if code != 1 || !strings.Contains(errs, "line 3: oidc.issuer: must be an absolute URL") || !strings.Contains(errs, "session.secret: is required") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
}

// TestConfigValidate_WarnsOfBearerAudienceWithoutSubjectClaim: a valid
// config that accepts bearer tokens for another audience without a subject
// claim passes, with a warning naming the setting.
func TestConfigValidate_WarnsOfBearerAudienceWithoutSubjectClaim(t *testing.T) {
	base := "public_url: https://meet.example.org\noidc:\n  issuer: https://idp.example.org\n  client_id: meetguard\n  client_secret: x\n" +
		"  audiences: [meetguard, api://meetguard]\nsession:\n  secret: " + strings.Repeat("k", 32) + "\nupstreams:\n  - name: a\n    url: http://127.0.0.1:8000\n"
	for _, tc := range []struct {
		extra string
		warn  bool
	}{{"", true}, {"  subject_claim: oid\n", false}} {
		path := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(path, []byte(strings.Replace(base, "session:", tc.extra+"session:", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI("config", "validate", "--config", path)
		if code != 0 || !strings.Contains(out, ": ok") || strings.Contains(errs, "warning: oidc.audiences:") != tc.warn {
			t.Errorf("subject claim %q: exit %d\n%s%s", tc.extra, code, out, errs)
		}
	}
}
