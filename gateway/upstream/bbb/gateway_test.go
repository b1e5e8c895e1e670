package bbb_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
)

func startBBBGateway(t *testing.T, f *fakeBBB, adm admission.Admitter) *gwtest.Gateway {
	t.Helper()
	return gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "bbb", URL: f.srv.URL, Kind: "bbb",
			BBB: &config.BBB{Secret: secret}}},
		Adapters: func(string) map[string]admission.Adapter {
			return map[string]admission.Adapter{"bbb": newAdapter(t, f, nil)}
		},
		Admitter: adm,
	})
}

func open(t *testing.T, env *gwtest.Gateway, path, accept string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+env.Bearer(t, ""))
	req.Header.Set("Accept", accept)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestGateway_BrowserIsSentToTheSessionURLAfterAdmission(t *testing.T) {
	f := startFake(t)
	env := startBBBGateway(t, f, gwtest.RoomRoles{Roles: map[string]string{"standup": "host"}, Deny: map[string]bool{"board": true}})
	resp := open(t, env, "/room/standup", "text/html")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc != "http://"+f.sessionTo+"/html5client/join?sessionToken=tok-standup" {
		t.Fatalf("%d Location %q", resp.StatusCode, loc)
	}
	if strings.Contains(loc, "checksum") || strings.Contains(loc, secret) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("redirect leaks or is cacheable: %q %q", loc, resp.Header.Get("Cache-Control"))
	}
	calls := f.recorded()
	if len(calls) != 2 || calls[1].Get("role") != "MODERATOR" {
		t.Fatalf("calls %v", calls)
	}
	// Denied: no API call, no redirect.
	if resp := open(t, env, "/room/board", "text/html"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Fatalf("denied room: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(f.recorded()) != 2 {
		t.Fatal("the API was called for a denied room")
	}
}

func TestGateway_MalformedServerAnswerGivesNoAdmission(t *testing.T) {
	for name, body := range map[string]string{
		"html":    "<html><body>Bad Gateway</body></html>",
		"garbage": "%PDF-1.4 garbage",
		"failed":  "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey></response>",
	} {
		t.Run(name, func(t *testing.T) {
			f := startFake(t)
			f.answer = func(call string, _ url.Values) (int, string, bool) { return http.StatusOK, body, call == "join" }
			env := startBBBGateway(t, f, nil)
			resp := open(t, env, "/room/standup", "text/html")
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}
