package jitsi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/upstream/jitsi"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	roomPath  = "/meet/{room}"
	appSecret = "jitsi-app-secret-0123456789abcdef0123"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKey is a fixed RSA key (testdata/asap_private.pem) so golden tokens
// stay golden.
func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := jitsi.LoadPrivateKey(filepath.Join("testdata", "asap_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hsAdapter(t testing.TB, mutate func(*jitsi.Options)) *jitsi.Adapter {
	t.Helper()
	o := jitsi.Options{
		Upstream: "meet", URL: "http://jitsi.internal:8000", RoomPath: roomPath,
		AppID: "meetguard", Subject: "meet.example.org", AppSecret: appSecret,
		Clock: func() time.Time { return fixedNow },
	}
	if mutate != nil {
		mutate(&o)
	}
	a, err := jitsi.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func rsAdapter(t testing.TB, mutate func(*jitsi.Options)) *jitsi.Adapter {
	t.Helper()
	return hsAdapter(t, func(o *jitsi.Options) {
		o.AppSecret, o.PrivateKey, o.KeyID = "", testKey(t), "meetguard/asap-2026"
		if mutate != nil {
			mutate(o)
		}
	})
}

func person(sub, room, role string) admission.Participant {
	return admission.Participant{
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: sub, Name: "Ada Lovelace", Email: sub + "@example.org", SessionID: "s-" + sub},
		Upstream: "meet", Room: room, Role: role, ParticipantID: sub + "/" + room,
	}
}

func forward(a admission.Adapter, p *admission.Participant, target string) (*http.Request, error) {
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
	u, err := url.Parse("http://gateway.test" + target)
	if err != nil {
		return nil, err
	}
	in.URL = u
	out := in.Clone(in.Context())
	out.URL = &url.URL{Scheme: "http", Host: "jitsi.internal:8000", Path: u.Path, RawQuery: u.RawQuery}
	err = a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, p)
	return out, err
}

func tokenOf(t testing.TB, a admission.Adapter, p admission.Participant) string {
	t.Helper()
	out, err := forward(a, &p, "/meet/"+p.Room+"/xmpp-websocket?room="+p.Room)
	if err != nil {
		t.Fatal(err)
	}
	tok := out.URL.Query().Get("token")
	if tok == "" {
		t.Fatal("no token on the XMPP connection")
	}
	return tok
}

// verifyStdlib checks a compact JWS with the standard library only, apart
// from the code under test and go-jose, and returns header and payload.
func verifyStdlib(t testing.TB, tok string, key any) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	signed := []byte(parts[0] + "." + parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write(signed)
		if !hmac.Equal(m.Sum(nil), sig) {
			t.Fatal("HS256 signature does not verify")
		}
	case *rsa.PublicKey:
		sum := sha256.Sum256(signed)
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig); err != nil {
			t.Fatalf("RS256 signature does not verify: %v", err)
		}
	}
	var hdr, claims map[string]any
	for i, v := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

