package config

import (
	"fmt"
	"slices"
)

// userEditableClaims are OpenID Connect claims that people set themselves
// at most providers (their profile). A claim someone edits can neither say
// which groups they are in nor who they are.
var userEditableClaims = []string{
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
	"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale",
	"email", "phone_number", "address", "updated_at",
}

func (l *loader) validateClaims(c *Config) {
	if slices.Contains(userEditableClaims, c.OIDC.GroupsClaim) {
		l.add("oidc.groups_claim", "%q is a profile claim people can edit themselves; name the claim the provider sets from group membership (groups, roles)", c.OIDC.GroupsClaim)
	}
	switch {
	case slices.Contains(userEditableClaims, c.OIDC.SubjectClaim):
		l.add("oidc.subject_claim", "%q is a profile claim people can edit themselves; name a stable identifier the provider sets (sub, oid)", c.OIDC.SubjectClaim)
	case c.OIDC.SubjectClaim != "" && !claimName(c.OIDC.SubjectClaim):
		l.add("oidc.subject_claim", "must be a claim name (letters, digits, _ - . :)")
	}
	for i, id := range c.OIDC.BearerClients {
		if id == "" {
			l.add(idx("oidc.bearer_clients", i), "must not be empty")
		}
	}
}

func claimName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Warnings lists settings of a completed config that are valid but likely
// wrong, one line each naming the setting. config validate prints them and
// serve logs them.
func Warnings(c *Config) []string {
	var out []string
	if c.OIDC.SubjectClaim == "" && slices.ContainsFunc(c.OIDC.Audiences, func(a string) bool { return a != c.OIDC.ClientID }) {
		out = append(out, fmt.Sprintf("oidc.audiences: bearer tokens for %q are accepted but oidc.subject_claim is not set: "+
			"providers that give each application or token type its own sub (Entra ID) make an app's caller someone else than "+
			"the same person in the browser, so bans and rate limits miss them; set oidc.subject_claim (Entra ID: oid)", c.OIDC.Audiences))
	}
	return out
}
