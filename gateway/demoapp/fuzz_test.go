package demoapp

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParseChat checks that whatever a client sends, an accepted chat line is
// non-empty, bounded, valid UTF-8 and free of control and format characters,
// and an accepted sealed message is bounded base64url and nothing else.
func FuzzParseChat(f *testing.F) {
	f.Add([]byte(`{"type":"chat","text":"hello"}`))
	f.Add([]byte(`{"type":"chat","text":"\u202eevil\u0000"}`))
	f.Add([]byte(`{"type":"chat","text":"a","type":"kick"}`))
	f.Add([]byte(`{"type":"chat","text":"\xff\xfe"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"type":"sealed","data":"kAECAwQF-_"}`))
	f.Add([]byte(`{"type":"sealed","data":"a+b/c=="}`))
	f.Add([]byte(`{"type":"sealed","data":"<script>","text":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parseChat(data)
		if err != nil {
			return
		}
		switch msg.Type {
		case "chat":
			text := msg.Text
			if text == "" || msg.Data != "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > maxChatRunes {
				t.Fatalf("accepted %+v", msg)
			}
			for _, r := range text {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("accepted %q with control or format character %U", text, r)
				}
			}
		case "sealed":
			if msg.Text != "" || msg.Data == "" || len(msg.Data) > maxSealed {
				t.Fatalf("accepted %+v", msg)
			}
			if _, err := base64.RawURLEncoding.DecodeString(msg.Data); err != nil {
				t.Fatalf("accepted sealed data %q that is not base64url: %v", msg.Data, err)
			}
		default:
			t.Fatalf("accepted type %q", msg.Type)
		}
	})
}

func FuzzVerifyAssertion(f *testing.F) {
	g := newFakeGateway(f)
	now := time.Now()
	valid := g.sign(f, g.priv, g.kid, g.claims(now))
	pub, _ := g.priv.Public().(ed25519.PublicKey)
	v := &jwksVerifier{
		issuer: testIssuer, audience: testAudience, now: func() time.Time { return now },
		keys: map[string]ed25519.PublicKey{g.kid: pub}, lastFetch: now, // never fetches
	}
	f.Add(tamper(valid))
	f.Add(valid[:len(valid)-2])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == valid {
			return
		}
		if a, err := v.verify(context.Background(), raw); err == nil {
			t.Fatalf("forged assertion verified: %q -> %+v", raw, a)
		}
	})
}

// FuzzIdentityHeaders checks that whatever the headers hold, a recognised
// identity has a known role and display-safe values.
func FuzzIdentityHeaders(f *testing.F) {
	a, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("alice", "alice@example.com", "host", "r")
	f.Add("<b>x</b>", "\u202e", "HOST", "")
	f.Add("", "", "viewer", "other")
	f.Fuzz(func(t *testing.T, user, email, role, room string) {
		h := http.Header{HeaderUser: {user}, HeaderEmail: {email}, HeaderRole: {role}, HeaderRoom: {room}}
		id, err := a.identify(context.Background(), h, "r")
		if err != nil {
			return
		}
		switch id.Role {
		case RoleHost, RoleParticipant, RoleViewer:
		default:
			t.Fatalf("role %q", id.Role)
		}
		for _, s := range []string{id.User, id.Email, id.Display()} {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxIdentityLen || strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("unsafe identity value %q", s)
			}
		}
		if id.Display() == "" {
			t.Fatal("identity with nothing to display")
		}
	})
}
