package securityconsole_test

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// waitForEvent polls the audit log until a record of event is there.
func (e *env) waitForEvent(event string) *audit.Entry {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found *audit.Entry
		files, err := audit.LogFiles(e.auditPath)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := audit.ReadEntries(e.ctx, files, func(en *audit.Entry) error {
			if en.Event == event {
				found = en
			}
			return nil
		}); err != nil {
			e.t.Fatal(err)
		}
		if found != nil {
			return found
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s record", event)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var fileLine = regexp.MustCompile(`admission\.rego:\d+`)

// TestPolicyPage_RejectedReloadIsShownHereNotOnReadyz: a security engineer
// saves Rego that does not parse. The gateway keeps serving the last good
// revision; the policy page names the refused file and line and shows the
// serving revision's own tests (all passing, 100 % coverage), while an
// anonymous client reading /readyz (and the admin listener's, which the
// Helm chart probes) learns only that the policy is ready. Before, the
// admin /readyz quoted the file, line and Rego.
func TestPolicyPage_RejectedReloadIsShownHereNotOnReadyz(t *testing.T) {
	e := newEnv(t)
	rego := filepath.Join(e.policyDir, "admission.rego")
	good, err := os.ReadFile(rego)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rego, append(append([]byte{}, good...), "\nthis is { not rego\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	rejected := e.waitForEvent(audit.EventPolicyReloadRejected)
	where := fileLine.FindString(rejected.Str(audit.FieldError))
	if where == "" {
		t.Fatalf("the rejection names no file and line: %s", rejected.Raw)
	}
	e.app.SecurityConsole.TestPolicy(e.ctx)

	status, body, _ := e.get(nil, "/.meetguard/security/policy", e.bearer("sam", "secops"))
	if status != http.StatusOK {
		t.Fatalf("policy page: %d %s", status, body)
	}
	page := html.UnescapeString(body)
	st := e.app.Policy.Status()
	for _, want := range []string{
		where, st.Revision, `data-trigger="start"`, `id="last-refused"`, `id="rejected"`,
		`data-failed="0"`, `data-coverage="100.0"`, "data.meetguard.console_test.", `id="shadow-off"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("policy page lacks %q", want)
		}
	}

	probe := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", url, resp.StatusCode, b)
		}
		return string(b)
	}
	admin := httptest.NewServer(e.app.Gateway.AdminHandler(nil))
	defer admin.Close()
	for _, url := range []string{e.URL + "/.meetguard/readyz", admin.URL + "/readyz"} {
		b := probe(url)
		if !strings.Contains(b, `"policy":"ok"`) || strings.Contains(b, "rego") || strings.Contains(b, e.policyDir) || strings.Contains(b, "serving") {
			t.Errorf("%s tells more than ready: %s", url, b)
		}
	}
}

// TestPolicyPage_ShadowDisagreementsAreOnTheRecord: with a shadow policy
// under which participants wait for a host, a staff member's admission to
// a room without one is a disagreement: an audit record, and a row on the
// policy page. Before, it went only to the operational log.
func TestPolicyPage_ShadowDisagreementsAreOnTheRecord(t *testing.T) {
	shadow := t.TempDir()
	if err := policies.WriteTo(shadow); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(shadow, "data.json")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"participants_wait_for_host": false`), []byte(`"participants_wait_for_host": true`), 1)
	if !bytes.Contains(b, []byte(`"participants_wait_for_host": true`)) {
		t.Fatal("shipped data.json has no participants_wait_for_host: false")
	}
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config, _ map[string]any) {
		if c != nil {
			c.Policy.ShadowDir = shadow
		}
	})
	in := policy.Input{
		Identity: policy.Identity{Iss: e.idp.URL, Sub: "staff-7", Name: "Staff Seven", Email: "staff7@example.com", EmailVerified: true, Groups: []string{}, AMR: []string{}, Via: policy.ViaSession},
		Room:     policy.Room{ID: "standup", Exists: true, Owner: "hanna", Tags: []string{}},
		Request:  policy.Request{Time: time.Now().UTC(), IP: "192.0.2.7", Method: "GET", Path: "/room/standup"},
	}
	if d := e.app.Policy.Decide(e.ctx, in); !d.Allow {
		t.Fatalf("the live policy refuses staff: %+v", d)
	}
	rec := e.waitForEvent(audit.EventPolicyShadowDisagreement)
	if err := audit.CheckEntry(rec); err != nil {
		t.Fatal(err)
	}
	if rec.Str(audit.FieldDecision) != audit.DecisionAllow || rec.Str(audit.FieldShadowDecision) == audit.DecisionAllow || rec.Str(audit.FieldRoom) != "standup" {
		t.Fatalf("disagreement record: %s", rec.Raw)
	}
	status, body, _ := e.get(nil, "/.meetguard/security/policy", e.bearer("sam", "secops"))
	if status != http.StatusOK || !strings.Contains(body, `id="shadow"`) || !strings.Contains(body, "<td>standup</td>") || !strings.Contains(body, "staff-7") {
		t.Fatalf("policy page: %d %s", status, body)
	}
}
