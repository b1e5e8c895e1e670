package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/session"
)

// TestVerifyBearer_ForgetsExpiredTokens: the cache of verified bearer
// tokens let go of a token only when it reached 100,000 entries, so every
// token an app ever sent stayed in memory for hours (the soak in
// docs/performance.md saw the heap climb each time its 1,000 users got new
// tokens). Now a token that expired leaves the cache once the cache has
// doubled since it was last swept; tokens still valid stay.
func TestVerifyBearer_ForgetsExpiredTokens(t *testing.T) {
	ctx, a, batch, cached, advance := verifiedCacheHarness(t)
	old := batch("old", 300)
	advance(6 * time.Minute) // every old token has expired
	fresh := batch("fresh", 400)
	for i, tok := range old {
		if cached(tok) {
			t.Fatalf("expired token %d of %d is still cached (%d cached, %d valid)", i, len(old), len(a.verified), len(fresh))
		}
	}
	for i, tok := range fresh {
		if !cached(tok) {
			t.Fatalf("valid token %d was dropped from the cache", i)
		}
	}
	// An expired token is refused, cached or not.
	if _, err := a.VerifyBearer(ctx, old[0]); err == nil {
		t.Fatal("expired token accepted")
	}
}

// TestVerifyBearer_SweepsBeforeItStartsOver: when a sweep left more than
// half the cache's bound in valid tokens, the next sweep was set beyond
// the bound, so the cache was never swept again: it grew to the bound and
// then dropped every token, valid ones included (each costing a fresh RSA
// verification). Now the cache is swept before it is ever cleared.
func TestVerifyBearer_SweepsBeforeItStartsOver(t *testing.T) {
	ctx, a, batch, cached, advance := verifiedCacheHarness(t)
	a.verifiedMax = 600
	batch("first", 550) // swept at 256 and 512 with nothing expired
	advance(6 * time.Minute)
	fresh := batch("fresh", 100) // the cache reaches its bound at the 50th
	for i, tok := range fresh {
		if !cached(tok) {
			t.Fatalf("valid token %d of %d dropped: the cache started over instead of sweeping %d expired tokens", i, len(fresh), 550)
		}
	}
	if _, err := a.VerifyBearer(ctx, fresh[0]); err != nil {
		t.Fatal(err)
	}
}

// verifiedCacheHarness is an Authenticator on a real test provider with a
// clock the test moves. batch signs n tokens valid for five minutes from
// the clock's now, each for its own subject, and verifies each; cached
// says whether a token is in the cache.
func verifiedCacheHarness(t *testing.T) (ctx context.Context, a *Authenticator, batch func(name string, n int) []string, cached func(tok string) bool, advance func(time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idp := testidp.Start(t, "http://127.0.0.1/.meetguard/callback")
	codec, err := session.NewCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	public, _ := url.Parse("http://127.0.0.1")
	a, err = New(ctx, Options{
		Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, Audiences: []string{idp.ClientID},
		PublicURL: public, HTTPClient: &http.Client{Timeout: 5 * time.Second}, KeyRefetchInterval: time.Hour,
		Store: session.NewMemory(ctx, session.MemoryOptions{}), Codec: codec, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); a.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("provider not ready: %v", a.Ready())
		}
	}
	// batch signs n tokens valid for five minutes from the clock's now,
	// each for its own subject, and verifies each.
	batch = func(name string, n int) []string {
		at := clock()
		toks := make([]string, n)
		for i := range toks {
			c := idp.Claims(idp.ClientID)
			c["sub"], c["iat"], c["exp"] = fmt.Sprintf("%s-%d", name, i), at.Unix(), at.Add(5*time.Minute).Unix()
			toks[i] = idp.Sign(t, c, "")
			if _, err := a.VerifyBearer(ctx, toks[i]); err != nil {
				t.Fatalf("%s %d: %v", name, i, err)
			}
		}
		return toks
	}
	cached = func(tok string) bool {
		a.verifiedMu.Lock()
		defer a.verifiedMu.Unlock()
		_, ok := a.verified[sha256.Sum256([]byte(tok))]
		return ok
	}
	advance = func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	return ctx, a, batch, cached, advance
}
