package gateway

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/web"
)

// Own path areas: everything below them is the gateway's, never proxied.
const (
	ownPrefix       = "/.meetguard/"
	wellKnownPrefix = "/.well-known/meetguard/"
	apiPrefix       = "/.meetguard/api/"
)

// routed serves one route and returns its label for the metrics and the
// access log.
type routed func(w *statusRecorder, r *http.Request) string

// routes builds the one router behind the edge. The edge has already
// handed every request its canonical path, so the mux never cleans or
// redirects one: for each subtree pattern ("/a/b/") the same path without
// its slash is registered too, answered as the longest other pattern
// would, instead of the mux's redirect.
func (g *Gateway) routes(mount map[string]http.Handler) (*http.ServeMux, error) {
	table := map[string]routed{
		"/": func(w *statusRecorder, r *http.Request) string {
			return g.serveProxy(w, r, r.URL.EscapedPath(), w.edge)
		},
		ownPrefix:       notFound,
		wellKnownPrefix: notFound,
		auth.LoginPath: func(w *statusRecorder, r *http.Request) string {
			g.opts.Auth.Login(w, r)
			return "login"
		},
		auth.CallbackPath: func(w *statusRecorder, r *http.Request) string {
			g.opts.Auth.Callback(w, r)
			return "callback"
		},
		auth.LogoutPath: func(w *statusRecorder, r *http.Request) string {
			g.opts.Auth.Logout(w, r)
			return "logout"
		},
		auth.LoggedOutPath: func(w *statusRecorder, r *http.Request) string {
			respond.Page(w, r, http.StatusOK, web.T("signedout.title"), web.Message{Text: web.T("signedout.text"), Link: &web.Link{Href: "/", Label: web.T("signin.again")}})
			return "logged_out"
		},
		AuthPath: g.serveAuth,
		"/.meetguard/healthz": func(w *statusRecorder, _ *http.Request) string {
			respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return "health"
		},
		"/.meetguard/readyz": func(w *statusRecorder, _ *http.Request) string {
			g.serveReady(w, false)
			return "health"
		},
		assertion.JWKSPath: func(w *statusRecorder, _ *http.Request) string {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(g.opts.Assertion.JWKS())
			return "jwks"
		},
	}
	for p, h := range g.opts.Public {
		if strings.HasPrefix(p, wellKnownPrefix) {
			addPrefix(table, p, serveAs("public", h))
		}
	}
	for p, h := range g.opts.API {
		if strings.HasPrefix(p, apiPrefix) {
			addPrefix(table, p, g.serveAPI(h))
		}
	}
	for p, h := range g.opts.Pages {
		if strings.HasPrefix(p, ownPrefix) && !strings.HasPrefix(p, apiPrefix) {
			addPrefix(table, p, g.serveAPI(h))
		}
	}
	for p, h := range mount {
		addPrefix(table, p, serveAs("mounted", h))
	}
	// Subtree roots without their slash: answered like the longest other
	// pattern they lie under, never redirected.
	patterns := slices.Collect(maps.Keys(table))
	for _, p := range patterns {
		bare := strings.TrimSuffix(p, "/")
		if bare == p || bare == "" {
			continue
		}
		if _, ok := table[bare]; !ok {
			table[bare] = table[longestUnder(patterns, bare)]
		}
	}
	mux := http.NewServeMux()
	for p, h := range table {
		if err := register(mux, p, h); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// addPrefix registers h for everything below prefix; a prefix without a
// trailing slash also takes the path itself.
func addPrefix(table map[string]routed, prefix string, h routed) {
	if strings.HasSuffix(prefix, "/") {
		table[prefix] = h
		return
	}
	table[prefix] = h
	table[prefix+"/"] = h
}

// longestUnder is the longest subtree pattern other than path itself that
// path lies under.
func longestUnder(patterns []string, path string) string {
	best := "/"
	for _, p := range patterns {
		if strings.HasSuffix(p, "/") && p != path+"/" && strings.HasPrefix(path, p) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// register adds one route; a pattern the mux refuses (a config prefix with
// a wildcard brace) is an error, not a panic.
func register(mux *http.ServeMux, pattern string, h routed) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &routeError{pattern: pattern, problem: p}
		}
	}()
	mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := w.(*statusRecorder)
		rec.route = h(rec, r)
	}))
	return nil
}

type routeError struct {
	pattern string
	problem any
}

func (e *routeError) Error() string {
	return "gateway: route " + e.pattern + ": " + strings.TrimPrefix(toString(e.problem), "http: ")
}

func toString(v any) string {
	if s, ok := v.(interface{ Error() string }); ok {
		return s.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "invalid pattern"
}

func notFound(w *statusRecorder, _ *http.Request) string {
	respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
	return "not_found"
}

// serveAs serves h under a fixed label.
func serveAs(label string, h http.Handler) routed {
	return func(w *statusRecorder, r *http.Request) string {
		h.ServeHTTP(w, r)
		return label
	}
}

// serveAPI authenticates every request of the gateway's own API before h
// sees it, and passes the identity in the context (identity.From).
func (g *Gateway) serveAPI(h http.Handler) routed {
	return func(w *statusRecorder, r *http.Request) string {
		id, err := g.opts.Auth.Authenticate(r)
		if err != nil {
			g.unauthenticated(w, r, err)
			return "api"
		}
		w.subject = id.Subject
		if err := originCheck(g.now().origins, r, id, true); err != nil {
			g.refuseForeignOrigin(w, r, id)
			return "foreign_origin"
		}
		// Handlers set tighter caps per endpoint; this is the ceiling.
		r.Body = http.MaxBytesReader(w, r.Body, g.now().cfg.Limits.MaxBodyBytes)
		h.ServeHTTP(w, r.WithContext(identity.With(r.Context(), id)))
		return "api"
	}
}
