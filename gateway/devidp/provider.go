package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// Defaults for the Options durations.
const (
	DefaultTokenTTL   = 10 * time.Minute
	DefaultRefreshTTL = 12 * time.Hour

	codeTTL        = time.Minute      // authorization codes are short-lived and single-use
	loginTTL       = 10 * time.Minute // how long a login page stays usable
	maxPending     = 10_000           // pending logins are created unauthenticated, so they are capped
	browserCookie  = "devidp_browser"
	signingAlg     = jose.ES256
	accessTokenTyp = "at+jwt" // RFC 9068: keeps access and ID tokens from being swapped
	idTokenTyp     = "JWT"
)

// Client is a registered relying party.
type Client struct {
	ID string
	// Secret authenticates the client at the token endpoint with
	// client_secret_basic or client_secret_post. Empty makes it a public
	// client (token_endpoint_auth_method "none"); PKCE still binds its codes.
	Secret string
	// RedirectURIs are compared exactly, byte for byte, with redirect_uri.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the only places /logout redirects to for
	// this client; compared exactly.
	PostLogoutRedirectURIs []string
	// Name is shown on the login page; defaults to ID.
	Name string
}

// Options configure a Provider.
type Options struct {
	// Issuer is the provider's absolute URL, e.g.
	// "http://127.0.0.1:8080/.dev-idp". Its path is the prefix every endpoint
	// is served under, so the Provider can be mounted inside another server's
	// mux at that path without stripping it.
	Issuer     string
	Clients    []Client
	Users      []User        // DefaultUsers() when empty
	TokenTTL   time.Duration // access and ID tokens; DefaultTokenTTL when zero
	RefreshTTL time.Duration // refresh tokens; DefaultRefreshTTL when zero
	Logger     *zap.Logger
	Clock      func() time.Time // time.Now when nil
}

// Provider is a development OpenID Connect provider. It is an http.Handler
// serving these routes under the issuer's path P:
//
//	GET  P/.well-known/openid-configuration
//	GET  P/jwks
//	GET  P/authorize      login page (a button per demo user)
//	POST P/login          the login page's form
//	POST P/token          authorization_code and refresh_token grants
//	GET  P/userinfo       (and POST) with a Bearer access token
//	GET  P/logout         end_session_endpoint (and POST)
//	POST P/dev/token      non-interactive tokens for scripts, dev only
type Provider struct {
	issuer     string // exactly as configured: it is what "iss" and discovery say
	base       string // issuer without a trailing slash, for endpoint URLs
	prefix     string // issuer path without a trailing slash
	secure     bool   // issuer is https, so cookies get Secure
	clients    map[string]Client
	clientList []Client // registration order; the first is /dev/token's default
	users      []User
	tokenTTL   time.Duration
	refreshTTL time.Duration
	log        *zap.Logger
	now        func() time.Time

	key       *ecdsa.PrivateKey
	kid       string
	idSigner  jose.Signer
	atSigner  jose.Signer
	jwks      []byte
	discovery []byte
	csrf      *http.CrossOriginProtection
	mux       *http.ServeMux

	mu        sync.Mutex
	pending   map[string]*authRequest // by login request id
	codes     map[string]*codeGrant   // by sha256 of the code
	refreshes map[string]*refreshGrant
	nextSweep time.Time
}

