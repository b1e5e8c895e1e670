package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/session"
)

const loginCookie = "meetguard-login"

// editLoginCookie opens the browser's sealed login cookie with the
// session secret, changes the login in it and seals it again.
func (e *env) editLoginCookie(c *http.Client, mut func(*session.Login)) {
	e.t.Helper()
	codec, err := session.NewCodec([]byte(strings.Repeat("s", 32)))
	if err != nil {
		e.t.Fatal(err)
	}
	u, _ := url.Parse(e.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name != loginCookie {
			continue
		}
		b, err := codec.Open(loginCookie, ck.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		var l session.Login
		if err := json.Unmarshal(b, &l); err != nil {
			e.t.Fatal(err)
		}
		mut(&l)
		b, _ = json.Marshal(l)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: loginCookie, Value: codec.Seal(loginCookie, b), Path: "/"}})
		return
	}
	e.t.Fatal("no login cookie")
}

// TestLogin_AnonymousFloodDoesNotLockOutRealSignIns: 200,000 anonymous
// login starts keep nothing on the server, so real sign-ins work during
// and after them.
func TestLogin_AnonymousFloodDoesNotLockOutRealSignIns(t *testing.T) {
	starts := 200_000
	if raceEnabled {
		// The race detector makes each start ~10x dearer; the property
		// (nothing kept per start) does not depend on the count.
		starts = 20_000
	}
	e := newEnv(t, envOptions{})
	signIn := func(who string) {
		c, resp := e.login("/app/" + who)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || body != "upstream:/app/"+who {
			t.Errorf("real sign-in %s: %d %q", who, resp.StatusCode, body)
		}
		_ = c
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var wg sync.WaitGroup
	var firstState string
	var mu sync.Mutex
	flood := func(n int) {
		defer wg.Done()
		for i := range n {
			// The real handler, without the TCP round trip, so the flood
			// is fast enough to overlap the sign-ins below.
			req := httptest.NewRequest(http.MethodGet, e.URL+auth.LoginURL(fmt.Sprintf("/app/%d", i)), nil)
			rec := httptest.NewRecorder()
			e.authn.Login(rec, req)
			if rec.Code != http.StatusFound {
				t.Errorf("anonymous start %d: %d", i, rec.Code)
				return
			}
			if i == 0 {
				loc, _ := url.Parse(rec.Header().Get("Location"))
				mu.Lock()
				firstState = loc.Query().Get("state")
				mu.Unlock()
			}
		}
	}
	wg.Add(2)
	go flood(starts / 2)
	go flood(starts / 2)
	for i := range 3 {
		signIn(fmt.Sprintf("during-%d", i))
	}
	wg.Wait()
	signIn("after")

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d anonymous starts: heap in use before %d KiB, after %d KiB", starts, before.HeapInuse>>10, after.HeapInuse>>10)
	// Nothing of the flood is on the server: not in the store...
	if _, err := e.store.TakeLogin(context.Background(), firstState); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("an anonymous start left login state in the store (err %v)", err)
	}
}

// TestCallback_StateIsSingleUseAndBoundToItsCookie: the sealed login
// cookie cannot be edited without the key, replayed after its callback,
// or used after it expired.
func TestCallback_StateIsSingleUseAndBoundToItsCookie(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("cookie edited without the key", func(t *testing.T) {
		c := browsertest.NoFollow(browsertest.Client(t))
		resp := get(t, c, e.URL+auth.LoginURL("/app"), nil)
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		u, _ := url.Parse(e.URL)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == loginCookie {
				v := []byte(ck.Value)
				v[len(v)/2] ^= 1
				c.Jar.SetCookies(u, []*http.Cookie{{Name: loginCookie, Value: string(v), Path: "/"}})
			}
		}
		resp = get(t, c, e.URL+auth.CallbackPath+"?code=abc&state="+url.QueryEscape(loc.Query().Get("state")), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("expired login", func(t *testing.T) {
		c := browsertest.Client(t)
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), e.idp.URL) && req.URL.Path == "/auth" {
				e.editLoginCookie(c, func(l *session.Login) { l.Expires = l.Expires.Add(-11 * 60 * 1e9) })
			}
			return nil
		}
		resp := e.idp.BrowserLogin(t, c, e.URL+auth.LoginURL("/app"))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
}
