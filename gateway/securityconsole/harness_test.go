package securityconsole_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// env is a real gateway (independent OIDC provider, the shipped policy
// with console roles granted in its data.json, a real audit log) on
// 127.0.0.1, with the security console mounted as `meetguard serve`
// mounts it.
type env struct {
	t         testing.TB
	ctx       context.Context
	URL       string
	idp       *testidp.IdP
	app       *app.App
	auditPath string
	policyDir string
}

// roles is data.json's console_roles for the tests: the provider's test
// user (who signs in with a browser) is an auditor, the "secops" group is
// the security team.
func roles(idp *testidp.IdP) map[string]any {
	return map[string]any{
		"auditor":  map[string]any{"subjects": []string{}, "emails": []string{idp.Email}, "groups": []string{}},
		"security": map[string]any{"subjects": []string{}, "emails": []string{}, "groups": []string{"secops"}},
	}
}

// envEdit changes the configuration or data.json's meetguard document
// before the gateway starts.
type envEdit func(cfg *config.Config, data map[string]any)

func newEnv(t testing.TB, edits ...envEdit) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	e := &env{t: t, ctx: ctx, URL: public}
	e.idp = testidp.Start(t, public+auth.CallbackPath)
	e.policyDir = t.TempDir()
	if err := policies.WriteTo(e.policyDir); err != nil {
		t.Fatal(err)
	}
	e.editData(func(m map[string]any) {
		m["console_roles"] = roles(e.idp)
		for _, edit := range edits {
			edit(nil, m)
		}
	})
	e.auditPath = filepath.Join(t.TempDir(), "audit.log")
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: public,
		OIDC: config.OIDC{
			Issuer: e.idp.URL, ClientID: e.idp.ClientID, ClientSecret: e.idp.ClientSecret, KeyRefetchInterval: time.Hour,
		},
		Session:   config.Session{Secret: strings.Repeat("s", 32)},
		Upstreams: []config.Upstream{{Name: "demo", URL: "http://127.0.0.1:9"}},
		Limits:    config.Limits{ReadHeaderTimeout: 2 * time.Second},
		Audit:     config.Audit{Path: e.auditPath},
		Policy:    config.Policy{Dir: e.policyDir, Timeout: 5 * time.Second},
		Rooms:     config.Rooms{TicketKey: strings.Repeat("\x07", 32), TicketTTL: time.Hour},
	}
	for _, edit := range edits {
		edit(cfg, nil)
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Deps{
		Listener: ln, Logger: zap.NewNop(), HTTPClient: &http.Client{Timeout: 5 * time.Second},
		StrictAudit: true, NoE2EE: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = a.Close(context.Background())
	})
	return e
}

// editData changes data.json's meetguard document.
func (e *env) editData(edit func(map[string]any)) {
	e.t.Helper()
	p := filepath.Join(e.policyDir, "data.json")
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		e.t.Fatal(err)
	}
	edit(doc["meetguard"])
	if b, err = json.Marshal(doc); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// person is someone in the fixture meeting.
type person struct {
	sub, name, email string
}

// meeting writes the audit records of a big meeting the way the gateway
// writes them: joins admitted by policy and refusals with their reasons,
// each with the policy input (who the person is) and result.
func (e *env) meeting(room string, joins, refusals int) (refused map[string]person, reasons map[string]string) {
	e.t.Helper()
	refused, reasons = map[string]person{}, map[string]string{}
	write := func(p person, decision string, rs []string, ip string) {
		in := policy.Input{
			Identity: policy.Identity{Iss: e.idp.URL, Sub: p.sub, Name: p.name, Email: p.email, EmailVerified: true, Groups: []string{}, AMR: []string{}, Via: policy.ViaSession},
			Room:     policy.Room{ID: room, Exists: true, Owner: "hanna", Occupancy: 3, HostPresent: true, Tags: []string{}},
			Request:  policy.Request{Time: time.Now().UTC(), IP: ip, Method: "GET", Path: "/room/" + room},
		}
		res := map[string]any{"allow": decision == audit.DecisionAllow, "lobby": false, "reasons": rs}
		role := ""
		if decision == audit.DecisionAllow {
			role = "participant"
		}
		err := e.app.AuditLog.Record(e.ctx, audit.EventAdmissionDecision,
			zap.String(audit.FieldRoom, room), zap.String(audit.FieldSubject, p.sub), zap.String(audit.FieldIssuer, e.idp.URL),
			zap.String(audit.FieldDecision, decision), zap.Strings(audit.FieldReasons, rs), zap.String(audit.FieldClientIP, ip), zap.String(audit.FieldVia, "page"),
			zap.String(audit.FieldRole, role), zap.String(audit.FieldPolicyRevision, e.app.Policy.Revision()), zap.String(audit.FieldDecisionID, hex.EncodeToString([]byte(p.sub))),
			zap.Any(audit.FieldInput, in), zap.Any(audit.FieldResult, res))
		if err != nil {
			e.t.Fatal(err)
		}
	}
	for i := range joins {
		write(person{fmt.Sprintf("staff-%03d", i), fmt.Sprintf("Staff Member %03d", i), fmt.Sprintf("staff%03d@example.com", i)}, audit.DecisionAllow, []string{"staff_domain"}, "192.0.2.10")
		if i < refusals {
			p := person{fmt.Sprintf("guest-%02d", i), fmt.Sprintf("Gatecrasher %02d", i), fmt.Sprintf("crasher%02d@bombers.test", i)}
			r := []string{"guests_not_allowed", "room_locked", "mfa_required"}[i%3]
			refused[p.sub], reasons[p.sub] = p, r
			write(p, audit.DecisionDeny, []string{r}, fmt.Sprintf("203.0.113.%d", i%5))
		}
	}
	return refused, reasons
}

// bearer is a token the provider's key signed for sub with groups.
func (e *env) bearer(sub string, groups ...string) string {
	cl := e.idp.Claims(e.idp.ClientID)
	cl["sub"], cl["email"], cl["name"] = sub, sub+"@example.com", sub
	if groups == nil {
		groups = []string{}
	}
	cl["groups"] = groups
	return e.idp.Sign(e.t, cl, "")
}

// get fetches a console path as a browser would (Accept: text/html).
func (e *env) get(client *http.Client, path, token string) (int, string, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
	req.Header.Set("Accept", "text/html")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = browsertest.NoFollow(browsertest.Client(e.t))
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// views are the console.view records in the log.
func (e *env) views() []*audit.Entry {
	e.t.Helper()
	files, err := audit.LogFiles(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*audit.Entry
	if _, err := audit.ReadEntries(e.ctx, files, func(en *audit.Entry) error {
		if en.Event == audit.EventConsoleView {
			out = append(out, en)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}
