package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kindConfig is a valid config whose one upstream gets the given block.
func kindConfig(block string) string {
	return `
public_url: https://meet.example.org
oidc:
  issuer: https://idp.example.org
  client_id: meetguard
  client_secret: x
session:
  secret: ` + strings.Repeat("k", 32) + `
upstreams:
  - name: media
    url: https://media.internal:7880
` + block
}

func TestParse_UpstreamKindsWithDefaultsAndSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "asap.pem")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"LK_SECRET": strings.Repeat("e", 40)})
	t.Run("livekit", func(t *testing.T) {
		c, err := Parse([]byte(kindConfig(`    kind: livekit
    livekit:
      api_key: APIkey
      api_secret: ${LK_SECRET}
`)), getenv)
		if err != nil {
			t.Fatal(err)
		}
		lk := c.Upstreams[0].LiveKit
		if lk.APISecret != strings.Repeat("e", 40) || lk.TokenTTL != 5*time.Minute || lk.HTTPTimeout != 10*time.Second {
			t.Fatalf("%+v", lk)
		}
	})
	t.Run("jitsi rs256", func(t *testing.T) {
		c, err := Parse([]byte(kindConfig(`    kind: jitsi
    jitsi:
      app_id: meetguard
      subject: meet.example.org
      private_key_file: `+keyFile+`
      key_id: meetguard/1
`)), getenv)
		if err != nil {
			t.Fatal(err)
		}
		j := c.Upstreams[0].Jitsi
		if j.Audience != "jitsi" || j.Viewers != "refuse" || j.TokenTTL != 5*time.Minute {
			t.Fatalf("%+v", j)
		}
	})
	t.Run("bbb", func(t *testing.T) {
		c, err := Parse([]byte(kindConfig(`    kind: bbb
    bbb:
      secret_file: `+file+`
`)), getenv)
		if err != nil {
			t.Fatal(err)
		}
		b := c.Upstreams[0].BBB
		if b.Secret != strings.Repeat("f", 40) || b.Checksum != "sha256" || b.GuestPolicy != "ALWAYS_ACCEPT" ||
			b.APIURL != "https://media.internal:7880/bigbluebutton/api" || len(b.RedirectHosts) != 1 || b.RedirectHosts[0] != "media.internal:7880" {
			t.Fatalf("%+v", b)
		}
	})
}

func TestParse_UpstreamKindMistakesNameTheField(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent")
	cases := []struct {
		name, block, want string
	}{
		{"unknown kind", "    kind: zoom\n", "upstreams[0].kind: unknown kind \"zoom\""},
		{"block missing", "    kind: livekit\n", "upstreams[0].livekit: is required for kind livekit"},
		{"block of another kind", "    livekit:\n      api_key: k\n", "upstreams[0].livekit: is set but kind is \"generic\""},
		{"livekit short secret", "    kind: livekit\n    livekit:\n      api_key: k\n      api_secret: short\n", "line 15: upstreams[0].livekit.api_secret: must be at least 32 bytes"},
		{"livekit no key", "    kind: livekit\n    livekit:\n      api_secret: " + strings.Repeat("s", 32) + "\n", "upstreams[0].livekit.api_key: is required"},
		{"livekit ttl", "    kind: livekit\n    livekit:\n      api_key: k\n      api_secret: " + strings.Repeat("s", 32) + "\n      token_ttl: 2h\n", "upstreams[0].livekit.token_ttl: must be between 30s and 1h"},
		{"livekit secret twice", "    kind: livekit\n    livekit:\n      api_key: k\n      api_secret: " + strings.Repeat("s", 32) + "\n      api_secret_file: " + missing + "\n", "upstreams[0].livekit.api_secret_file: set either api_secret or api_secret_file, not both"},
		{"livekit unreadable secret file", "    kind: livekit\n    livekit:\n      api_key: k\n      api_secret_file: " + missing + "\n", "upstreams[0].livekit.api_secret_file: cannot read secret file"},
		{"jitsi wildcard subject", "    kind: jitsi\n    jitsi:\n      app_id: a\n      subject: '*'\n      app_secret: " + strings.Repeat("s", 32) + "\n", "upstreams[0].jitsi.subject: must name one domain or tenant"},
		{"jitsi both keys", "    kind: jitsi\n    jitsi:\n      app_id: a\n      subject: s\n      app_secret: " + strings.Repeat("s", 32) + "\n      private_key_file: /x\n", "upstreams[0].jitsi.private_key_file: set either app_secret (HS256) or private_key_file (RS256)"},
		{"jitsi rs256 no kid", "    kind: jitsi\n    jitsi:\n      app_id: a\n      subject: s\n      private_key_file: " + missing + "\n", "upstreams[0].jitsi.key_id: is required with private_key_file"},
		{"jitsi viewers", "    kind: jitsi\n    jitsi:\n      app_id: a\n      subject: s\n      app_secret: " + strings.Repeat("s", 32) + "\n      viewers: publish\n", "upstreams[0].jitsi.viewers: must be refuse or member"},
		{"bbb sha1", "    kind: bbb\n    bbb:\n      secret: " + strings.Repeat("s", 32) + "\n      checksum: sha1\n", "upstreams[0].bbb.checksum: sha1 is refused"},
		{"bbb guest policy", "    kind: bbb\n    bbb:\n      secret: " + strings.Repeat("s", 32) + "\n      guest_policy: MAYBE\n", "upstreams[0].bbb.guest_policy: must be"},
		{"bbb api url", "    kind: bbb\n    bbb:\n      secret: " + strings.Repeat("s", 32) + "\n      api_url: bbb.example.org/api\n", "upstreams[0].bbb.api_url: must be an absolute http or https URL"},
		{"bbb redirect host", "    kind: bbb\n    bbb:\n      secret: " + strings.Repeat("s", 32) + "\n      redirect_hosts: ['https://x/']\n", "upstreams[0].bbb.redirect_hosts[0]: must be a host or host:port"},
		{"unknown key in block", "    kind: bbb\n    bbb:\n      secret: " + strings.Repeat("s", 32) + "\n      salt: x\n", "upstreams[0].bbb.salt: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(kindConfig(tc.block)), nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err:\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestComplete_ValidatesKindsOfCodeBuiltConfigs(t *testing.T) {
	c := &Config{
		PublicURL: "https://meet.example.org",
		OIDC:      OIDC{Issuer: "https://idp.example.org", ClientID: "m", ClientSecret: "x"},
		Session:   Session{Secret: strings.Repeat("k", 32)},
		Upstreams: []Upstream{{Name: "lk", URL: "http://127.0.0.1:7880", Kind: "livekit", LiveKit: &LiveKit{APIKey: "k", APISecret: "short"}}},
	}
	if err := Complete(c); err == nil || !strings.Contains(err.Error(), "api_secret: must be at least 32 bytes") {
		t.Fatalf("err = %v", err)
	}
}
