package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestCatalog_EveryLanguageHasEveryKey: a page in any shipped language
// never falls back to English for lack of a translation, and no language
// carries a key English does not (a typo).
func TestCatalog_EveryLanguageHasEveryKey(t *testing.T) {
	c := Default().Catalog()
	en := c.Keys("en")
	for _, lang := range c.Languages() {
		m := c.Keys(lang)
		for k := range en {
			if m[k] == "" {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
		for k := range m {
			if _, ok := en[k]; !ok {
				t.Errorf("%s has %q, which en.json lacks", lang, k)
			}
		}
	}
}

var templateKey = regexp.MustCompile(`\.T "([a-z0-9_.]+)"`)

// TestTemplates_NameOnlyKnownKeys: every key a template asks for exists,
// so no page shows an empty string or a code.
func TestTemplates_NameOnlyKnownKeys(t *testing.T) {
	en := Default().Catalog().Keys("en")
	names, _ := fs.Glob(files, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(files, n)
		for _, m := range templateKey.FindAllSubmatch(b, -1) {
			if _, ok := en[string(m[1])]; !ok {
				t.Errorf("%s: unknown key %q", n, m[1])
			}
		}
	}
}

func TestCatalog_Match(t *testing.T) {
	c := Default().Catalog()
	tests := []struct{ choice, accept, want string }{
		{"", "", "en"},
		{"", "vi", "vi"},
		{"", "vi-VN,vi;q=0.9,en;q=0.5", "vi"},
		{"", "fr-FR,fr;q=0.9", "en"},
		{"", "de;q=0.9,vi;q=0.8", "vi"},
		{"en", "vi", "en"},
		{"vi", "en-US", "vi"},
		{"xx-not-a-tag!!", "vi", "vi"},
		{"", strings.Repeat("a,", 5000), "en"},
		{"", "\x00\xff;q=garbage", "en"},
	}
	for _, tt := range tests {
		if got := c.Match(tt.choice, tt.accept); got != tt.want {
			t.Errorf("Match(%q, %.30q) = %q, want %q", tt.choice, tt.accept, got, tt.want)
		}
	}
}

func FuzzCatalogMatch(f *testing.F) {
	for _, s := range []string{"", "vi", "vi-VN,vi;q=0.9", "*", "en;q=0", "zh-Hant-TW;q=0.5,vi"} {
		f.Add("", s)
	}
	c := Default().Catalog()
	f.Fuzz(func(t *testing.T, choice, accept string) {
		got := c.Match(choice, accept)
		if got != "en" && got != "vi" {
			t.Fatalf("Match(%q, %q) = %q: not a catalog language", choice, accept, got)
		}
	})
}

// TestTranslator_FallsBackToEnglishNeverToAKey.
func TestTranslator_FallsBackToEnglishNeverToAKey(t *testing.T) {
	c := Default().Catalog()
	vi := c.In("vi")
	if got := vi.T("refusal.message"); got == "" || got == c.In("en").T("refusal.message") {
		t.Errorf("vi refusal = %q", got)
	}
	if got := vi.Text(Literal("This meeting is not available.")); got != vi.T("refusal.message") {
		t.Errorf("an English text of the catalog is not translated: %q", got)
	}
	if got := vi.Text(Literal("Policy says no.")); got != "Policy says no." {
		t.Errorf("a literal changed: %q", got)
	}
	if got := vi.T("no.such.key"); got != "" {
		t.Errorf("unknown key shown as %q", got)
	}
}

var (
	inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	inlineStyle  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// TestRender_CSPAdmitsExactlyTheInlineCodeAndNothingInjected: whatever a
// caller's data holds, the page runs only the hashed script and style.
func TestRender_CSPAdmitsExactlyTheInlineCodeAndNothingInjected(t *testing.T) {
	evil := `"><script>alert(1)</script><img src=x onerror=alert(1)>`
	views := []View{
		{Template: "message", Title: Literal(evil), Data: Message{Text: Literal(evil), Link: &Link{Href: "javascript:alert(1)", Label: Literal(evil)}}},
		{Template: "waiting", Title: T("waiting.title"), Script: "waiting.js", Data: Waiting{Room: evil, RoomName: evil, Wait: evil, State: "waiting", Message: Literal(evil), Who: evil, Leave: true, Form: true, Again: true}},
	}
	for _, v := range views {
		for _, lang := range []string{"en", "vi"} {
			rec := httptest.NewRecorder()
			Default().Render(rec, httptest.NewRequest(http.MethodGet, "/?lang="+lang, nil), http.StatusOK, v)
			body, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
			scripts, styles := inlineScript.FindAllStringSubmatch(body, -1), inlineStyle.FindAllStringSubmatch(body, -1)
			if len(styles) != 1 || v.Script != "" && len(scripts) != 1 || v.Script == "" && len(scripts) != 0 {
				t.Fatalf("%s: %d scripts, %d styles (injection?)", v.Template, len(scripts), len(styles))
			}
			if !strings.Contains(csp, "style-src "+Hash(styles[0][1])) {
				t.Errorf("CSP %q lacks the style's hash", csp)
			}
			if len(scripts) == 1 && !strings.Contains(csp, "script-src "+Hash(scripts[0][1])) {
				t.Errorf("CSP %q lacks the script's hash", csp)
			}
			for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") || strings.Contains(body, "<img") || strings.Contains(body, "javascript:") {
				t.Errorf("page not safe: CSP %q body %s", csp, body)
			}
			if !strings.Contains(body, `<html lang="`+lang+`">`) || rec.Header().Get("Content-Language") != lang {
				t.Errorf("lang not %s", lang)
			}
			for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
				if rec.Header().Get(h) == "" {
					t.Errorf("no %s", h)
				}
			}
		}
	}
}

// TestCheckCSRF tries the cross-site requests a cookie-authenticated
// state change must refuse.
func TestCheckCSRF(t *testing.T) {
	const own = "https://meet.example"
	tests := []struct {
		name    string
		method  string
		headers []string
		ok      bool
	}{
		{"own origin", "POST", []string{"Origin", own}, true},
		{"same-origin fetch metadata", "POST", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"csrf header", "POST", []string{CSRFHeader, "1"}, true},
		{"other origin", "POST", []string{"Origin", "https://evil.example", CSRFHeader, "1"}, false},
		{"sibling subdomain", "POST", []string{"Origin", "https://a.meet.example"}, false},
		{"other port", "POST", []string{"Origin", "https://meet.example:8443"}, false},
		{"null origin", "POST", []string{"Origin", "null"}, false},
		{"same-site", "POST", []string{"Sec-Fetch-Site", "same-site", CSRFHeader, "1"}, false},
		{"cross-site", "POST", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"typed navigation", "POST", []string{"Sec-Fetch-Site", "none"}, false},
		{"no proof", "POST", nil, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/", nil)
		for i := 0; i+1 < len(tt.headers); i += 2 {
			r.Header.Set(tt.headers[i], tt.headers[i+1])
		}
		if err := CheckCSRF(r, own); (err == nil) != tt.ok {
			t.Errorf("%s: CheckCSRF = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
