# Tests for data.meetguard.console.access.
package meetguard.console_test

import data.meetguard.console

roles_cfg := {
	"auditor": {"subjects": ["aud-1"], "emails": ["Auditor@Example.com"], "groups": ["audit-team"]},
	"security": {"subjects": [], "emails": [], "groups": ["secops"]},
	"admin": {"subjects": ["eve"], "emails": [], "groups": []},
}

ident(patch) := object.union({"identity": {"sub": "x", "email": "", "email_verified": false, "groups": []}}, {"identity": patch})

access(patch) := a if {
	a := console.access with input as ident(patch) with data.meetguard.console_roles as roles_cfg
}

test_nobody_by_default if {
	a := console.access with input as ident({"sub": "aud-1"}) with data.meetguard.console_roles as {}
	not a.allow
	a.roles == []
}

test_auditor_by_subject if {
	a := access({"sub": "aud-1"})
	a.allow
	a.roles == ["auditor"]
}

test_empty_subject_never_matches if {
	a := console.access with input as ident({"sub": ""}) with data.meetguard.console_roles as {"auditor": {"subjects": [""], "emails": [], "groups": []}}
	not a.allow
}

test_verified_email_any_case if {
	access({"email": "auditor@example.COM", "email_verified": true}).roles == ["auditor"]
}

test_unverified_email_grants_nothing if {
	not access({"email": "auditor@example.com", "email_verified": false}).allow
}

test_group_and_both_roles if {
	access({"groups": ["secops", "audit-team"]}).roles == ["auditor", "security"]
}

test_unknown_role_grants_nothing if {
	not access({"sub": "eve"}).allow
}
