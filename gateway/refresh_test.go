package gateway_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/session"
)

// TestSession_RefreshRenewsAndFailedRefreshEnds drives the real provider's
// refresh_token grant: close to token expiry the gateway renews the
// session; when the provider refuses the refresh token (here: an old,
// already rotated one), the session ends at once.
func TestSession_RefreshRenewsAndFailedRefreshEnds(t *testing.T) {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := newEnv(t, envOptions{clock: clock})
	c, resp := e.login("/app")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	sess := onlySession(t, e)
	if sess.RefreshToken == "" {
		t.Fatal("provider issued no refresh token; cannot test refresh")
	}
	// Move to 30 s before the tokens expire: inside the refresh window.
	skew.Store(int64(time.Until(sess.TokenExpiry) - 30*time.Second))
	resp = get(t, c, e.URL+"/app", map[string]string{"Accept": "application/json"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("request needing a refresh: %d", resp.StatusCode)
	}
	renewed := onlySession(t, e)
	if renewed.RefreshToken == sess.RefreshToken || !renewed.TokenExpiry.After(sess.TokenExpiry) {
		t.Fatalf("session not renewed: old expiry %v new %v", sess.TokenExpiry, renewed.TokenExpiry)
	}
	// Put the old (rotated-away) refresh token back and force a refresh.
	stale := renewed
	stale.RefreshToken = sess.RefreshToken
	stale.TokenExpiry = time.Now()
	if err := e.store.PutSession(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	skew.Store(0)
	resp = get(t, c, e.URL+"/app", map[string]string{"Accept": "application/json"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after a refused refresh: %d, want 401", resp.StatusCode)
	}
	if _, err := e.store.GetSession(context.Background(), stale.ID); err == nil {
		t.Fatal("session still exists after a failed refresh")
	}
	if !e.audit.Has("session.revoked") {
		t.Error("no session.revoked audit record")
	}
}

func onlySession(t *testing.T, e *env) session.Session {
	t.Helper()
	ids := e.store.SessionIDs()
	if len(ids) != 1 {
		t.Fatalf("%d sessions, want 1", len(ids))
	}
	s, err := e.store.GetSession(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return s
}
