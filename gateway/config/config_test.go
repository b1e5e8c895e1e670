package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodConfig = `
listen: 127.0.0.1:8443
public_url: https://meet.example.org
oidc:
  issuer: https://idp.example.org
  client_id: meetguard
  client_secret: ${CLIENT_SECRET}
session:
  secret_file: SECRET_FILE
upstreams:
  - name: jitsi
    url: http://127.0.0.1:8000
    rooms:
      path: /room/{room}
admin:
  listen: 127.0.0.1:9090
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse_GoodConfigWithEnvAndSecretFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "session.key")
	if err := os.WriteFile(secret, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(strings.Replace(goodConfig, "SECRET_FILE", secret, 1)), env(map[string]string{"CLIENT_SECRET": "s3cr3t: not yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC.ClientSecret != "s3cr3t: not yaml" || cfg.Session.Secret != strings.Repeat("k", 40) {
		t.Fatalf("secrets not resolved: %+v", cfg.OIDC)
	}
	if cfg.Store.Kind != "memory" || cfg.Upstreams[0].Kind != "generic" || cfg.OIDC.Audiences[0] != "meetguard" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestParse_NamesEveryBadFieldWithLine(t *testing.T) {
	bad := `listen: nope
public_url: /relative
trusted_proxies: [10.0.0.0/33]
oidc:
  issuer: http://idp.example.org
  client_id: ""
  colour: blue
session:
  secret: short
upstreams:
  - name: a
    url: ftp://x
    rooms:
      path: /room/{id}/x
store:
  kind: etcd
`
	_, err := Parse([]byte(bad), nil)
	var errs Errors
	if !errors.As(err, &errs) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"line 7: oidc.colour: unknown field",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	// Unknown fields stop decoding; fix it and every other field is named.
	_, err = Parse([]byte(strings.Replace(bad, "  colour: blue\n", "", 1)), nil)
	for _, w := range []string{
		"line 1: listen: must be host:port",
		"line 2: public_url: must be an absolute URL",
		"line 3: trusted_proxies[0]: must be a CIDR",
		"line 5: oidc.issuer: must be https",
		"line 6: oidc.client_id: is required",
		"line 8: session.secret: must be at least 32 bytes",
		"line 11: upstreams[0].url: must be http or https",
		"line 13: upstreams[0].rooms.path: must be a path whose last segment is {room}",
		"line 15: store.kind: must be memory or redis",
		"oidc.client_secret: is required",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestParse_MissingEnvAndTypeErrors(t *testing.T) {
	_, err := Parse([]byte("listen: ${NOPE}\nlimits:\n  max_header_bytes: lots\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 1: listen: environment variable NOPE is not set") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse([]byte("limits:\n  max_header_bytes: lots\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2: limits.max_header_bytes") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse([]byte("listen: [unclosed\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("syntax err = %v", err)
	}
}

func TestRoomPattern(t *testing.T) {
	p, err := ParseRoomPattern("/room/{room}")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/room/abc": "abc", "/room/abc/ws": "abc", "/room/": "", "/other/abc": "", "/room/.hidden": "", "/room/a%20b": ""} {
		got, _ := p.Room(path)
		if got != want {
			t.Errorf("Room(%q) = %q, want %q", path, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("listen: ${X}\n"))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, env(map[string]string{"X": "1"}))
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

// TestParse_MaskFieldsAndPeerFiles: a mask field that is not a JSON
// pointer and a peer pattern that is not a glob are named.
func TestParse_MaskFieldsAndPeerFiles(t *testing.T) {
	_, err := Parse([]byte("policy:\n  mask_fields: [\"/identity/email\", \"identity.email\"]\naudit:\n  peer_files: [\"/var/log/peers/*/audit.log\", \"/var/log/[peers/audit.log\"]\n"), nil)
	for _, w := range []string{`policy.mask_fields[1]: "identity.email" must be a JSON pointer`, `audit.peer_files[1]: "/var/log/[peers/audit.log" is not a glob pattern`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	for _, ok := range []string{"policy.mask_fields[0]", "audit.peer_files[0]"} {
		if err != nil && strings.Contains(err.Error(), ok) {
			t.Errorf("%s refused:\n%v", ok, err)
		}
	}
}
