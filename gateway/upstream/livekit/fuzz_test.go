package livekit_test

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/upstream/livekit"
)

// FuzzWebhook: whatever arrives, the receiver never panics and never
// reports an event unless an independent check agrees that the token is
// the API secret's and covers exactly this body.
func FuzzWebhook(f *testing.F) {
	good := signHook(f, jose.HS256, []byte(testSecret), hookClaims(joinedBody))
	f.Add(good, []byte(joinedBody))
	f.Add("Bearer "+good, []byte(joinedBody))
	f.Add(good, []byte(strings.Replace(joinedBody, "standup", "board", 1)))
	f.Add("", []byte("{}"))
	f.Add("a.b.c", []byte(`{"event":"participant_left","id":"x","room":{"name":"r"},"participant":{"identity":"i"},"createdAt":1}`))
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		var reported []livekit.Event
		log := &eventLog{}
		a := offlineAdapter(t, func(o *livekit.Options) { o.OnEvent = log.on })
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
		if strings.ContainsAny(auth, "\r\n\x00") {
			return // not a header value a client can send
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		a.Webhook().ServeHTTP(rec, req)
		reported = log.events
		if len(reported) == 0 {
			return
		}
		tok, err := jwt.ParseSigned(strings.TrimPrefix(strings.TrimSpace(auth), "Bearer "), []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			t.Fatalf("reported an event under an unparseable token: %v", err)
		}
		var c struct {
			Sha256 string `json:"sha256"`
		}
		if err := tok.Claims([]byte(testSecret), &c); err != nil {
			t.Fatalf("reported an event under a token the secret did not sign: %v", err)
		}
		sum := sha256.Sum256(body)
		if subtle.ConstantTimeCompare([]byte(c.Sha256), []byte(base64.StdEncoding.EncodeToString(sum[:]))) != 1 {
			t.Fatal("reported an event whose body the token does not cover")
		}
	})
}

// FuzzForward: for any request path and query, Forward either refuses or
// sends exactly a signalling endpoint of the admitted room, without any
// client access_token, with a token for that room.
func FuzzForward(f *testing.F) {
	for _, s := range []string{
		"/lk/room/standup/rtc?protocol=16",
		"/lk/room/standup/rtc/validate?access_token=x",
		"/lk/room/standup/../board/rtc",
		"/lk/room/standup/rtc?access_token=a&access_token=b;access_token=c",
		"/lk/room/standup%2F..%2Fboard/rtc",
		"/lk/room/board/rtc",
		"/lk/room/standup/twirp/x",
	} {
		u, _ := url.Parse(s)
		f.Add(u.Path, u.RawQuery)
	}
	a := offlineAdapter(f, nil)
	p := person("alice", "standup", "participant")
	allowed := map[string]bool{"/rtc": true, "/rtc/v1": true, "/rtc/validate": true, "/rtc/v1/validate": true}
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		in := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
		in.URL.Path, in.URL.RawQuery = path, rawQuery
		out := in.Clone(in.Context())
		out.URL = &url.URL{Scheme: "http", Host: "livekit.internal:7880", Path: path, RawQuery: rawQuery}
		if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, &p); err != nil {
			return
		}
		if !allowed[out.URL.Path] {
			t.Fatalf("forwarded %q from %q", out.URL.Path, path)
		}
		if !strings.HasPrefix(path, "/lk/room/standup/") {
			t.Fatalf("forwarded from outside the room: %q", path)
		}
		q, err := url.ParseQuery(out.URL.RawQuery)
		if err != nil || q.Has("access_token") {
			t.Fatalf("forwarded query %q", out.URL.RawQuery)
		}
		claims, _ := verifyIndependently(t, strings.TrimPrefix(out.Header.Get("Authorization"), "Bearer "), testSecret)
		if claims["video"].(map[string]any)["room"] != "standup" {
			t.Fatalf("token for %v", claims["video"])
		}
	})
}
