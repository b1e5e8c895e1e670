// Package testidp runs an independent, OpenID-certified provider (zitadel's
// op package with its example storage and login UI) on 127.0.0.1 for tests,
// and can forge tokens with the provider's real signing key so that claim
// checks are tested with valid signatures.
package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"

	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

var quietOnce sync.Once

// IdP is a running provider.
type IdP struct {
	URL          string
	ClientID     string
	ClientSecret string
	// Username and Password log in through the provider's own form.
	Username string
	Password string
	Email    string
	Server   *httptest.Server

	key   *rsa.PrivateKey
	kid   string
	extra *extraClaims
	// omitRefreshIDToken makes refresh answers carry no id_token.
	omitRefreshIDToken atomic.Bool
}

// OmitRefreshIDToken makes the provider answer refresh_token grants
// without an id_token from now on, as some providers do (OAuth 2.0 alone
// does not require one).
func (p *IdP) OmitRefreshIDToken(omit bool) { p.omitRefreshIDToken.Store(omit) }

// refreshFilter removes id_token from refresh answers when asked to.
func (p *IdP) refreshFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.omitRefreshIDToken.Load() || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			copyResponse(w, rec)
			return
		}
		delete(body, "id_token")
		b, _ := json.Marshal(body)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
	})
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// extraClaims are claims the provider adds to every ID token (and userinfo
// answer) it issues, as IdPs with extra claims do (Entra ID's oid).
type extraClaims struct {
	mu     sync.Mutex
	claims map[string]any
}

// SetIDTokenClaim makes the provider add claim k = v to every ID token it
// issues from now on, like an IdP configured with an extra claim.
func (p *IdP) SetIDTokenClaim(k string, v any) {
	p.extra.mu.Lock()
	defer p.extra.mu.Unlock()
	p.extra.claims[k] = v
}

// Start runs a provider whose one web client may redirect to redirectURIs.
func Start(t testing.TB, redirectURIs ...string) *IdP {
	t.Helper()
	quietOnce.Do(func() {
		// The example provider logs every request through slog's default
		// logger; tests only want their own output.
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &IdP{ClientID: "meetguard-test", ClientSecret: "test-client-secret", Password: "verysecure", key: key, kid: "test-key-1", extra: &extraClaims{claims: map[string]any{}}}
	// The issuer is only known once listening; the handler is swapped in
	// before any request can arrive.
	var h http.Handler = http.NotFoundHandler()
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(p.Server.Close)
	p.URL = p.Server.URL
	p.Username = "test-user@127.0.0.1"
	p.Email = "test-user@zitadel.ch"
	clients := map[string]*storage.Client{
		p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, redirectURIs...),
	}
	st := &keyedStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(p.URL), clients), key: key, kid: p.kid, extra: p.extra}
	h = p.refreshFilter(exampleop.SetupServer(p.URL, st, nil, false))
	return p
}

// keyedStorage is the example storage with a signing key the test holds.
type keyedStorage struct {
	*storage.Storage
	key   *rsa.PrivateKey
	kid   string
	extra *extraClaims
}

// SetUserinfoFromRequest adds the extra claims to ID tokens.
func (s *keyedStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.extra.mu.Lock()
	defer s.extra.mu.Unlock()
	for k, v := range s.extra.claims {
		ui.AppendClaims(k, v)
	}
	return nil
}

type sigKey struct {
	key *rsa.PrivateKey
	kid string
}

func (k sigKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k sigKey) Key() any                                    { return k.key }
func (k sigKey) ID() string                                  { return k.kid }

type pubKey struct{ sigKey }

func (k pubKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k pubKey) Use() string                        { return "sig" }
func (k pubKey) Key() any                           { return &k.key.PublicKey }

func (s *keyedStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return sigKey{s.key, s.kid}, nil
}

func (s *keyedStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *keyedStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{pubKey{sigKey{s.key, s.kid}}}, nil
}

// PublicKey is the provider's RSA public key (for algorithm-confusion tests).
func (p *IdP) PublicKey() *rsa.PublicKey { return &p.key.PublicKey }

// Sign signs claims with the provider's key and kid (or another kid).
func (p *IdP) Sign(t testing.TB, claims map[string]any, kid string) string {
	t.Helper()
	if kid == "" {
		kid = p.kid
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	return signClaims(t, sig, claims)
}

// SignTyped signs claims with the provider's key and kid, with typ as the
// JWS header's typ (RFC 9068 access tokens carry "at+jwt").
func (p *IdP) SignTyped(t testing.TB, claims map[string]any, typ string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", p.kid))
	if err != nil {
		t.Fatal(err)
	}
	return signClaims(t, sig, claims)
}

// SignWith signs claims with any jose signer (forgeries).
func SignWith(t testing.TB, sig jose.Signer, claims map[string]any) string {
	t.Helper()
	return signClaims(t, sig, claims)
}

func signClaims(t testing.TB, sig jose.Signer, claims map[string]any) string {
	t.Helper()
	b, err := jsonMarshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := sig.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns a valid claim set for the test user and audience.
func (p *IdP) Claims(aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": p.URL, "sub": "id1", "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"email": p.Email, "email_verified": true, "name": "Test User",
	}
}

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// BrowserLogin follows a browser's path from start (a gateway URL) through
// the provider's login form and back, with the client's cookie jar, and
// returns the final response (redirects followed).
func (p *IdP) BrowserLogin(t testing.TB, client *http.Client, start string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, start, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("start login: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), p.URL+"/login/username") {
		t.Fatalf("expected the provider's login form, got %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	m := formID.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no auth request id in login form: %s", body)
	}
	form := url.Values{"id": {string(m[1])}, "username": {p.Username}, "password": {p.Password}}
	resp, err = client.PostForm(p.URL+"/login/username", form)
	if err != nil {
		t.Fatalf("submit login: %v", err)
	}
	return resp
}

func jsonMarshal(v any) ([]byte, error) {
	return jsonEncode(v)
}
