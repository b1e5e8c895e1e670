package audit

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type inlineObj map[string]string

func (o inlineObj) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for k, v := range o {
		enc.AddString(k, v)
	}
	return nil
}

type policyInput struct {
	Subject struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	} `json:"subject"`
	Request struct {
		Headers map[string]string `json:"headers"`
	} `json:"request"`
	ClientSecret string `json:"client_secret"`
}

type errWithSecret struct{}

func (errWithSecret) Error() string { return "upstream said: Bearer abc.def.ghi" }

// The secret in every case is "SECRET-<n>"; none may reach the file.
func TestRecord_NeverWritesSecrets(t *testing.T) {
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlU0VDUkVULUpXVA"
	var in policyInput
	in.Subject.Email = "alice@example.com"
	in.Request.Headers = map[string]string{"Cookie": "mg_session=SECRET-5", "Authorization": "Bearer SECRET-6", "X-Ok": "fine"}
	in.ClientSecret = "SECRET-7"
	cases := []struct {
		name    string
		field   zap.Field
		secret  string
		visible string // what must still be there
	}{
		{"token key", zap.String("token", "SECRET-1"), "SECRET-1", `"token":"[redacted]"`},
		{"id_token key", zap.String("id_token", "SECRET-2"), "SECRET-2", `"id_token":"[redacted]"`},
		{"Set-Cookie key", zap.String("Set-Cookie", "mg=SECRET-3"), "SECRET-3", `"Set-Cookie":"[redacted]"`},
		{"roomPasscode key", zap.String("roomPasscode", "SECRET-4"), "SECRET-4", `"roomPasscode":"[redacted]"`},
		{"nested in a struct", zap.Any(FieldInput, in), "SECRET-", `"X-Ok":"fine"`},
		{"nested map", zap.Any(FieldResult, map[string]any{"deep": map[string]any{"password": "SECRET-8"}}), "SECRET-8", `"password":"[redacted]"`},
		{"jwt under an innocent key", zap.String("note", jwt), "c2lnbmF0dXJl", `"note":"[redacted]"`},
		{"jwt in a list", zap.Strings("notes", []string{"ok", jwt}), "c2lnbmF0dXJl", `"ok"`},
		{"bearer value", zap.String("upstream_header", "Bearer SECRET-9"), "SECRET-9", `"upstream_header":"Bearer [redacted]"`},
		{"object marshaler", zap.Object("obj", inlineObj{"api_key": "SECRET-10", "room": "r1"}), "SECRET-10", `"room":"r1"`},
		{"inline object", zap.Inline(inlineObj{"client_secret": "SECRET-11", "actor": "bob"}), "SECRET-11", `"actor":"bob"`},
		{"error text with bearer", zap.NamedError("error", errWithSecret{}), "abc.def.ghi", `"error":"upstream said: Bearer [redacted]"`},
		{"secret key with int value", zap.Int("passcode", 123456), "123456", `"passcode":"[redacted]"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := openTestLog(t, Options{})
			if err := l.Record(context.Background(), EventAdmissionDecision, tc.field); err != nil {
				t.Fatal(err)
			}
			l.Close()
			b, err := os.ReadFile(l.opts.Path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), tc.secret) {
				t.Fatalf("secret %q written:\n%s", tc.secret, b)
			}
			if !strings.Contains(string(b), tc.visible) {
				t.Fatalf("%q missing:\n%s", tc.visible, b)
			}
			if res := verifyFiles(t, []string{l.opts.Path}, VerifyOptions{}); !res.Intact() {
				t.Fatal(res.Problem)
			}
		})
	}
}

// Facts about a passcode are not the passcode: policy replay needs them.
func TestRecord_KeepsPasscodeFactsRedactsPasscodes(t *testing.T) {
	l := openTestLog(t, Options{})
	input := map[string]any{
		"room":    map[string]any{"passcode_required": true, "passcode_ok": false, "passcode": "SECRET-12"},
		"history": map[string]any{"identity": map[string]any{"passcode_failures": 3}},
	}
	err := l.Record(context.Background(), EventAdmissionDecision, zap.Any(FieldInput, input),
		zap.Bool("passcode_ok", true), zap.Int("passcode_failures", 4), zap.Int("passcode_hint", 424242))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(l.opts.Path)
	for _, want := range []string{`"passcode_required":true`, `"passcode_ok":false`, `"passcode_failures":3`, `"passcode_ok":true`, `"passcode_failures":4`, `"passcode":"[redacted]"`, `"passcode_hint":"[redacted]"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s missing:\n%s", want, b)
		}
	}
	for _, secret := range []string{"SECRET-12", "424242"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%s written", secret)
		}
	}
}

