package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed templates/*.html static messages/*.json
var files embed.FS

// StyleSheet is the one style sheet every page inlines.
const StyleSheet = "meetguard.css"

// Pages renders the gateway's pages. It is immutable once built and safe
// for concurrent use.
type Pages struct {
	tmpl    *template.Template
	assets  map[string]asset // static/ by file name
	catalog *Catalog
}

type asset struct {
	body string
	hash string // CSP source expression: 'sha256-…'
}

// View is one page to render.
type View struct {
	// Template names a template defined under templates/.
	Template string
	// Title is the page's title, also its <title> (with " · meetguard").
	Title Text
	// Script names a file under static/ that the page inlines and its CSP
	// admits by hash; empty for a page without script.
	Script string
	// FormAction lists the CSP form-action sources; none means 'none'.
	FormAction []string
	// AnyFormTarget leaves form-action out of the CSP: for a form whose
	// answer redirects to an origin not known here (sign-out, which ends
	// at the identity provider).
	AnyFormTarget bool
	// Workers, Connect and Media extend the CSP (see CSP); only a page
	// with a script gets Workers and Connect.
	Workers, Connect, Media []string
	// ReferrerPolicy replaces the pages' "no-referrer" for a page with a
	// form that POSTs to the gateway: under no-referrer a browser sends
	// such a form's Origin as "null", which the origin rule refuses.
	// "same-origin" still sends no Referer to another site.
	ReferrerPolicy string
	// Site follows the title ("meetguard" when empty).
	Site string
	// Data is what the template shows.
	Data any
}

var loadDefault = sync.OnceValues(func() (*Pages, error) { return Load(files) })

// Default returns the pages built from the embedded files. The files are
// part of the binary and checked by the package's tests, so an error here
// is a build mistake: Default panics on it, like template.Must.
func Default() *Pages {
	p, err := loadDefault()
	if err != nil {
		panic(err)
	}
	return p
}

// Load builds Pages from fsys (templates/, static/, messages/).
func Load(fsys fs.FS) (*Pages, error) {
	cat, err := LoadCatalog(fsys)
	if err != nil {
		return nil, err
	}
	p := &Pages{assets: map[string]asset{}, catalog: cat}
	static, err := fs.ReadDir(fsys, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	for _, e := range static {
		b, err := fs.ReadFile(fsys, path.Join("static", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		p.assets[e.Name()] = asset{body: string(b), hash: Hash(string(b))}
	}
	if _, ok := p.assets[StyleSheet]; !ok {
		return nil, fmt.Errorf("web: static/%s missing", StyleSheet)
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"join": func(s []string, sep string) string { return strings.Join(s, sep) },
		// args hands a sub-template its page, a message key and a list.
		"args": func(p *Page, key string, list any) Args { return Args{P: p, Key: key, Counts: list} },
	}).ParseFS(fsys, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	p.tmpl = tmpl
	return p, nil
}

// Args is what the "args" template function gives a sub-template.
type Args struct {
	P      *Page
	Key    string
	Counts any
}

// Catalog is the message catalog the pages speak from.
func (p *Pages) Catalog() *Catalog { return p.catalog }

// Page is what a template sees: the request's language, its translator,
// the inlined style and script, and the view's data.
type Page struct {
	Lang   string
	Site   string
	Title  string
	Style  template.CSS
	Script template.JS
	Data   any
	tr     Translator
}

// T translates key with args (fmt verbs, %[1]s style for reordering).
func (p *Page) T(key string, args ...any) string { return p.tr.T(key, args...) }

// Strings are the translations of every key starting with prefix, for a
// script (in a <script type="application/json"> block, which no browser
// runs and html/template escapes).
func (p *Page) Strings(prefix string) map[string]string {
	out := map[string]string{}
	for k := range p.tr.c.messages["en"] {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = p.tr.T(k)
		}
	}
	return out
}

// PolicyTexts maps each shipped policy message (policy.* keys, in
// English, as the API's JSON carries them) to its text in the page's
// language, for a script showing a message it fetched.
func (p *Page) PolicyTexts() map[string]string {
	out := map[string]string{}
	for k, en := range p.tr.c.messages["en"] {
		if strings.HasPrefix(k, PolicyKeyPrefix) {
			out[en] = p.tr.T(k)
		}
	}
	return out
}

// Tr renders a Text: translated when it names a key, else verbatim.
func (p *Page) Tr(t Text) string { return p.tr.Text(t) }

// Render writes v as a complete page with status, in r's language, with
// the security headers and a CSP that admits exactly the page's style and
// script.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, v View) {
	tr := p.catalog.For(r)
	pg := &Page{Lang: tr.Lang(), Style: template.CSS(p.assets[StyleSheet].body), Data: v.Data, tr: tr}
	pg.Title = tr.Text(v.Title)
	pg.Site = v.Site
	if pg.Site == "" {
		pg.Site = "meetguard"
	}
	csp := CSP{Styles: []string{p.assets[StyleSheet].hash}, FormAction: v.FormAction, AnyFormTarget: v.AnyFormTarget,
		Workers: v.Workers, Connect: v.Connect, Media: v.Media}
	if v.Script != "" {
		s, ok := p.assets[v.Script]
		if !ok {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		pg.Script = template.JS(s.body)
		csp.Scripts = []string{s.hash}
	}
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, v.Template, pg); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	SetPageHeaders(h, csp.String())
	if v.ReferrerPolicy != "" {
		h.Set("Referrer-Policy", v.ReferrerPolicy)
	}
	h.Set("Content-Language", pg.Lang)
	h.Add("Vary", "Accept-Language")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// StyleHash is the CSP source of the one style sheet.
func (p *Pages) StyleHash() string { return p.assets[StyleSheet].hash }

// ScriptHash is the CSP source of static/name ("" when there is none).
func (p *Pages) ScriptHash(name string) string { return p.assets[name].hash }
