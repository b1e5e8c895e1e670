package e2eeapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
)

func TestParseClientAlarm_HostileInputs(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"minimal", `{"kind":"clone","epoch":3}`, true},
		{"full", `{"kind":"identity_mismatch","epoch":0,"member":"` + hash + `","detail":"a device of yours joined"}`, true},
		{"unknown member", `{"kind":"clone","epoch":1,"admin":true}`, false},
		{"two objects", `{"kind":"clone","epoch":1}{"kind":"clone","epoch":1}`, false},
		{"not an object", `["clone"]`, false},
		{"empty", ``, false},
		{"no kind", `{"epoch":1}`, false},
		{"upper-case kind", `{"kind":"Clone","epoch":1}`, false},
		{"kind with markup", `{"kind":"<script>","epoch":1}`, false},
		{"kind too long", `{"kind":"` + strings.Repeat("a", 33) + `","epoch":1}`, false},
		{"negative epoch", `{"kind":"clone","epoch":-1}`, false},
		{"epoch too big", `{"kind":"clone","epoch":18446744073709551616}`, false},
		{"short member", `{"kind":"clone","epoch":1,"member":"abcd"}`, false},
		{"upper-case member", `{"kind":"clone","epoch":1,"member":"` + strings.ToUpper(hash) + `"}`, false},
		{"detail too long", `{"kind":"clone","epoch":1,"detail":"` + strings.Repeat("x", 513) + `"}`, false},
		{"oversized body", `{"kind":"clone","epoch":1,"detail":"` + strings.Repeat(" ", 4096) + `"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e2eeapi.ParseClientAlarm([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestAlarmVectors checks the gateway against testdata/alarm-vectors.json, which web/test/alarms.test.mjs reads
// too: every body the page must send for what it shows is accepted and recorded verbatim (a body the gateway
// refused would lose the alarm; one it had to clean would record other text than the page showed), and every raw
// body gets the verdict and recorded detail listed, whatever characters an attacker put in the detail.
func TestAlarmVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "alarm-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Shown []struct {
			Name string
			Body json.RawMessage
		}
		Bodies []struct {
			Name, Body, Detail string
			OK                 bool
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Shown) == 0 || len(v.Bodies) == 0 {
		t.Fatal("no vectors")
	}
	for _, tc := range v.Shown {
		t.Run("shown/"+tc.Name, func(t *testing.T) {
			var want e2eeapi.ClientAlarm
			if err := json.Unmarshal(tc.Body, &want); err != nil {
				t.Fatal(err)
			}
			got, err := e2eeapi.ParseClientAlarm(tc.Body)
			if err != nil {
				t.Fatalf("the page's body %s is refused: %v", tc.Body, err)
			}
			if got != want {
				t.Fatalf("recorded %#v, the page sent %#v", got, want)
			}
		})
	}
	for _, tc := range v.Bodies {
		t.Run("body/"+tc.Name, func(t *testing.T) {
			got, err := e2eeapi.ParseClientAlarm([]byte(tc.Body))
			if (err == nil) != tc.OK {
				t.Fatalf("err %v, want ok=%v", err, tc.OK)
			}
			if err == nil && got.Detail != tc.Detail {
				t.Fatalf("detail %+q, want %+q", got.Detail, tc.Detail)
			}
		})
	}
}

// FuzzParseClientAlarm: no input panics, and whatever is accepted satisfies the documented bounds, with a
// detail Go can print rune by rune (nothing that breaks a log line or reorders text).
func FuzzParseClientAlarm(f *testing.F) {
	f.Add([]byte(`{"kind":"clone","epoch":3}`))
	f.Add([]byte(`{"kind":"fork","epoch":9,"member":"` + strings.Repeat("0f", 32) + `","detail":"x"}`))
	f.Add([]byte("{\"kind\":\"clear_media\",\"epoch\":1,\"detail\":\"tru\u00a0dy\u3000\xff\u2028\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := e2eeapi.ParseClientAlarm(b)
		if err != nil {
			return
		}
		if len(a.Kind) == 0 || len(a.Kind) > 32 || len(a.Detail) > 512 || (a.Member != "" && len(a.Member) != 64) ||
			!utf8.ValidString(a.Detail) || strings.IndexFunc(a.Detail, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("accepted %#v", a)
		}
	})
}

// recordingAudit keeps the records of one event, and can fail.
type recordingAudit struct {
	mu      sync.Mutex
	records [][]zap.Field
	fail    error
}

func (a *recordingAudit) Record(_ context.Context, event string, fields ...zap.Field) error {
	if err := audit.CheckFields(event, fields); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	if event == audit.EventE2EEClientAlarm {
		a.records = append(a.records, fields)
	}
	return nil
}

func (a *recordingAudit) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.records)
}

// TestAlarm_ReportsAreCountedAuditedAndBounded tries the ways a report could be forged or abused: another
// site driving a member's browser (cookie from another origin, a form-encodable body), an outsider, a body
// too large or malformed, a flood, and an audit log that cannot keep the record. Only a member's well-formed,
// same-origin report within the rate is recorded and counted, and it is counted only once it is recorded.
func TestAlarm_ReportsAreCountedAuditedAndBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := memstore.New(ctx, memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tickets, err := rooms.NewTickets(rooms.TicketOptions{Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	alice := identity.Identity{Issuer: "https://idp.example", Subject: "alice", Via: identity.ViaSession, SessionID: "s1"}
	if _, err := st.Put(ctx, "standup", rooms.SubjectKey(alice.Key()), rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	p, err := st.Admit(ctx, rooms.Admission{Room: "standup", Subject: rooms.SubjectKey(alice.Key()), Name: "Alice", Role: rooms.RoleHost})
	if err != nil {
		t.Fatal(err)
	}
	ticket, _, err := tickets.Issue("standup", p, alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	aud := &recordingAudit{}
	var mu sync.Mutex
	counted := map[string]int{}
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := e2eeapi.New(ctx, e2eeapi.Options{SigningKey: key, Membership: e2eeapi.TicketMembership{Store: st, Tickets: tickets},
		Rooms: st, Audit: aud, PublicOrigin: "https://meet.example.com",
		OnClientAlarm: func(kind string) { mu.Lock(); counted[kind]++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	eve := alice
	eve.Subject, eve.SessionID = "eve", "s2"
	post := func(id identity.Identity, typ, body string, headers ...string) int {
		r := httptest.NewRequest(http.MethodPost, e2eehttp.APIPath("standup")+"alarms", strings.NewReader(body))
		r.Header.Set("Content-Type", typ)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		if id.Subject == "alice" {
			r.Header.Set(e2eeapi.TicketHeader, ticket)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(identity.With(r.Context(), id)))
		return w.Code
	}
	good := `{"kind":"clone","epoch":4,"detail":"a device with my key joined twice"}`
	for _, tc := range []struct {
		name   string
		id     identity.Identity
		typ    string
		body   string
		hdrs   []string
		status int
	}{
		{"another site's page with the member's cookie", alice, "application/json", good, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"a form-encodable body (no preflight)", alice, "text/plain", good, nil, 415},
		{"a form post", alice, "application/x-www-form-urlencoded", good, nil, 415},
		{"an outsider", eve, "application/json", good, nil, 403},
		{"too large", alice, "application/json", `{"kind":"clone","epoch":4,"detail":"` + strings.Repeat("x", 3000) + `"}`, nil, 413},
		{"malformed", alice, "application/json", `{"kind":"clone","epoch":4,"extra":1}`, nil, 400},
	} {
		if got := post(tc.id, tc.typ, tc.body, tc.hdrs...); got != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.status)
		}
	}
	if aud.count() != 0 || len(counted) != 0 {
		t.Fatalf("refused reports were recorded (%d) or counted (%v)", aud.count(), counted)
	}
	aud.fail = errors.New("disk full")
	if got := post(alice, "application/json", good); got != http.StatusServiceUnavailable {
		t.Fatalf("report with the audit log down: %d, want 503", got)
	}
	aud.fail = nil
	if len(counted) != 0 {
		t.Fatalf("a report that was not recorded was counted: %v", counted)
	}
	// The malformed and too-large reports above took tokens too; the bucket holds 5 in all.
	accepted := 0
	for range 5 {
		switch got := post(alice, "application/json", good); got {
		case http.StatusNoContent:
			accepted++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("report: %d", got)
		}
	}
	if accepted == 0 || post(alice, "application/json", good) != http.StatusTooManyRequests {
		t.Fatalf("a flood of reports is not limited (%d accepted)", accepted)
	}
	if aud.count() != accepted || counted["clone"] != accepted {
		t.Fatalf("%d accepted, %d recorded, %v counted", accepted, aud.count(), counted)
	}
}

// TestAlarm_ReportThroughTheGatewayFeedsTheMetric: through a real gateway (OIDC bearer token, room ticket), a
// member's report reaches meetguard_e2ee_alarms_total and the durable audit log.
func TestAlarm_ReportThroughTheGatewayFeedsTheMetric(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice := e.user("alice")
	e.createRoom("standup", alice, rooms.SettingsChange{})
	e.admit(alice, "standup", rooms.RoleHost)
	req, _ := http.NewRequest(http.MethodPost, e.URL+e2eehttp.APIPath("standup")+"alarms", strings.NewReader(`{"kind":"clone","epoch":2}`))
	req.Header.Set("Content-Type", "application/json")
	_ = alice.authorize("standup")(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	mfs, _ := e.metrics.Gather()
	var clone float64
	for _, mf := range mfs {
		if mf.GetName() != "meetguard_e2ee_alarms_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == "clone" {
					clone = m.GetCounter().GetValue()
				}
			}
		}
	}
	if clone != 1 {
		t.Fatalf("meetguard_e2ee_alarms_total{kind=clone} = %v, want 1", clone)
	}
	if recs := e.auditEvents(audit.EventE2EEClientAlarm); len(recs) != 1 {
		t.Fatalf("%d e2ee.client_alarm records, want 1", len(recs))
	}
}

// TestAlarm_AttackerChosenTextDoesNotLoseTheReport: the meeting page's clear_media report names the LiveKit
// identity that sent media in the clear, which whoever holds a LiveKit token chooses. An identity with a no-break
// space, a line break or a bidi override in it must neither lose the report (before, the gateway refused the body
// and the page never reported the alarm) nor reach the audit log as it came.
func TestAlarm_AttackerChosenTextDoesNotLoseTheReport(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice := e.user("alice")
	e.createRoom("standup", alice, rooms.SettingsChange{})
	e.admit(alice, "standup", rooms.RoleHost)
	body, _ := json.Marshal(map[string]any{"kind": "clear_media", "epoch": 2,
		"detail": "unencrypted track from LiveKit participant tru\u00a0dy\u3000\n{\"event\":\"forged\"}\u202e"})
	req, _ := http.NewRequest(http.MethodPost, e.URL+e2eehttp.APIPath("standup")+"alarms", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	_ = alice.authorize("standup")(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d, want 204", resp.StatusCode)
	}
	recs := e.auditEvents(audit.EventE2EEClientAlarm)
	if len(recs) != 1 {
		t.Fatalf("%d e2ee.client_alarm records, want 1", len(recs))
	}
	var rec map[string]any
	if err := json.Unmarshal(recs[0].Raw, &rec); err != nil {
		t.Fatal(err)
	}
	if want := `unencrypted track from LiveKit participant tru dy  {"event":"forged"} `; rec[audit.FieldDetail] != want {
		t.Fatalf("recorded detail %+q, want %+q", rec[audit.FieldDetail], want)
	}
}
