package demoapp

import (
	"errors"
	"fmt"
	"github.com/meetguard/meetguard/gateway/web"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configure an App.
type Options struct {
	Logger *zap.Logger

	// VerifyAssertion, when set, checks X-Meetguard-Assertion on every
	// request; it takes precedence over AssertionJWKSURL.
	VerifyAssertion AssertionVerifier
	// AssertionJWKSURL, when set, is the gateway's assertion key set, e.g.
	// "http://127.0.0.1:8080/.well-known/meetguard/jwks.json". It is fetched
	// on first use, so the gateway may start after the app. AssertionIssuer
	// (the gateway's public_url) and AssertionAudience (this upstream's name
	// in the gateway config) are then required.
	AssertionJWKSURL  string
	AssertionIssuer   string
	AssertionAudience string
	// HTTPClient fetches the JWKS; a client with a 5 s timeout by default.
	HTTPClient *http.Client

	// OriginPatterns are extra origins (coder/websocket host patterns, e.g.
	// "127.0.0.1:8080") whose pages may open the WebSocket. Origins on the
	// request's own Host are always allowed. Behind a proxy that rewrites Host
	// to the upstream's address, list the gateway's public host here.
	OriginPatterns []string

	Clock func() time.Time // time.Now when nil
}

// App is the demo meeting app. Routes:
//
//	GET /                  what this app is; nothing sensitive
//	GET /room/{name}       the room page
//	GET /room/{name}/ws    the room's WebSocket (presence and chat)
type App struct {
	log     *zap.Logger
	verify  AssertionVerifier
	origins []string
	now     func() time.Time
	roster  *roster
	mux     *http.ServeMux

	mu      sync.Mutex
	closing bool
	active  sync.WaitGroup // WebSocket handlers; Add only under mu while !closing

	pingEvery time.Duration
}

// New returns the demo app.
func New(opts Options) (*App, error) {
	a := &App{
		log:       opts.Logger,
		verify:    opts.VerifyAssertion,
		origins:   opts.OriginPatterns,
		now:       opts.Clock,
		roster:    newRoster(),
		pingEvery: 30 * time.Second,
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.verify == nil && opts.AssertionJWKSURL != "" {
		u, err := url.Parse(opts.AssertionJWKSURL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("demoapp: Options.AssertionJWKSURL: %w", err)
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			return nil, fmt.Errorf("demoapp: Options.AssertionJWKSURL %q: must be an absolute http or https URL", opts.AssertionJWKSURL)
		case opts.AssertionIssuer == "":
			return nil, errors.New("demoapp: Options.AssertionIssuer: required with AssertionJWKSURL")
		case opts.AssertionAudience == "":
			return nil, errors.New("demoapp: Options.AssertionAudience: required with AssertionJWKSURL")
		}
		client := opts.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Second}
		}
		v := &jwksVerifier{
			url: opts.AssertionJWKSURL, issuer: opts.AssertionIssuer, audience: opts.AssertionAudience,
			client: client, now: a.now,
		}
		a.verify = v.verify
	}
	for i, p := range opts.OriginPatterns {
		if p == "" || p == "*" {
			return nil, fmt.Errorf("demoapp: Options.OriginPatterns[%d] %q: must name a host", i, p)
		}
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /{$}", a.handleIndex)
	a.mux.HandleFunc("GET /room/{name}", a.handleRoom)
	a.mux.HandleFunc("GET /room/{name}/ws", a.handleSocket)
	return a, nil
}

// ServeHTTP serves the app's routes.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store") // pages show who is signed in
	a.mux.ServeHTTP(w, r)
}

// Close tells every connected client that the app is going away and waits
// until their WebSocket handlers have returned; new WebSockets are refused.
// Call it when shutting down: http.Server.Shutdown neither closes nor waits
// for hijacked connections.
func (a *App) Close() error {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range a.roster.all() {
		wg.Go(m.bye)
	}
	wg.Wait()
	a.active.Wait()
	return nil
}

// enter registers a WebSocket handler; false once Close has begun.
func (a *App) enter() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return false
	}
	a.active.Add(1)
	return true
}

func (a *App) isClosing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closing
}

func (a *App) handleIndex(w http.ResponseWriter, r *http.Request) {
	render(w, r, http.StatusOK, "demo.index", web.T("demo.index_title"), nil)
}

func (a *App) handleRoom(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("name")
	if !validRoom(room) {
		render(w, r, http.StatusNotFound, "message", web.T("demo.no_room"), web.Message{Text: web.T("demo.no_room_text")})
		return
	}
	id, err := a.identify(r.Context(), r.Header, room)
	if err != nil {
		a.log.Info("demoapp: request refused", zap.String("room", room), zap.Error(err))
		render(w, r, statusFor(err), "message", web.T("demo.not_admitted"), web.Message{Text: web.Literal(err.Error())})
		return
	}
	page := roomPage{Room: room, Me: id}
	if id.Role == "host" {
		page.Console = web.ConsolePath(room)
	}
	render(w, r, http.StatusOK, "demo.room", web.Literal(room), page)
}

// validRoom keeps room names to what reads well in a URL and a page.
func validRoom(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}
