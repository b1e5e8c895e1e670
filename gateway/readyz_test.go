package gateway_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
)

// rejectedReload is a readiness check as the policy engine's is after a
// rejected hot reload: ready (the last good revision serves), with a
// detail that names a file and quotes its source.
type rejectedReload struct{}

func (rejectedReload) Ready() error { return nil }
func (rejectedReload) ReadyDetail() string {
	return `serving 5f1c; last reload rejected: /etc/meetguard/policies/admission.rego:12: rego_parse_error: unexpected { token: allow if { input.subject.groups[_] == "secops-oncall" }`
}

// brokenStore is a failing check whose error names internals.
type brokenStore struct{}

func (brokenStore) Ready() error {
	return errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
}

// TestReadyz_PublicSaysOnlyOkOrNotOk: the public probe names each check
// and says "ok" or "not ok", nothing else; the admin listener says why a
// failing check fails, but a ready check's detail (a rejected policy
// reload's file and Rego source, now on the security console's policy
// page) is on neither. The public one used to show the rejected policy's
// path and Rego source to anyone, the admin one until this change.
func TestReadyz_PublicSaysOnlyOkOrNotOk(t *testing.T) {
	up := gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
	g := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
		Admitter:  roleAdmitter{},
		Wire: func(_ *config.Config, o *gateway.Options) {
			o.Ready = map[string]gateway.ReadyChecker{"policy": rejectedReload{}, "rooms": brokenStore{}}
		},
	})
	var body struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	resp := get(t, http.DefaultClient, g.URL+"/.meetguard/readyz", nil)
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Ready {
		t.Fatalf("public readyz with a broken store: %d %+v", resp.StatusCode, body)
	}
	want := map[string]string{"policy": "ok", "rooms": "not ok", "oidc": "ok", "audit": "ok"}
	for name, v := range body.Checks {
		if v != want[name] {
			t.Errorf("public readyz check %s = %q, want %q", name, v, want[name])
		}
	}
	if len(body.Checks) != len(want) {
		t.Errorf("public readyz checks %v, want %v", body.Checks, want)
	}

	admin := httptest.NewServer(g.Gateway.AdminHandler(nil))
	defer admin.Close()
	resp = get(t, http.DefaultClient, admin.URL+"/readyz", nil)
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Checks["rooms"], "connection refused") {
		t.Fatalf("admin readyz lacks the failing check's detail: %d %+v", resp.StatusCode, body)
	}
	if body.Checks["policy"] != "ok" {
		t.Errorf("admin readyz shows the rejected reload: %q", body.Checks["policy"])
	}
}
