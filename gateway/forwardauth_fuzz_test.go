package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/reqpath"
)

// FuzzForwardAuthQuestion: whatever URI and method a front proxy (or a
// client it failed to overwrite) sends, reading the question never panics,
// and an accepted one names exactly one canonical origin-form path, with
// the body of the auth request never read as the asked request's.
func FuzzForwardAuthQuestion(f *testing.F) {
	for _, s := range [][2]string{{"/room/a/ws?x=1", "GET"}, {"http://evil.test/room/a", "GET"}, {"//evil.test/x", "GET"},
		{"/a/../room/b", "POST"}, {"/room/%2e%2e/x", "GET"}, {"/room/a%2fb", "GET"}, {"", "GET"}, {"/x", "get"},
		{"/x#frag", "GET"}, {"*", "OPTIONS"}, {"/ok", "G\x00T"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, uri, method string) {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/.meetguard/auth", strings.NewReader("body"))
		if err != nil {
			t.Skip()
		}
		o, path, err := originalRequest(r, askedRequest{uris: []string{uri}, methods: []string{method}})
		if err != nil {
			return
		}
		if c, err := reqpath.Canonical(path); err != nil || c != path || !strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "//") && o.URL.Host != "" {
			t.Fatalf("uri %q accepted as path %q (%v)", uri, path, err)
		}
		if o.URL.Host != "" || o.URL.Scheme != "" || o.Method != method || o.Body != http.NoBody || o.ContentLength != 0 {
			t.Fatalf("uri %q method %q: %+v", uri, method, o.URL)
		}
	})
}
