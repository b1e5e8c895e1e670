package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
)

// TestOrigin_CrossSiteWebSocketHijackingRefused: an evil page cannot open a
// WebSocket to a room path with the victim's cookies. The gateway used to
// accept any Origin on an upgrade. Each origin case is tried with a real
// session (browser login) over 127.0.0.1; refused handshakes get 403, never
// reach the upstream, and are recorded (origin.refused).
func TestOrigin_CrossSiteWebSocketHijackingRefused(t *testing.T) {
	const allowed = "https://app.meet.example"
	e := newEnv(t, envOptions{mutate: func(c *config.Config) { c.AllowedOrigins = []string{allowed} }})
	browserClient, resp := e.login("/app")
	resp.Body.Close()
	wsURL := strings.Replace(e.URL, "http://", "ws://", 1) + "/room/r1/ws"
	port := e.URL[strings.LastIndex(e.URL, ":")+1:]
	otherPort := "http://127.0.0.1:1" + port[1:]
	if otherPort == e.URL {
		otherPort = "http://127.0.0.1:2" + port[1:]
	}

	cases := []struct {
		name   string
		origin string // "" sends none
		bearer bool
		want   int
	}{
		{"evil site", "http://evil.example", false, http.StatusForbidden},
		{"null (sandboxed frame, file:)", "null", false, http.StatusForbidden},
		{"other port of the same host", otherPort, false, http.StatusForbidden},
		{"sibling subdomain of an allowed origin", "https://evil.meet.example", false, http.StatusForbidden},
		{"parent domain of an allowed origin", "https://meet.example", false, http.StatusForbidden},
		{"allowed origin with a path", allowed + "/x", false, http.StatusForbidden},
		{"cookie without Origin", "", false, http.StatusForbidden},
		{"bearer from an evil site", "http://evil.example", true, http.StatusForbidden},
		{"own origin", e.URL, false, http.StatusSwitchingProtocols},
		{"own origin, other case and default port", strings.ToUpper(e.URL[:4]) + e.URL[4:], false, http.StatusSwitchingProtocols},
		{"allowed origin", allowed, false, http.StatusSwitchingProtocols},
		{"allowed origin with its default port", allowed + ":443", false, http.StatusSwitchingProtocols},
		{"bearer without Origin", "", true, http.StatusSwitchingProtocols},
	}
	refused := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hdr := http.Header{}
			client := browserClient
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			if tc.bearer {
				client = &http.Client{Timeout: 10 * time.Second}
				hdr.Set("Authorization", "Bearer "+e.idToken())
			}
			before := len(e.up.Requests())
			ws, r, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: client, HTTPHeader: hdr})
			got := 0
			if r != nil {
				got = r.StatusCode
			}
			if got != tc.want {
				t.Fatalf("handshake status %d (%v), want %d", got, err, tc.want)
			}
			if tc.want != http.StatusSwitchingProtocols {
				refused++
				if n := len(e.up.Requests()); n != before {
					t.Errorf("a refused handshake reached the upstream")
				}
				return
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "hi" {
				t.Fatalf("echo: %q %v", msg, err)
			}
		})
	}

	e.gw.Close(context.Background())
	recs := e.audit.Records(audit.EventOriginRefused)
	var total int64
	origins := map[string]bool{}
	for _, r := range recs {
		total += r[audit.FieldCount].(int64)
		origins[r[audit.FieldOrigin].(string)] = true
		if r[audit.FieldUpgrade] != true || r[audit.FieldPath] != "/room/r1/ws" {
			t.Errorf("origin.refused record %v", r)
		}
	}
	if int(total) != refused || !origins["http://evil.example"] || !origins["null"] || !origins[otherPort] {
		t.Errorf("origin.refused records count %d refusals over %v, want %d", total, origins, refused)
	}
}

// TestOrigin_CookieStateChangesNeedOwnOrigin: a state-changing request
// through the proxy that the browser authenticates with its session cookie
// must come from an allowed origin (cross-site request forgery); reads and
// bearer calls are not affected.
func TestOrigin_CookieStateChangesNeedOwnOrigin(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, resp := e.login("/app")
	resp.Body.Close()
	post := func(client *http.Client, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/app/settings", strings.NewReader("x=1"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	bearer := "Bearer " + e.idToken()
	for _, tc := range []struct {
		name   string
		client *http.Client
		hdr    map[string]string
		want   int
	}{
		{"evil site form post", c, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"same-site, cross-origin fetch", c, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"no proof of origin", c, nil, http.StatusForbidden},
		{"own origin", c, map[string]string{"Origin": e.URL}, http.StatusOK},
		{"same-origin fetch without Origin", c, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"bearer, evil Origin (not browser-attached)", http.DefaultClient, map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, http.StatusOK},
		{"bearer, no Origin", http.DefaultClient, map[string]string{"Authorization": bearer}, http.StatusOK},
	} {
		if got := post(tc.client, tc.hdr); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if r := get(t, c, e.URL+"/app/page", map[string]string{"Origin": "http://evil.example"}); r.StatusCode != http.StatusOK {
		t.Errorf("a cross-origin read with the cookie: %d, want 200 (reads change nothing)", r.StatusCode)
	}
}

// TestOrigin_APIStateChangesNeedProofOfOrigin: the gateway's own API (the
// rooms and e2ee endpoints) gets the same check before any handler runs:
// a cookie-authenticated POST from another site, or with no sign of its
// origin at all, is refused; Meetguard-CSRF (which no other site can send
// without a preflight) or the own Origin passes, as does a bearer call.
func TestOrigin_APIStateChangesNeedProofOfOrigin(t *testing.T) {
	up := gwtest.StartUpstream(t, gwtest.UpstreamOptions{})
	var reached atomic.Int32
	g := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: up.URL}},
		Admitter:  roleAdmitter{},
		Wire: func(_ *config.Config, o *gateway.Options) {
			o.API = map[string]http.Handler{"/.meetguard/api/v1/": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				reached.Add(1)
				w.WriteHeader(http.StatusNoContent)
			})}
		},
	})
	c := browsertest.Client(t)
	resp := g.IdP.BrowserLogin(t, c, g.URL+"/app")
	resp.Body.Close()
	bearer := "Bearer " + g.IdP.Sign(t, g.IdP.Claims(g.IdP.ClientID), "")
	for _, tc := range []struct {
		name   string
		client *http.Client
		hdr    map[string]string
		want   int
	}{
		{"evil origin", c, map[string]string{"Origin": "http://evil.example", "Meetguard-CSRF": "1"}, http.StatusForbidden},
		{"no sign of origin", c, nil, http.StatusForbidden},
		{"cross-site fetch with the header", c, map[string]string{"Sec-Fetch-Site": "cross-site", "Meetguard-CSRF": "1"}, http.StatusForbidden},
		{"own origin", c, map[string]string{"Origin": g.URL}, http.StatusNoContent},
		{"Meetguard-CSRF header", c, map[string]string{"Meetguard-CSRF": "1"}, http.StatusNoContent},
		{"bearer", http.DefaultClient, map[string]string{"Authorization": bearer}, http.StatusNoContent},
	} {
		before := reached.Load()
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/.meetguard/api/v1/rooms/r1/e2ee/register", strings.NewReader("x"))
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		r, err := tc.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, r.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden && reached.Load() != before {
			t.Errorf("%s: a refused call reached the API", tc.name)
		}
	}
}