// New validates opts, generates a fresh signing key and returns a Provider.
func New(opts Options) (*Provider, error) {
	iss, err := url.Parse(opts.Issuer)
	switch {
	case opts.Issuer == "":
		return nil, fmt.Errorf("devidp: Options.Issuer: required")
	case err != nil:
		return nil, fmt.Errorf("devidp: Options.Issuer: %w", err)
	case iss.Scheme != "http" && iss.Scheme != "https", iss.Host == "":
		return nil, fmt.Errorf("devidp: Options.Issuer %q: must be an absolute http or https URL", opts.Issuer)
	case iss.RawQuery != "" || iss.Fragment != "" || iss.User != nil:
		return nil, fmt.Errorf("devidp: Options.Issuer %q: must not have a query, fragment or user info", opts.Issuer)
	case !safePrefix(iss.EscapedPath()):
		return nil, fmt.Errorf("devidp: Options.Issuer %q: path may only hold letters, digits and -._~/", opts.Issuer)
	}
	p := &Provider{
		issuer:     opts.Issuer,
		base:       strings.TrimSuffix(opts.Issuer, "/"),
		prefix:     strings.TrimSuffix(iss.Path, "/"),
		secure:     iss.Scheme == "https",
		clients:    make(map[string]Client, len(opts.Clients)),
		tokenTTL:   opts.TokenTTL,
		refreshTTL: opts.RefreshTTL,
		log:        opts.Logger,
		now:        opts.Clock,
		csrf:       http.NewCrossOriginProtection(),
		pending:    make(map[string]*authRequest),
		codes:      make(map[string]*codeGrant),
		refreshes:  make(map[string]*refreshGrant),
	}
	if p.tokenTTL <= 0 {
		p.tokenTTL = DefaultTokenTTL
	}
	if p.refreshTTL <= 0 {
		p.refreshTTL = DefaultRefreshTTL
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if len(opts.Clients) == 0 {
		return nil, fmt.Errorf("devidp: Options.Clients: at least one client is required")
	}
	for i, c := range opts.Clients {
		if err := validateClient(c); err != nil {
			return nil, fmt.Errorf("devidp: Options.Clients[%d]: %w", i, err)
		}
		if _, dup := p.clients[c.ID]; dup {
			return nil, fmt.Errorf("devidp: Options.Clients[%d].ID %q: duplicate", i, c.ID)
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		p.clients[c.ID] = c
		p.clientList = append(p.clientList, c)
	}
	p.users = opts.Users
	if len(p.users) == 0 {
		p.users = DefaultUsers()
	}
	if err := validateUsers(p.users); err != nil {
		return nil, err
	}
	if err := p.initKeys(); err != nil {
		return nil, err
	}
	if p.discovery, err = json.Marshal(p.discoveryDocument()); err != nil {
		return nil, fmt.Errorf("devidp: discovery document: %w", err)
	}
	p.mux = p.routes()
	return p, nil
}

// Issuer returns the issuer URL exactly as tokens and discovery state it.
func (p *Provider) Issuer() string { return p.issuer }

// Users returns a copy of the demo users, for printing at start-up.
func (p *Provider) Users() []User {
	out := make([]User, len(p.users))
	copy(out, p.users)
	return out
}

// DevTokenURL is the absolute URL of the non-interactive token endpoint.
func (p *Provider) DevTokenURL() string { return p.base + "/dev/token" }

// ServeHTTP serves the provider's endpoints under the issuer path.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything here is per-user or security-relevant; nothing may be cached
	// by a shared cache, and token responses must not be cached at all.
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	p.mux.ServeHTTP(w, r)
}

func (p *Provider) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET "+p.prefix+"/.well-known/openid-configuration", p.handleDiscovery)
	m.HandleFunc("GET "+p.prefix+"/jwks", p.handleJWKS)
	m.HandleFunc("GET "+p.prefix+"/authorize", p.handleAuthorize)
	m.HandleFunc("POST "+p.prefix+"/login", p.handleLogin)
	m.HandleFunc("POST "+p.prefix+"/token", p.handleToken)
	m.HandleFunc("GET "+p.prefix+"/userinfo", p.handleUserinfo)
	m.HandleFunc("POST "+p.prefix+"/userinfo", p.handleUserinfo)
	m.HandleFunc("GET "+p.prefix+"/logout", p.handleLogout)
	m.HandleFunc("POST "+p.prefix+"/logout", p.handleLogout)
	m.HandleFunc("POST "+p.prefix+"/dev/token", p.handleDevToken)
	return m
}

