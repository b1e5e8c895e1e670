package reqpath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	ok := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/room/a", "/room/a"},
		{"//room//a///", "/room/a/"},
		{"/room/a%20b", "/room/a%20b"},
		{"/room/a.b/c..d", "/room/a.b/c..d"},
		{"/room/caf%C3%A9", "/room/caf%C3%A9"},
	}
	for _, tc := range ok {
		got, err := Canonical(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	bad := []string{
		"/room/a/..%2f..%2fadmin",
		"/room/a/..%2F..%2Fadmin",
		"/room/a/../admin",
		"/room/./a",
		"/room/a/..",
		"/room/%2e%2e/admin",
		"/room/.%2e/admin",
		"/room/a;jsessionid=x",
		"/room/a%3bx",
		"/room/a%00",
		"/room/a\x00",
		"/room/a%0d%0aX-Meetguard-User:%20x",
		"/room/a\\..\\admin",
		"/room/a%5cadmin",
		"/room/a%252f",
		"/room/a%zz",
		"/room/a%2",
		"room/a",
		"/room/\xff",
		"/" + strings.Repeat("a", MaxLen),
	}
	for _, in := range bad {
		if got, err := Canonical(in); !errors.Is(err, ErrRejected) {
			t.Errorf("Canonical(%q) = %q, %v; want ErrRejected", in, got, err)
		}
	}
}

// FuzzCanonical checks the properties the proxy relies on: a canonical path
// is stable, decodes to a path with no dot-segments and no extra slashes, and
// the decoded path has exactly the segments of the canonical one.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"/", "/room/a", "//x//y", "/a/..%2f", "/a;b", "/%41%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Canonical(in)
		if err != nil {
			return
		}
		again, err := Canonical(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("double slash survived: %q", out)
		}
		dec, err := url.PathUnescape(out)
		if err != nil {
			t.Fatalf("canonical %q does not decode: %v", out, err)
		}
		if strings.Count(dec, "/") != strings.Count(out, "/") {
			t.Fatalf("decoding %q changed its segments: %q", out, dec)
		}
		for seg := range strings.SplitSeq(dec, "/") {
			if seg == "." || seg == ".." || strings.ContainsAny(seg, "\\;\x00") {
				t.Fatalf("decoded %q has a dangerous segment %q", dec, seg)
			}
		}
	})
}
