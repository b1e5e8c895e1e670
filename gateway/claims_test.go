package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/config"
)

// idTokenClaims decodes a JWT's payload (the gateway verified it already).
func idTokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSession_RefreshRederivesClaimsLikeLogin: the real provider puts the
// email only behind userinfo (its ID tokens carry none once an access token
// is issued). At login the gateway asks userinfo; a refresh must derive the
// identity the same way, or staff silently become guests.
func TestSession_RefreshRederivesClaimsLikeLogin(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, envOptions{clock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	c, resp := e.login("/app")
	resp.Body.Close()
	sess := onlySession(t, e)
	if _, ok := idTokenClaims(t, sess.IDToken)["email"]; ok || sess.Identity.Email != e.idp.Email {
		t.Fatalf("premise: the ID token must carry no email and userinfo must give it; session identity %+v", sess.Identity)
	}
	skew.Store(int64(time.Until(sess.TokenExpiry) - 30*time.Second))
	resp = get(t, c, e.URL+"/app", map[string]string{"Accept": "application/json"})
	resp.Body.Close()
	renewed := onlySession(t, e)
	if resp.StatusCode != http.StatusOK || renewed.IDToken == sess.IDToken {
		t.Fatalf("refresh did not happen: %d", resp.StatusCode)
	}
	if renewed.Identity.Email != e.idp.Email || !renewed.Identity.EmailVerified {
		t.Errorf("after refresh the identity lost userinfo's email: %+v", renewed.Identity)
	}
}

// TestSession_StaleClaimsSignInAgain: claims older than
// session.max_claim_age are renewed by a refresh; when the provider's
// refresh answer carries no ID token, the old claims are not kept for the
// rest of session.ttl: the session ends and is audited.
func TestSession_StaleClaimsSignInAgain(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, envOptions{
		clock:  func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
		mutate: func(c *config.Config) { c.Session.MaxClaimAge = 10 * time.Minute },
	})
	c, resp := e.login("/app")
	resp.Body.Close()
	first := onlySession(t, e)
	app := func() int {
		resp := get(t, c, e.URL+"/app", map[string]string{"Accept": "application/json"})
		resp.Body.Close()
		return resp.StatusCode
	}
	skew.Store(int64(11 * time.Minute))
	if s := app(); s != http.StatusOK {
		t.Fatalf("refresh with a new ID token: %d", s)
	}
	second := onlySession(t, e)
	if !second.ClaimsAt.After(first.ClaimsAt) || second.IDToken == first.IDToken {
		t.Fatalf("claims not renewed: %v then %v", first.ClaimsAt, second.ClaimsAt)
	}
	e.idp.OmitRefreshIDToken(true)
	skew.Store(int64(22 * time.Minute))
	if s := app(); s != http.StatusUnauthorized {
		t.Fatalf("stale claims and a refresh without ID token: %d, want 401", s)
	}
	if len(e.store.SessionIDs()) != 0 {
		t.Error("session still exists")
	}
	if !e.audit.Has("session.revoked") {
		t.Error("no session.revoked audit record")
	}
}

// TestGroupsOverage_FailsClosedAndAudited: a token whose groups did not fit
// (Entra ID's _claim_names) is not read as "no groups": the bearer token is
// refused and audited, the browser login fails with a page saying why.
func TestGroupsOverage_FailsClosedAndAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	overage := map[string]any{"groups": "src1"}
	cl := e.idp.Claims(e.idp.ClientID)
	cl["_claim_names"] = overage
	cl["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.windows.net/tenant/users/id1/getMemberObjects"}}
	resp := get(t, http.DefaultClient, e.URL+"/app", map[string]string{"Authorization": "Bearer " + e.idp.Sign(t, cl, ""), "Accept": "application/json"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bearer with groups overage: %d, want 401", resp.StatusCode)
	}
	if !e.audit.Has("login.failure") {
		t.Error("bearer overage not audited")
	}
	cl["groups"] = []string{"meeting-hosts"} // groups present: no overage
	resp = get(t, http.DefaultClient, e.URL+"/app", map[string]string{"Authorization": "Bearer " + e.idp.Sign(t, cl, ""), "Accept": "application/json"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bearer with groups and _claim_names for something else: %d", resp.StatusCode)
	}

	e.idp.SetIDTokenClaim("_claim_names", overage)
	e.idp.SetIDTokenClaim("_claim_sources", cl["_claim_sources"])
	_, resp = e.login("/app")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "more groups") {
		t.Errorf("browser login with groups overage: %d %q", resp.StatusCode, body)
	}
	if len(e.store.SessionIDs()) != 0 {
		t.Error("a session was created")
	}
	if n := e.audit.Count("login.failure"); n != 2 {
		t.Errorf("%d login.failure records, want 2 (bearer and browser)", n)
	}
}