func TestToken_GoldenClaimsVerifyIndependently(t *testing.T) {
	rsKey := testKey(t)
	cases := []struct {
		name   string
		a      *jitsi.Adapter
		role   string
		verify any
		alg    jose.SignatureAlgorithm
	}{
		{"hs256_host", hsAdapter(t, nil), "host", []byte(appSecret), jose.HS256},
		{"hs256_participant", hsAdapter(t, nil), "participant", []byte(appSecret), jose.HS256},
		{"rs256_participant", rsAdapter(t, nil), "participant", &rsKey.PublicKey, jose.RS256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tokenOf(t, tc.a, person("alice", "standup", tc.role))
			hdr, claims := verifyStdlib(t, tok, tc.verify)
			// And with go-jose, as the brief's independent JWT library.
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			var jc jitsi.Claims
			var goKey any = tc.verify
			if err := parsed.Claims(goKey, &jc); err != nil {
				t.Fatalf("go-jose verify: %v", err)
			}
			if err := jc.ValidateWithLeeway(jwt.Expected{Issuer: "meetguard", AnyAudience: jwt.Audience{"jitsi"}, Subject: "meet.example.org", Time: fixedNow}, 0); err != nil {
				t.Fatalf("go-jose validate: %v", err)
			}
			if claims["jti"] == "" {
				t.Fatal("no jti")
			}
			delete(claims, "jti")
			got, _ := json.MarshalIndent(map[string]any{"header": hdr, "claims": claims}, "", "  ")
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Fatalf("token differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestForward_PageAndConnectionMapping(t *testing.T) {
	a := hsAdapter(t, func(o *jitsi.Options) { o.URL = "http://jitsi.internal:8000/jm/" })
	p := person("alice", "standup", "participant")
	cases := []struct {
		name, target, path string
		token              bool
	}{
		{"page", "/meet/standup", "/jm/standup", false},
		{"page with slash", "/meet/standup/", "/jm/standup", false},
		{"websocket", "/meet/standup/xmpp-websocket?room=standup", "/jm/xmpp-websocket", true},
		{"bosh", "/meet/standup/http-bind", "/jm/http-bind", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := forward(a, &p, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if out.URL.Path != tc.path {
				t.Fatalf("forwarded to %q, want %q", out.URL.Path, tc.path)
			}
			q := out.URL.Query()
			if tc.token != (q.Get("token") != "") {
				t.Fatalf("token present=%v, want %v", q.Has("token"), tc.token)
			}
			if tc.token && q.Get("room") != "standup" {
				t.Fatalf("room param %q", q.Get("room"))
			}
		})
	}
}

func TestForward_HostileRequestsAreRefused(t *testing.T) {
	a := hsAdapter(t, nil)
	p := person("alice", "standup", "participant")
	upper := person("alice", "Standup", "participant")
	roomNamedLikeEndpoint := person("alice", "xmpp-websocket", "participant")
	cases := []struct {
		name, target string
		p            *admission.Participant
		want         error
	}{
		{"websocket without admission", "/xmpp-websocket?room=standup", nil, jitsi.ErrOutsideRoom},
		{"bosh without admission", "/http-bind?room=standup&token=forged", nil, jitsi.ErrOutsideRoom},
		{"tenant websocket without admission", "/meet/xmpp-websocket", nil, jitsi.ErrOutsideRoom},
		{"another room's connection", "/meet/board/xmpp-websocket", &p, jitsi.ErrOutsideRoom},
		{"room name extended", "/meet/standupx/http-bind", &p, jitsi.ErrOutsideRoom},
		{"capital letters", "/meet/Standup/xmpp-websocket", &upper, jitsi.ErrRoomName},
		{"room named like an endpoint", "/meet/xmpp-websocket", &roomNamedLikeEndpoint, jitsi.ErrRoomName},
		{"other path in the room", "/meet/standup/colibri-ws/x", &p, jitsi.ErrNotSignalling},
		{"nested websocket", "/meet/standup/x/xmpp-websocket", &p, jitsi.ErrNotSignalling},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := forward(a, tc.p, tc.target); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Static assets outside rooms pass untouched and get no token.
	out, err := forward(a, nil, "/libs/app.bundle.min.js?v=1")
	if err != nil || out.URL.Path != "/libs/app.bundle.min.js" || out.URL.Query().Has("token") {
		t.Fatalf("static asset: %v %v", out.URL, err)
	}
}

func TestForward_CrossRoomReplayIsImpossible(t *testing.T) {
	a := hsAdapter(t, nil)
	alice := person("alice", "room-a", "participant")
	stolenB := tokenOf(t, a, person("bob", "room-b", "host"))
	out, err := forward(a, &alice, "/meet/room-a/xmpp-websocket?room=room-b&token="+stolenB)
	if err != nil {
		t.Fatal(err)
	}
	q := out.URL.Query()
	if q["token"][0] == stolenB || len(q["token"]) != 1 || len(q["room"]) != 1 || q.Get("room") != "room-a" {
		t.Fatalf("forwarded query %v", q)
	}
	_, claims := verifyStdlib(t, q.Get("token"), []byte(appSecret))
	if claims["room"] != "room-a" || claims["context"].(map[string]any)["user"].(map[string]any)["moderator"] != "false" {
		t.Fatalf("claims %v", claims)
	}
	// And no token minted for room-a is ever for room-b: the room claim is
	// exactly the admitted room, never a wildcard.
	for _, room := range []string{"room-a", "room-b", "x"} {
		_, c := verifyStdlib(t, tokenOf(t, a, person("carol", room, "participant")), []byte(appSecret))
		if c["room"] != room {
			t.Fatalf("token for %s names %v", room, c["room"])
		}
	}
}

func TestToken_RolesAndViewers(t *testing.T) {
	strict := hsAdapter(t, nil)
	lenient := hsAdapter(t, func(o *jitsi.Options) { o.ViewersAsMembers = true })
	if _, err := forward(strict, ptr(person("v", "standup", "viewer")), "/meet/standup/http-bind"); !errors.Is(err, jitsi.ErrViewer) {
		t.Fatalf("viewer: %v", err)
	}
	for _, role := range []string{"", "admin", "HOST"} {
		if _, err := forward(strict, ptr(person("x", "standup", role)), "/meet/standup/http-bind"); !errors.Is(err, jitsi.ErrUnknownRole) {
			t.Fatalf("role %q: %v", role, err)
		}
	}
	_, c := verifyStdlib(t, tokenOf(t, lenient, person("v", "standup", "viewer")), []byte(appSecret))
	user := c["context"].(map[string]any)["user"].(map[string]any)
	if user["moderator"] != "false" || user["affiliation"] != "member" {
		t.Fatalf("viewer as member: %v", user)
	}
	if id, _ := user["id"].(string); !strings.HasPrefix(id, "mg-") || strings.Contains(id, "idp.test") {
		t.Fatalf("user id %q is not a pseudonym", id)
	}
}

func ptr(p admission.Participant) *admission.Participant { return &p }

func TestToken_ReusedForHalfItsLifeThenRenewed(t *testing.T) {
	now := fixedNow
	a := hsAdapter(t, func(o *jitsi.Options) { o.Clock = func() time.Time { return now } })
	p := person("alice", "standup", "participant")
	first := tokenOf(t, a, p)
	now = now.Add(2 * time.Minute)
	if tokenOf(t, a, p) != first {
		t.Fatal("token not reused within half its life")
	}
	host := p
	host.Role = "host"
	if tokenOf(t, a, host) == first {
		t.Fatal("token reused across roles")
	}
	now = now.Add(time.Minute)
	if tokenOf(t, a, p) == first {
		t.Fatal("token not renewed after half its life")
	}
}

func TestKeyServer_ServesPublicKeyWhereProsodyLooks(t *testing.T) {
	a := rsAdapter(t, nil)
	srv := httptest.NewServer(http.StripPrefix("/asap", a.KeyServer()))
	defer srv.Close()
	tok := tokenOf(t, a, person("alice", "standup", "participant"))
	// Do what Prosody's token util does: kid from the header,
	// <asap_key_server>/<hex sha256(kid)>.pem, verify with that key.
	hdr, _ := verifyStdlib(t, tok, nil)
	sum := sha256.Sum256([]byte(hdr["kid"].(string)))
	resp, err := http.Get(srv.URL + "/asap/" + hex.EncodeToString(sum[:]) + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("key fetch %d", resp.StatusCode)
	}
	blk, _ := pem.Decode(body)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("not a PEM public key: %q", body)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	verifyStdlib(t, tok, pub.(*rsa.PublicKey))
	if strings.Contains(string(body), "PRIVATE") {
		t.Fatal("private key served")
	}
	for _, p := range []string{"/asap/" + strings.Repeat("0", 64) + ".pem", "/asap/", "/asap/../asap_private.pem"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	hs := httptest.NewServer(hsAdapter(t, nil).KeyServer())
	defer hs.Close()
	resp, _ = http.Get(hs.URL + "/" + hex.EncodeToString(sum[:]) + ".pem")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HS256 adapter served a key: %d", resp.StatusCode)
	}
}

func TestNew_RefusesWeakOrAmbiguousSettings(t *testing.T) {
	cases := map[string]func(*jitsi.Options){
		"short secret":     func(o *jitsi.Options) { o.AppSecret = "short" },
		"wildcard subject": func(o *jitsi.Options) { o.Subject = "*" },
		"upper subject":    func(o *jitsi.Options) { o.Subject = "Meet.example.org" },
		"no app id":        func(o *jitsi.Options) { o.AppID = "" },
		"both keys":        func(o *jitsi.Options) { o.PrivateKey = testKey(t); o.KeyID = "k" },
		"no key":           func(o *jitsi.Options) { o.AppSecret = "" },
		"rsa without kid":  func(o *jitsi.Options) { o.AppSecret = ""; o.PrivateKey = testKey(t) },
		"bad room path":    func(o *jitsi.Options) { o.RoomPath = "/{room}/x" },
	}
	for name, mutate := range cases {
		o := jitsi.Options{URL: "http://jitsi:8000", RoomPath: roomPath, AppID: "m", Subject: "meet.example.org", AppSecret: appSecret}
		mutate(&o)
		if _, err := jitsi.New(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
