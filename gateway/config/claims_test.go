package config

import (
	"strings"
	"testing"
)

func oidcConfig(extra string) []byte {
	c := strings.Replace(goodConfig, "  client_secret: ${CLIENT_SECRET}\n", "  client_secret: x\n"+extra, 1)
	return []byte(strings.Replace(c, "secret_file: SECRET_FILE", "secret: "+strings.Repeat("k", 32), 1))
}

func TestClaims_UserEditableClaimsAreRefused(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"  groups_claim: preferred_username\n", `line 8: oidc.groups_claim: "preferred_username" is a profile claim people can edit themselves`},
		{"  groups_claim: nickname\n", `oidc.groups_claim: "nickname" is a profile claim`},
		{"  groups_claim: name\n", `oidc.groups_claim: "name" is a profile claim`},
		{"  groups_claim: website\n", `oidc.groups_claim: "website" is a profile claim`},
		{"  subject_claim: email\n", `line 8: oidc.subject_claim: "email" is a profile claim people can edit themselves`},
		{"  subject_claim: preferred_username\n", `oidc.subject_claim: "preferred_username" is a profile claim`},
		{"  subject_claim: \"o i d\"\n", "oidc.subject_claim: must be a claim name"},
		{"  bearer_clients: [\"\"]\n", "line 8: oidc.bearer_clients[0]: must not be empty"},
	} {
		_, err := Parse(oidcConfig(tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	for _, ok := range []string{"  groups_claim: roles\n  subject_claim: oid\n  bearer_clients: [mobile-app]\n", ""} {
		if _, err := Parse(oidcConfig(ok), nil); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestWarnings_BearerAudienceWithoutSubjectClaim(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		warn bool
	}{
		{"", false}, // audiences default to client_id
		{"  audiences: [meetguard]\n", false},
		{"  audiences: [api://meetguard-api]\n", true},
		{"  audiences: [meetguard, api://meetguard-api]\n", true},
		{"  audiences: [api://meetguard-api]\n  subject_claim: oid\n", false},
	} {
		cfg, err := Parse(oidcConfig(tc.yaml), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		w := Warnings(cfg)
		if got := len(w) == 1 && strings.HasPrefix(w[0], "oidc.audiences: ") && strings.Contains(w[0], "oidc.subject_claim"); got != tc.warn {
			t.Errorf("%q: warnings %q, want warning %v", tc.yaml, w, tc.warn)
		}
	}
}
