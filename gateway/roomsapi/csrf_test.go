package roomsapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCSRF_CrossSiteCallsWithTheSessionCookieAreRefused tries what a
// hostile page can make a signed-in browser send to the API.
func TestCSRF_CrossSiteCallsWithTheSessionCookieAreRefused(t *testing.T) {
	c := newCluster(t, clusterOptions{policyConfig: func(cfg map[string]any) {
		// The provider's test user may create rooms, so it hosts one.
		cfg["staff_domains"] = append(cfg["staff_domains"].([]any), "zitadel.ch")
	}})
	n := c.nodes[0]
	b := c.login(n)
	if r := call(t, b, http.MethodPut, n.apiURL("mine"), "", map[string]any{"lobby_enabled": false}, "Origin", n.URL); r.Status != http.StatusCreated {
		t.Fatalf("browser creates its room: %d %s", r.Status, r.Body)
	}
	post := func(path string, hdr ...string) reply {
		return call(t, b, http.MethodPost, n.apiURL(path), "", nil, hdr...)
	}
	locked := func() bool {
		r := call(t, b, http.MethodGet, n.apiURL("mine"), "", nil)
		return strings.Contains(string(r.Body), `"locked":true`)
	}
	refused := []struct {
		name string
		hdr  []string
	}{
		{"no origin, no fetch metadata, no header", nil},
		{"foreign origin", []string{"Origin", "https://evil.test"}},
		{"opaque origin", []string{"Origin", "null"}},
		{"look-alike origin", []string{"Origin", n.URL + ".evil.test"}},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site sibling", []string{"Sec-Fetch-Site", "same-site"}},
		{"user-typed navigation", []string{"Sec-Fetch-Site", "none"}},
		{"our origin but cross-site fetch", []string{"Origin", n.URL, "Sec-Fetch-Site", "cross-site"}},
		{"custom header from a foreign origin", []string{"Origin", "https://evil.test", "Meetguard-CSRF", "1"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"mine/lock", "mine/join"} {
				r := post(path, tc.hdr...)
				if r.Status != http.StatusForbidden || r.str(t, "error") != "csrf" {
					t.Errorf("%s: %d %s, want 403 csrf", path, r.Status, r.Body)
				}
			}
			if locked() {
				t.Fatal("a cross-site request locked the room")
			}
		})
	}
	allowed := [][]string{
		{"Origin", n.URL},
		{"Sec-Fetch-Site", "same-origin"},
		{"Meetguard-CSRF", "1"},
	}
	for _, hdr := range allowed {
		if r := post("mine/unlock", hdr...); r.Status != http.StatusOK {
			t.Errorf("same-origin call with %v: %d %s", hdr, r.Status, r.Body)
		}
	}
	if r := post("mine/lock", "Origin", n.URL); r.Status != http.StatusOK || !locked() {
		t.Fatalf("same-origin lock: %d %s", r.Status, r.Body)
	}
	// Bearer callers carry their credential explicitly: no CSRF check.
	if r := call(t, nil, http.MethodPost, n.apiURL("mine/join"), c.token(staff("app")), nil, "Origin", "https://elsewhere.test"); r.Status == http.StatusForbidden && r.str(t, "error") == "csrf" {
		t.Errorf("bearer call refused as CSRF: %s", r.Body)
	}
	// A form-encoded body is not accepted even with the header.
	r := rawPost(t, b, n.apiURL("mine/join"), "text/plain", `{"passcode":"x"}`, "Meetguard-CSRF", "1")
	if r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %s", r.Status, r.Body)
	}
}

func rawPost(t *testing.T, cl *http.Client, u, ctype, body string, hdr ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
