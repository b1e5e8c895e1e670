package devidp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// pageCSS is inlined so the pages work offline; the CSP admits exactly this
// text by its hash, so no other style or script can run on the page.
const pageCSS = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#d9dde5;--accent:#2456d6;--warn:#8a5a00}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a2aabb;--bg:#14171d;--card:#1d212a;--line:#323846;--accent:#7aa2ff;--warn:#f0c060}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:34rem;margin:3rem auto;padding:0 1rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}
.warn{font-size:.85rem;color:var(--warn);border:1px solid currentColor;border-radius:.4rem;padding:.4rem .6rem}
ul{list-style:none;padding:0;margin:0 0 1rem}
li{margin:.5rem 0}
button{font:inherit;color:inherit;cursor:pointer}
.user{display:block;width:100%;text-align:left;padding:.8rem 1rem;border:1px solid var(--line);border-radius:.6rem;background:var(--card)}
.user:hover,.user:focus-visible{border-color:var(--accent);outline:none}
.user strong{display:block}
.user>span{display:block;color:var(--muted);font-size:.9rem}
.badge{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:1rem;border:1px solid var(--line)}
.mfa{border-color:var(--accent);color:var(--accent)}
.cancel{background:none;border:0;color:var(--muted);text-decoration:underline;padding:0}
`

var pageCSSHash = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("login").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in · meetguard dev IdP</title><style>{{.CSS}}</style></head>
<body><main>
<p class="warn">Development identity provider: anyone who can reach it can sign in as anyone. Never use it in production.</p>
<h1>Sign in to {{.Client}}</h1>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.Request}}">
<ul>
{{- range .Users}}
<li><button class="user" type="submit" name="user" value="{{.Subject}}">
<strong>{{.Name}}</strong>
<span>{{.Email}}{{if not .EmailVerified}} (unverified){{end}}</span>
<span>groups: {{if .Groups}}{{join .Groups}}{{else}}none{{end}} ·
{{if .MFA}}<span class="badge mfa">MFA</span>{{else}}<span class="badge">password only</span>{{end}}
amr {{join .AMR}}{{with .ACR}} · acr {{.}}{{end}}</span>
</button></li>
{{- end}}
</ul>
<button class="cancel" type="submit" name="cancel" value="1">Cancel and return to the application</button>
</form>
</main></body></html>
{{define "message"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · meetguard dev IdP</title><style>{{.CSS}}</style></head>
<body><main><h1>{{.Title}}</h1><p>{{.Text}}</p></main></body></html>
{{end}}`))

type loginPage struct {
	CSS     template.CSS
	Client  string
	Action  string
	Request string
	Users   []User
}

type messagePage struct {
	CSS   template.CSS
	Title string
	Text  string
}

// setPageHeaders locks the page down: nothing but the hashed style, forms
// only to us and (because browsers apply form-action to the redirect after
// a POST) to the relying party's origin, and no framing.
func setPageHeaders(w http.ResponseWriter, formTarget string) {
	formAction := "'none'"
	if formTarget != "" {
		formAction = "'self'"
		if u, err := url.Parse(formTarget); err == nil && u.Host != "" {
			formAction += " " + u.Scheme + "://" + u.Host
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+pageCSSHash+
		"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
}

func (p *Provider) renderLogin(w http.ResponseWriter, id string, req *authRequest) {
	var buf bytes.Buffer
	err := pages.Execute(&buf, loginPage{
		CSS:     template.CSS(pageCSS),
		Client:  p.clients[req.clientID].Name,
		Action:  p.prefix + "/login",
		Request: id,
		Users:   p.users,
	})
	if err != nil {
		p.log.Error("devidp: rendering login page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w, req.redirectURI)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// message shows a plain page; it is how errors are reported when redirecting
// to the relying party would be unsafe (unknown client or redirect_uri).
func (p *Provider) message(w http.ResponseWriter, status int, title, text string) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "message", messagePage{CSS: template.CSS(pageCSS), Title: title, Text: text}); err != nil {
		http.Error(w, text, status)
		return
	}
	setPageHeaders(w, "")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
