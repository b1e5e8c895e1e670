package e2eeapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
)

type nopAudit struct{}

func (nopAudit) Record(context.Context, string, ...zap.Field) error { return nil }

// bareHandler is the e2ee handler alone, for what the gateway in front of it does not decide.
func bareHandler(t *testing.T) *e2eeapi.Handler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := memstore.New(ctx, memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tickets, err := rooms.NewTickets(rooms.TicketOptions{Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := e2eeapi.New(ctx, e2eeapi.Options{SigningKey: key, Membership: e2eeapi.TicketMembership{Store: st, Tickets: tickets},
		Rooms: st, Audit: nopAudit{}, PublicOrigin: "https://meet.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestServeHTTP_CookieCallsFromOtherSitesRefused: a browser session's cookie rides along on requests other
// sites make; those are refused before membership is even asked. Bearer callers carry their credential on
// purpose and are not judged by their Origin.
func TestServeHTTP_CookieCallsFromOtherSitesRefused(t *testing.T) {
	h := bareHandler(t)
	session := identity.Identity{Issuer: "https://idp.example", Subject: "alice", Via: identity.ViaSession, SessionID: "s1"}
	bearer := session
	bearer.Via = identity.ViaBearer
	cases := []struct {
		name    string
		id      *identity.Identity
		headers map[string]string
		status  int
		code    string
	}{
		{"other origin", &session, map[string]string{"Origin": "https://evil.example"}, 403, "cross_site"},
		{"cross-site fetch", &session, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_site"},
		{"same-site subdomain", &session, map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "cross_site"},
		{"own origin", &session, map[string]string{"Origin": "https://meet.example.com", "Sec-Fetch-Site": "same-origin"}, 403, "not_member"},
		{"no browser headers", &session, nil, 403, "not_member"},
		{"bearer from anywhere", &bearer, map[string]string{"Origin": "https://tool.example"}, 403, "not_member"},
		{"no identity", nil, nil, 401, "unauthenticated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, e2eehttp.APIPath("standup")+"roster?since=0", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if tc.id != nil {
				r = r.WithContext(identity.With(r.Context(), *tc.id))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || errorCode(t, w.Body.Bytes()) != tc.code {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body.Bytes(), tc.status, tc.code)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("answer may be cached")
			}
		})
	}
}

func TestWrap_DispatchesOnlyE2EEPaths(t *testing.T) {
	h := bareHandler(t)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	wrapped := h.Wrap(next)
	for path, want := range map[string]int{
		"/.meetguard/api/v1/rooms/standup/join":             http.StatusTeapot,
		"/.meetguard/api/v1/rooms/standup":                  http.StatusTeapot,
		"/.meetguard/api/v1/rooms/standup/e2eex":            http.StatusTeapot,
		"/.meetguard/api/v1/rooms/standup/e2ee/roster":      http.StatusUnauthorized,
		"/.meetguard/api/v1/rooms/standup/e2ee/nope":        http.StatusNotFound,
		"/.meetguard/api/v1/rooms/standup/e2ee":             http.StatusNotFound,
		"/.meetguard/api/v1/rooms/bad%20room/e2ee/roster":   http.StatusNotFound,
		"/.meetguard/api/v1/rooms/standup/e2ee/roster/deep": http.StatusNotFound,
	} {
		w := httptest.NewRecorder()
		wrapped.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}
