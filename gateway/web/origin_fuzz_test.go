package web

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzOriginCheck: whatever Origin a browser (or attacker) sends, the guard
// never panics, and it lets a cookie-authenticated upgrade through only
// when the canonical origin is exactly an allowed one.
func FuzzOriginCheck(f *testing.F) {
	for _, s := range []string{"https://meet.example", "HTTPS://MEET.EXAMPLE:443", "null", "http://meet.example",
		"https://meet.example.evil", "https://evil.meet.example", "https://meet.example:8443", "https://[::1]:443",
		"https://meet.example/path", "https://user@meet.example", "javascript:alert(1)", "", "https://meet.example%00"} {
		f.Add(s)
	}
	g, err := NewOrigins("https://meet.example", []string{"https://app.meet.example"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		r, err := http.NewRequest(http.MethodGet, "https://meet.example/room/r1/ws", nil)
		if err != nil {
			t.Skip()
		}
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header["Origin"] = []string{origin}
		err = g.Check(r, Caller{Upgrade: true, Session: true})
		c, ok := CanonicalOrigin(origin, true)
		if allowed := ok && (c == "https://meet.example" || c == "https://app.meet.example"); (err == nil) != allowed {
			t.Fatalf("origin %q: check %v, canonical %q %v", origin, err, c, ok)
		}
		if err == nil && !strings.Contains(strings.ToLower(origin), "meet.example") {
			t.Fatalf("origin %q let through", origin)
		}
	})
}