func (p *Provider) initKeys() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devidp: generating signing key: %w", err)
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(signingAlg), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("devidp: key thumbprint: %w", err)
	}
	p.key = key
	p.kid = base64.RawURLEncoding.EncodeToString(thumb)
	pub.KeyID = p.kid
	priv := jose.JSONWebKey{Key: key, KeyID: p.kid, Algorithm: string(signingAlg), Use: "sig"}
	if p.idSigner, err = jose.NewSigner(jose.SigningKey{Algorithm: signingAlg, Key: priv},
		(&jose.SignerOptions{}).WithType(idTokenTyp)); err != nil {
		return fmt.Errorf("devidp: id token signer: %w", err)
	}
	if p.atSigner, err = jose.NewSigner(jose.SigningKey{Algorithm: signingAlg, Key: priv},
		(&jose.SignerOptions{}).WithType(accessTokenTyp)); err != nil {
		return fmt.Errorf("devidp: access token signer: %w", err)
	}
	if p.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}); err != nil {
		return fmt.Errorf("devidp: jwks: %w", err)
	}
	return nil
}

func (p *Provider) discoveryDocument() map[string]any {
	return map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.base + "/authorize",
		"token_endpoint":                        p.base + "/token",
		"jwks_uri":                              p.base + "/jwks",
		"userinfo_endpoint":                     p.base + "/userinfo",
		"end_session_endpoint":                  p.base + "/logout",
		"dev_token_endpoint":                    p.base + "/dev/token",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(signingAlg)},
		"scopes_supported":                      supportedScopes,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp",
			"email", "email_verified", "name", "groups", "acr", "amr"},
		"authorization_response_iss_parameter_supported": true,
	}
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSONBytes(w, http.StatusOK, p.discovery)
}

func (p *Provider) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.jwks)
}

func validateClient(c Client) error {
	if c.ID == "" || !printableASCII(c.ID, 200) {
		return fmt.Errorf("ID %q: must be 1-200 printable ASCII characters", c.ID)
	}
	if len(c.RedirectURIs) == 0 {
		return fmt.Errorf("RedirectURIs: at least one is required")
	}
	for i, u := range c.RedirectURIs {
		if err := validateRedirect(u); err != nil {
			return fmt.Errorf("RedirectURIs[%d] %q: %w", i, u, err)
		}
	}
	for i, u := range c.PostLogoutRedirectURIs {
		if err := validateRedirect(u); err != nil {
			return fmt.Errorf("PostLogoutRedirectURIs[%d] %q: %w", i, u, err)
		}
	}
	return nil
}

func validateRedirect(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("must be an absolute http or https URL")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("must not have a fragment")
	case u.User != nil:
		return fmt.Errorf("must not have user info")
	}
	return nil
}

func validateUsers(users []User) error {
	subs := make(map[string]bool, len(users))
	emails := make(map[string]bool, len(users))
	for i, u := range users {
		switch {
		case u.Subject == "" || !printableASCII(u.Subject, 200):
			return fmt.Errorf("devidp: Options.Users[%d].Subject %q: must be 1-200 printable ASCII characters", i, u.Subject)
		case u.Email == "" || !strings.Contains(u.Email, "@"):
			return fmt.Errorf("devidp: Options.Users[%d].Email %q: must be an email address", i, u.Email)
		case subs[u.Subject]:
			return fmt.Errorf("devidp: Options.Users[%d].Subject %q: duplicate", i, u.Subject)
		case emails[strings.ToLower(u.Email)]:
			return fmt.Errorf("devidp: Options.Users[%d].Email %q: duplicate", i, u.Email)
		}
		subs[u.Subject] = true
		emails[strings.ToLower(u.Email)] = true
	}
	return nil
}

// safePrefix keeps the issuer path usable verbatim in ServeMux patterns.
func safePrefix(path string) bool {
	for _, c := range []byte(path) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
		if !ok {
			return false
		}
	}
	return !strings.Contains(path, "//") && !strings.Contains(path, "/./") && !strings.Contains(path, "/../") &&
		!strings.HasSuffix(path, "/.") && !strings.HasSuffix(path, "/..")
}

func printableASCII(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
