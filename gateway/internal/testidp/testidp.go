// Package testidp runs an independent, OpenID-certified provider (zitadel's
// op package with its example storage and login UI) on 127.0.0.1 for tests,
// and can forge tokens with the provider's real signing key so that claim
// checks are tested with valid signatures.
package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"

	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
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

	key *rsa.PrivateKey
	kid string
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
	p := &IdP{ClientID: "meetguard-test", ClientSecret: "test-client-secret", Password: "verysecure", key: key, kid: "test-key-1"}
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
	st := &keyedStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(p.URL), clients), key: key, kid: p.kid}
	h = exampleop.SetupServer(p.URL, st, nil, false)
	return p
}

// keyedStorage is the example storage with a signing key the test holds.
type keyedStorage struct {
	*storage.Storage
	key *rsa.PrivateKey
	kid string
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
