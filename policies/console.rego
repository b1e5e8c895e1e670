# METADATA
# title: Security console access
# description: |
#   Decides who may open the gateway's read-only security and audit console
#   (/.meetguard/security/). The gateway asks for data.meetguard.console.access
#   on every console request; an identity holding no role is refused.
#
#   The roles and who holds them live in data.json, under
#   data.meetguard.console_roles: "auditor" (decisions, rooms, integrity)
#   and "security" (everything an auditor sees, plus the policy page and
#   what-if replays). Each role lists subjects, verified emails and groups.
#   Default: nobody.
package meetguard.console

# known_roles are the roles the console understands; a typo in data.json
# grants nothing.
known_roles := {"auditor", "security"}

default allow := false

# roles are the console roles the signed-in identity holds.
roles contains role if {
	some role, holders in data.meetguard.console_roles
	role in known_roles
	holds(holders)
}

holds(holders) if {
	input.identity.sub != ""
	input.identity.sub in holders.subjects
}

# An email counts only when the identity provider verified it.
holds(holders) if {
	input.identity.email_verified
	lower(input.identity.email) in {lower(e) | some e in holders.emails}
}

holds(holders) if {
	some g in input.identity.groups
	g in holders.groups
}

allow if count(roles) > 0

# access is the one document the gateway asks for.
access := {"allow": allow, "roles": sort(roles)}
