package livekit_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/upstream/livekit"
)

// joinedBody has the shape LiveKit's protojson gives a participant_joined
// webhook (createdAt is an int64, so a string).
const joinedBody = `{"event":"participant_joined","room":{"sid":"RM_x","name":"standup","emptyTimeout":300},` +
	`"participant":{"sid":"PA_y","identity":"mg.AAAAAAAAAAAAAAAA.BBBBBBBB","name":"Ada","state":"ACTIVE","joinedAt":"1772366400"},` +
	`"id":"EV_1","createdAt":"1772366400"}`

func bodySum(body string) string {
	s := sha256.Sum256([]byte(body))
	return base64.StdEncoding.EncodeToString(s[:])
}

func signHook(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hookClaims(body string) map[string]any {
	return map[string]any{"iss": testKey, "nbf": fixedNow.Add(-time.Second).Unix(), "exp": fixedNow.Add(5 * time.Minute).Unix(), "sha256": bodySum(body)}
}

type eventLog struct {
	mu     sync.Mutex
	events []livekit.Event
	fail   error
}

func (l *eventLog) on(_ context.Context, e livekit.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func post(h http.Handler, method, auth, body string) int {
	req := httptest.NewRequest(method, "/hook", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestWebhook_VerifiedEventIsReportedOnce(t *testing.T) {
	log := &eventLog{}
	a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
	auth := signHook(t, jose.HS256, []byte(testSecret), hookClaims(joinedBody))
	for i, prefix := range []string{"", "Bearer "} {
		if code := post(a.Webhook(), http.MethodPost, prefix+auth, joinedBody); code != http.StatusOK {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	if log.count() != 1 {
		t.Fatalf("reported %d times, want once", log.count())
	}
	e := log.events[0]
	want := livekit.Event{ID: "EV_1", Kind: livekit.ParticipantJoined, Upstream: "lk", Room: "standup",
		Identity: "mg.AAAAAAAAAAAAAAAA.BBBBBBBB", Person: "AAAAAAAAAAAAAAAA", ParticipantSID: "PA_y", Name: "Ada",
		At: time.Unix(1772366400, 0).UTC()}
	if e != want {
		t.Fatalf("event %+v, want %+v", e, want)
	}
}

func TestWebhook_HostileDeliveriesAreRefused(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(map[string]any)) map[string]any {
		c := hookClaims(joinedBody)
		f(c)
		return c
	}
	hs := func(c map[string]any) string { return signHook(t, jose.HS256, []byte(testSecret), c) }
	cases := []struct {
		name   string
		method string
		auth   string
		body   string
		status int
	}{
		{"get", http.MethodGet, hs(hookClaims(joinedBody)), joinedBody, http.StatusMethodNotAllowed},
		{"no authorization", http.MethodPost, "", joinedBody, http.StatusUnauthorized},
		{"garbage authorization", http.MethodPost, "not-a-jwt", joinedBody, http.StatusUnauthorized},
		{"body changed", http.MethodPost, hs(hookClaims(joinedBody)), strings.Replace(joinedBody, "standup", "board", 1), http.StatusUnauthorized},
		{"no sha256 claim", http.MethodPost, hs(with(func(c map[string]any) { delete(c, "sha256") })), joinedBody, http.StatusUnauthorized},
		{"hex sha256", http.MethodPost, hs(with(func(c map[string]any) {
			s := sha256.Sum256([]byte(joinedBody))
			c["sha256"] = strings.ToLower(base64.StdEncoding.EncodeToString(s[:]))
		})), joinedBody, http.StatusUnauthorized},
		{"other issuer", http.MethodPost, hs(with(func(c map[string]any) { c["iss"] = "other-key" })), joinedBody, http.StatusUnauthorized},
		{"expired", http.MethodPost, hs(with(func(c map[string]any) { c["exp"] = fixedNow.Add(-2 * time.Minute).Unix() })), joinedBody, http.StatusUnauthorized},
		{"not yet valid", http.MethodPost, hs(with(func(c map[string]any) { c["nbf"] = fixedNow.Add(2 * time.Minute).Unix() })), joinedBody, http.StatusUnauthorized},
		{"no exp", http.MethodPost, hs(with(func(c map[string]any) { delete(c, "exp") })), joinedBody, http.StatusUnauthorized},
		{"other secret", http.MethodPost, signHook(t, jose.HS256, []byte(strings.Repeat("k", 40)), hookClaims(joinedBody)), joinedBody, http.StatusUnauthorized},
		{"HS512", http.MethodPost, signHook(t, jose.HS512, []byte(testSecret+testSecret), hookClaims(joinedBody)), joinedBody, http.StatusUnauthorized},
		{"RS256", http.MethodPost, signHook(t, jose.RS256, rsaKey, hookClaims(joinedBody)), joinedBody, http.StatusUnauthorized},
		{"alg none", http.MethodPost, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"APIkey1","sha256":"`+bodySum(joinedBody)+`"}`)) + ".", joinedBody, http.StatusUnauthorized},
		{"signed body not json", http.MethodPost, hs(hookClaims("{")), "{", http.StatusBadRequest},
		{"signed body without id", http.MethodPost, hs(hookClaims(`{"event":"participant_joined"}`)), `{"event":"participant_joined"}`, http.StatusBadRequest},
		{"signed joined without participant", http.MethodPost, hs(hookClaims(`{"event":"participant_joined","id":"EV_2","room":{"name":"r"}}`)),
			`{"event":"participant_joined","id":"EV_2","room":{"name":"r"}}`, http.StatusBadRequest},
		{"signed bad createdAt", http.MethodPost, hs(hookClaims(strings.Replace(joinedBody, `"createdAt":"1772366400"`, `"createdAt":"soon"`, 1))),
			strings.Replace(joinedBody, `"createdAt":"1772366400"`, `"createdAt":"soon"`, 1), http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &eventLog{}
			a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
			if code := post(a.Webhook(), tc.method, tc.auth, tc.body); code != tc.status {
				t.Fatalf("status %d, want %d", code, tc.status)
			}
			if log.count() != 0 {
				t.Fatal("a refused delivery was reported")
			}
		})
	}
}

func TestWebhook_OversizedBodyIsRefused(t *testing.T) {
	a := offlineAdapter(t, nil)
	body := strings.Repeat("x", 1<<20+1)
	if code := post(a.Webhook(), http.MethodPost, signHook(t, jose.HS256, []byte(testSecret), hookClaims(body)), body); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", code)
	}
}

func TestWebhook_OtherEventsAreAcknowledgedNotReported(t *testing.T) {
	log := &eventLog{}
	a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
	body := `{"event":"room_started","room":{"name":"standup"},"id":"EV_9","createdAt":"1772366400"}`
	if code := post(a.Webhook(), http.MethodPost, signHook(t, jose.HS256, []byte(testSecret), hookClaims(body)), body); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if log.count() != 0 {
		t.Fatal("room_started reported")
	}
}

func TestWebhook_FailedHandlingIsRetried(t *testing.T) {
	log := &eventLog{fail: errors.New("store down")}
	a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
	auth := signHook(t, jose.HS256, []byte(testSecret), hookClaims(joinedBody))
	if code := post(a.Webhook(), http.MethodPost, auth, joinedBody); code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 so LiveKit retries", code)
	}
	log.mu.Lock()
	log.fail = nil
	log.mu.Unlock()
	if code := post(a.Webhook(), http.MethodPost, auth, joinedBody); code != http.StatusOK || log.count() != 1 {
		t.Fatalf("retry: status %d, reported %d", code, log.count())
	}
}

func TestWebhook_ForeignIdentityHasNoPerson(t *testing.T) {
	log := &eventLog{}
	a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
	for i, ident := range []string{"alice", "mg.short.x", "mg.AAAAAAAAAAAAAAAA.BBBBBBBB.extra", "xx.AAAAAAAAAAAAAAAA.BBBBBBBB"} {
		body := strings.Replace(strings.Replace(joinedBody, "mg.AAAAAAAAAAAAAAAA.BBBBBBBB", ident, 1), "EV_1", "EV_f"+string(rune('0'+i)), 1)
		if code := post(a.Webhook(), http.MethodPost, signHook(t, jose.HS256, []byte(testSecret), hookClaims(body)), body); code != http.StatusOK {
			t.Fatalf("%s: status %d", ident, code)
		}
	}
	for _, e := range log.events {
		if e.Person != "" {
			t.Fatalf("identity %q read as minted (person %q)", e.Identity, e.Person)
		}
	}
	if len(log.events) != 4 {
		t.Fatalf("reported %d", len(log.events))
	}
}
