package securityconsole_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
)

// TestAccess_OnlyConsoleRolesGetIn tries the console as everyone it is not
// for: a signed-in colleague without a role, a member of a group that
// merely sounds right, and nobody at all. Each gets one refusal that is the
// same for every console path (it reveals neither pages nor rooms), and
// each try is on the audit trail; an auditor gets in, and that view is on
// the trail too.
func TestAccess_OnlyConsoleRolesGetIn(t *testing.T) {
	e := newEnv(t)
	e.meeting("board", 3, 2)
	paths := []string{"/.meetguard/security/", "/.meetguard/security/decisions?room=board", "/.meetguard/security/rooms?room=board&format=json",
		"/.meetguard/security/decision?ref=0:3", "/.meetguard/security/policy", "/.meetguard/security/integrity", "/.meetguard/security/nosuch"}
	for _, who := range []struct {
		name  string
		token string
	}{
		{"colleague", e.bearer("bob")},
		{"look-alike group", e.bearer("mallory", "security", "auditor", "secops-readers")},
	} {
		var first string
		for _, p := range paths {
			status, body, _ := e.get(nil, p, who.token)
			if status != http.StatusForbidden {
				t.Fatalf("%s %s: %d %s", who.name, p, status, body)
			}
			if strings.Contains(body, "board") || strings.Contains(body, "staff-") {
				t.Fatalf("%s %s: the refusal shows log content: %s", who.name, p, body)
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("%s: refusal of %s differs from the first:\n%s\n%s", who.name, p, body, first)
			}
		}
	}
	// Without a session a browser is sent to sign in first.
	status, _, h := e.get(nil, "/.meetguard/security/decisions", "")
	if status != http.StatusFound || !strings.HasPrefix(h.Get("Location"), auth.LoginPath) {
		t.Fatalf("anonymous: %d to %q, want the sign-in redirect", status, h.Get("Location"))
	}
	// A member of the security group gets in.
	if status, body, _ := e.get(nil, "/.meetguard/security/decisions?room=board", e.bearer("sam", "secops")); status != http.StatusOK || !strings.Contains(body, "staff-001") {
		t.Fatalf("security engineer: %d %s", status, body)
	}
	// The refused and allowed views are all recorded.
	var denied, allowed int
	for _, v := range e.views() {
		switch {
		case v.Str(audit.FieldDecision) == audit.DecisionDeny && v.Str(audit.FieldReason) == "no_role":
			denied++
		case v.Str(audit.FieldDecision) == audit.DecisionAllow && v.Str(audit.FieldSubject) == "sam" && v.Str(audit.FieldPath) == "/.meetguard/security/decisions?room=board":
			allowed++
		}
	}
	if denied != 2*len(paths) || allowed != 1 {
		t.Fatalf("console.view records: %d refused (want %d), %d allowed (want 1)", denied, 2*len(paths), allowed)
	}
}

// TestAccess_ExportsAreAudited: an export is served to an auditor as a
// download and recorded with its format.
func TestAccess_ExportsAreAudited(t *testing.T) {
	e := newEnv(t)
	e.meeting("board", 5, 2)
	cl := browsertest.Client(t)
	e.idp.BrowserLogin(t, cl, e.URL+auth.LoginPath+"?rd=/").Body.Close()
	for format, want := range map[string]string{"markdown": "# Meeting report: room `board`", "json": `"Room": "board"`} {
		status, body, h := e.get(cl, "/.meetguard/security/rooms?room=board&format="+format, "")
		if status != http.StatusOK || !strings.Contains(body, want) || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("%s export: %d %v %s", format, status, h, body)
		}
		if !strings.Contains(body, "Gatecrasher 01") || !strings.Contains(body, "crasher01@bombers.test") {
			t.Fatalf("%s export does not name the people: %s", format, body)
		}
	}
	formats := map[string]bool{}
	for _, v := range e.views() {
		if v.Str(audit.FieldSubject) == "id1" && v.Str(audit.FieldDecision) == audit.DecisionAllow {
			formats[v.Str(audit.FieldFormat)] = true
		}
	}
	if !formats["markdown"] || !formats["json"] {
		t.Fatalf("exports recorded: %v", formats)
	}
}