func TestRecord_HashesConfiguredIdentityFieldsAtAnyDepth(t *testing.T) {
	l := openTestLog(t, Options{HashedFields: []string{"Email"}})
	var in policyInput
	in.Subject.Email = "alice@example.com"
	err := l.Record(context.Background(), EventAdmissionDecision,
		zap.String("email", "alice@example.com"), zap.String(FieldSubject, "u-123"), zap.Any(FieldInput, in))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(l.opts.Path)
	if strings.Contains(string(b), "alice@example.com") {
		t.Fatalf("hashed field written in clear:\n%s", b)
	}
	if n := strings.Count(string(b), HashIdentity("alice@example.com")); n != 2 {
		t.Fatalf("hash of the address appears %d times, want 2 (top level and in input):\n%s", n, b)
	}
	if !strings.Contains(string(b), `"subject":"u-123"`) {
		t.Fatal("a field not listed was hashed")
	}
}

func TestRecord_TooLarge(t *testing.T) {
	l := openTestLog(t, Options{})
	err := l.Record(context.Background(), EventRoomUpdate, zap.String("changes", strings.Repeat("x", MaxRecordBytes)))
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"token": true, "access_token": true, "X-CSRF-Token": true, "cookie": true, "Authorization": true,
		"client_secret": true, "private_key": true, "PASSWORD": true, "passcode": true, "api-key": true,
		"room": false, "subject": false, "key_id": false, "public_key": false, "decision_id": false,
		"session": false, "policy_revision": false, "reasons": false,
	} {
		if got := isSecretKey(key); got != want {
			t.Errorf("isSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestSecretScans_AgreeWithPlainSearch: the one-pass isSecretKey and
// mayHoldCredential give the answers of the plain searches they replaced
// (lower-case, then look for every word), on keys and values built from
// the words' letters in both cases, separators and look-alikes.
func TestSecretScans_AgreeWithPlainSearch(t *testing.T) {
	plainSecretKey := func(key string) bool {
		// ASCII letters only: the Kelvin sign must stay what it is.
		k := strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, key))
		if len(k) < 4 {
			return false
		}
		for _, w := range secretKeyWords {
			if strings.Contains(k, string(w)) {
				return true
			}
		}
		return false
	}
	plainCredential := func(v string) bool {
		fold := func(sub string) bool {
			for i := 0; i+len(sub) <= len(v); i++ {
				j := 0
				for j < len(sub) && v[i+j]|0x20 == sub[j] {
					j++
				}
				if j == len(sub) {
					return true
				}
			}
			return false
		}
		return fold("eyj") || fold("bearer") || fold("basic")
	}
	var alphabet []string
	for _, w := range secretKeyWords {
		alphabet = append(alphabet, string(w), strings.ToUpper(string(w[:3])), string(w[1:]))
	}
	alphabet = append(alphabet, "eyJ", "EYj", "Bearer", "BASIC", "bas", "bear", "ey", "-", "_", ".", " ", "a", "K",
		"\u212a", "é", "\x00", "@", "`", "\x05") // the Kelvin sign, and bytes that |0x20 maps onto letters' neighbours
	rng := rand.New(rand.NewPCG(17, 2))
	hits := [2]int{}
	for range 50_000 {
		var sb strings.Builder
		for range rng.IntN(6) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		if got, want := isSecretKey(s), plainSecretKey(s); got != want {
			t.Fatalf("isSecretKey(%q) = %v, plain search %v", s, got, want)
		} else if got {
			hits[0]++
		}
		if got, want := isSecretKey([]byte(s)), plainSecretKey(s); got != want {
			t.Fatalf("isSecretKey([]byte(%q)) = %v, plain search %v", s, got, want)
		}
		if got, want := mayHoldCredential(s), plainCredential(s); got != want {
			t.Fatalf("mayHoldCredential(%q) = %v, plain search %v", s, got, want)
		} else if got {
			hits[1]++
		}
	}
	if hits[0] < 1000 || hits[1] < 1000 {
		t.Fatalf("too few positive cases to mean anything: %v", hits)
	}
}
