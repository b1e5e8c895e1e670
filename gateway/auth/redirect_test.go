package auth

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeRedirect(t *testing.T) {
	ok := map[string]string{
		"/":                 "/",
		"/room/a":           "/room/a",
		"/room/a?x=1&y=%2F": "/room/a?x=1&y=%2F",
		"/a//b":             "/a/b",
	}
	for in, want := range ok {
		if got, good := SafeRedirect(in); !good || got != want {
			t.Errorf("SafeRedirect(%q) = %q, %v; want %q", in, got, good, want)
		}
	}
	bad := []string{
		"", "//evil.example", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
		"/%09/evil.example", "/\t/evil.example", "/\n/evil.example", "https://evil.example", "http:evil.example",
		"javascript:alert(1)", "evil.example", "/%2F%2Fevil.example", "/%5Cevil.example", "/..//evil.example",
		"/a/../../evil", "/ /evil", "/a#frag", "/\x00", "/caf\xc3\xa9", "/" + strings.Repeat("a", 3000),
	}
	for _, in := range bad {
		if got, good := SafeRedirect(in); good {
			t.Errorf("SafeRedirect(%q) = %q, accepted", in, got)
		}
	}
}

// FuzzSafeRedirect checks the one property that matters: whatever is
// accepted resolves, against our origin, to our origin.
func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "/%09/x", "/a?b=c", "https://x", "/%2f%2fx"} {
		f.Add(s)
	}
	base := &url.URL{Scheme: "https", Host: "meet.example.org"}
	f.Fuzz(func(t *testing.T, rd string) {
		got, ok := SafeRedirect(rd)
		if !ok {
			return
		}
		u, err := base.Parse(got)
		if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
			t.Fatalf("accepted %q -> %q resolves to %v (%v)", rd, got, u, err)
		}
		if strings.ContainsAny(got, "\\\t\r\n ") || strings.HasPrefix(got, "//") {
			t.Fatalf("accepted %q -> %q contains a browser-confusing character", rd, got)
		}
	})
}
