package devidp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func benchProvider(b *testing.B) *Provider {
	b.Helper()
	p, err := New(Options{
		Issuer:  "http://127.0.0.1:8080/.dev-idp",
		Clients: []Client{{ID: "gateway", Secret: testSecret, RedirectURIs: []string{testCallback}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkMint signs one access token and one ID token.
func BenchmarkMint(b *testing.B) {
	p := benchProvider(b)
	u := p.users[0]
	g := grant{clientID: "gateway", sub: u.Subject, scopes: []string{"openid"}, authTime: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.mint(g, u, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDevTokenEndpoint is a whole POST /dev/token without the network.
func BenchmarkDevTokenEndpoint(b *testing.B) {
	p := benchProvider(b)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/.dev-idp/dev/token",
			strings.NewReader("user=alice%40example.com&audience=meetguard-api"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkUserinfo verifies an access token and answers userinfo.
func BenchmarkUserinfo(b *testing.B) {
	p := benchProvider(b)
	set, err := p.mint(grant{clientID: "gateway", sub: "alice", authTime: time.Now()}, p.users[0], time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/.dev-idp/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+set.AccessToken)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
