package roomsapi_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"

	"github.com/meetguard/meetguard/gateway/config"
)

// appToken is a bearer token the real provider's key signed, with the
// test user's claims changed by edit.
func (c *cluster) appToken(edit func(map[string]any)) string {
	cl := c.idp.Claims(c.idp.ClientID)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	cl["jti"] = hex.EncodeToString(b)
	edit(cl)
	return c.idp.Sign(c.t, cl, "")
}

// TestIdentity_SubjectClaimMakesBrowserAndAppOnePerson: the provider gives
// the browser login's ID token one sub and the app's access token another
// (as Entra ID's per-application sub does); both carry the same oid. With
// oidc.subject_claim: oid, a ban recorded against the browser identity
// keeps the same person's app out, and a token without the claim is
// refused.
func TestIdentity_SubjectClaimMakesBrowserAndAppOnePerson(t *testing.T) {
	c := newCluster(t, clusterOptions{configure: func(cfg *config.Config) { cfg.OIDC.SubjectClaim = "oid" }})
	n := c.nodes[0]
	const oid = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
	c.idp.SetIDTokenClaim("oid", oid)
	// The host's app token carries its own oid too.
	hostApp := func() string {
		return c.appToken(func(cl map[string]any) {
			cl["sub"], cl["oid"], cl["email"], cl["groups"] = "hanna-app", "oid-hanna", "hanna@example.com", []string{"meeting-hosts"}
		})
	}
	if r := call(t, nil, http.MethodPut, n.apiURL("townhall"), hostApp(), map[string]any{}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	b := c.login(n)
	page := call(t, b, http.MethodGet, n.URL+"/room/townhall", "", nil, "Accept", "text/html")
	m := dataWait.FindSubmatch(page.Body)
	if page.Status != http.StatusAccepted || m == nil {
		t.Fatalf("browser knock: %d %s", page.Status, page.Body)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("townhall/lobby/"+string(m[1])+"/deny"), hostApp(), map[string]any{"ban": true}); r.Status != http.StatusOK {
		t.Fatalf("deny with ban: %d %s", r.Status, r.Body)
	}
	room := call(t, nil, http.MethodGet, n.apiURL("townhall"), hostApp(), nil)
	if want := c.idp.URL + "|" + oid; !containsBan(t, room, want) {
		t.Fatalf("ban not keyed on the oid %q: %s", want, room.Body)
	}
	app := c.appToken(func(cl map[string]any) { cl["sub"], cl["oid"] = "app-specific-sub-for-the-same-person", oid })
	if r := c.join(n, app, "townhall", nil); r.Status != http.StatusForbidden {
		t.Fatalf("the banned person's app: %d %s", r.Status, r.Body)
	}
	noOID := c.appToken(func(cl map[string]any) { cl["sub"] = "someone" })
	if r := c.join(n, noOID, "townhall", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("token without the subject claim: %d %s", r.Status, r.Body)
	}
	other := c.appToken(func(cl map[string]any) { cl["sub"], cl["oid"] = "app-specific-sub-for-the-same-person", "another-oid" })
	if r := c.join(n, other, "townhall", nil); r.Status != http.StatusAccepted {
		t.Errorf("someone else with the same app sub: %d %s", r.Status, r.Body)
	}
}

func containsBan(t *testing.T, room reply, subject string) bool {
	t.Helper()
	bans, _ := room.json(t)["bans"].([]any)
	for _, b := range bans {
		if m, _ := b.(map[string]any); m["subject"] == subject {
			return true
		}
	}
	return false
}

// TestIdentity_BearerClientsAllowlist: with oidc.bearer_clients set, a
// token for the accepted audience from any other client (azp, else
// client_id) is refused, however good its claims; the listed client's
// tokens work.
func TestIdentity_BearerClientsAllowlist(t *testing.T) {
	c := newCluster(t, clusterOptions{configure: func(cfg *config.Config) { cfg.OIDC.BearerClients = []string{"meeting-app"} }})
	n := c.nodes[0]
	hostApp := c.appToken(func(cl map[string]any) {
		cl["sub"], cl["azp"], cl["email"], cl["groups"] = "hanna", "meeting-app", "hanna@example.com", []string{"meeting-hosts"}
	})
	if r := call(t, nil, http.MethodPut, n.apiURL("townhall"), hostApp, map[string]any{"lobby_enabled": false}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	staffClaims := func(cl map[string]any) {
		cl["sub"], cl["email"], cl["groups"] = "sam", "sam@example.com", []string{"meeting-hosts"}
	}
	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		status int
	}{
		{"listed azp", func(cl map[string]any) { cl["azp"] = "meeting-app" }, http.StatusOK},
		{"listed client_id", func(cl map[string]any) { cl["client_id"] = "meeting-app" }, http.StatusOK},
		{"other azp", func(cl map[string]any) { cl["azp"] = "reporting-tool" }, http.StatusUnauthorized},
		{"other azp, listed client_id", func(cl map[string]any) { cl["azp"], cl["client_id"] = "reporting-tool", "meeting-app" }, http.StatusUnauthorized},
		{"other client_id", func(cl map[string]any) { cl["client_id"] = "reporting-tool" }, http.StatusUnauthorized},
		{"listed cid (Okta)", func(cl map[string]any) { cl["cid"] = "meeting-app" }, http.StatusOK},
		{"listed appid (Entra v1)", func(cl map[string]any) { cl["appid"] = "meeting-app" }, http.StatusOK},
		{"empty azp, listed client_id", func(cl map[string]any) { cl["azp"], cl["client_id"] = "", "meeting-app" }, http.StatusUnauthorized},
		{"azp not a string", func(cl map[string]any) { cl["azp"] = []string{"meeting-app"} }, http.StatusUnauthorized},
		{"no client named", func(map[string]any) {}, http.StatusUnauthorized},
	} {
		tok := c.appToken(func(cl map[string]any) { staffClaims(cl); tc.edit(cl) })
		if r := c.join(n, tok, "townhall", nil); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
		}
	}
}

// TestIdentity_EmailVerifiedIsReadOneWay: providers that send
// email_verified as the string "true" make staff through a bearer token
// exactly as through userinfo; anything but true or "true" is unverified.
func TestIdentity_EmailVerifiedIsReadOneWay(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "townhall", nil)
	for i, tc := range []struct {
		verified any
		staff    bool
	}{
		{true, true}, {"true", true}, {false, false}, {"false", false}, {"yes", false}, {1, false}, {nil, false},
	} {
		tok := c.appToken(func(cl map[string]any) {
			cl["sub"], cl["email"], cl["email_verified"] = fmt.Sprintf("sam%d", i), "sam@example.com", tc.verified
		})
		r := c.join(n, tok, "townhall", nil)
		if staff := r.Status == http.StatusOK && r.str(t, "status") == "admitted"; staff != tc.staff {
			t.Errorf("email_verified %#v: %d %s, want staff %v", tc.verified, r.Status, r.Body, tc.staff)
		}
	}
}
