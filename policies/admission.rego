# METADATA
# title: Room admission
# description: |
#   Decides whether a signed-in person may enter a meeting room now, must wait
#   in the lobby, or is turned away, and with which role. The gateway asks for
#   data.meetguard.admission.decision on every room admission.
#
#   Everything a security team is expected to change lives in data.json
#   (data.meetguard.config): staff domains, host groups, MFA, capacity, rate
#   limits, meeting hours and the messages people are shown. The rules below
#   only say how those settings combine.
# schemas:
#   - input: schema.input
package meetguard.admission

import data.meetguard.config

# decision is the one document the gateway asks for. The first branch that
# applies wins: any deny reason, then hosts, then (while the room's passcode
# is under attack) everyone else waits in the lobby, then staff, then
# everyone else waits in the lobby as a guest viewer until a host lets them
# in. member says, whatever the outcome, whether the policy vouches for the
# identity as one of the organisation's: the gateway counts a non-member's
# refusal against its address, a member's not.
decision := {
	"allow": false,
	"lobby": false,
	"role": "",
	"reasons": reasons,
	"user_message": message(reasons[0]),
	"ttl_seconds": 0,
	"member": member,
} if {
	count(deny) > 0
} else := {
	"allow": true,
	"lobby": false,
	"role": "host",
	"reasons": sort(host_reasons),
	"user_message": "",
	"ttl_seconds": config.decision_ttl_seconds,
	"obligations": obligations,
	"member": member,
} if {
	is_host
} else := {
	"allow": false,
	"lobby": true,
	"role": lobby_role,
	"reasons": ["passcode_attack"],
	"user_message": message("passcode_attack"),
	"ttl_seconds": config.lobby_ttl_seconds,
	"obligations": obligations,
	"member": member,
} if {
	passcode_attack
} else := {
	"allow": true,
	"lobby": false,
	"role": "participant",
	"reasons": ["staff_domain"],
	"user_message": "",
	"ttl_seconds": config.decision_ttl_seconds,
	"obligations": obligations,
	"member": member,
} if {
	is_staff
	not waits_for_host
} else := {
	"allow": false,
	"lobby": true,
	"role": "participant",
	"reasons": ["waiting_for_host"],
	"user_message": message("waiting_for_host"),
	"ttl_seconds": config.lobby_ttl_seconds,
	"obligations": obligations,
	"member": member,
} if {
	is_staff
} else := {
	"allow": false,
	"lobby": true,
	"role": "viewer",
	"reasons": ["guest_lobby"],
	"user_message": message("guest_lobby"),
	"ttl_seconds": config.lobby_ttl_seconds,
	"obligations": obligations,
	"member": member,
}

# reason_order ranks deny reasons. The first one present picks the message the
# person is shown, so reasons that must not reveal anything about the room
# (banned, missing, locked) come before reasons that would (full, passcode).
reason_order := [
	"unauthenticated",
	"rate_limited",
	"banned",
	"room_not_found",
	"room_locked",
	"outside_meeting_hours",
	"room_full",
	"mfa_required",
	"e2ee_key_required",
	"passcode_required",
	"guests_not_allowed",
]

# reasons lists every deny reason, ranked; a reason a team adds without
# ranking it still shows up, after the ranked ones.
reasons := [r | some [_, r] in sort([[rank(r), r] | some r in deny])]

rank(r) := i if {
	some i, ranked in reason_order
	ranked == r
} else := count(reason_order)

# message is what the person may be told for a reason code. The gateway shows
# nothing else, so an unknown code gets the same words as a missing room.
message(code) := msg if {
	msg := config.messages[code]
} else := "This meeting is not available."

# --- Who is asking -----------------------------------------------------------

# Only identities the gateway verified (a session or a bearer token with an
# issuer and a subject) get in anywhere.
authenticated if {
	input.identity.iss != ""
	input.identity.sub != ""
	input.identity.via in {"session", "bearer"}
}

# Hosts are members of a host group (global or for this room) or the room's
# owner. Both reasons are kept so the log says why someone is a host.
host_reasons contains "host_group" if {
	some group in config.host_groups
	group in input.identity.groups
}

host_reasons contains "host_group" if {
	some group in config.rooms[input.room.id].host_groups
	group in input.identity.groups
}

# A room listed in data.json (rooms.<id>) is hosted by its host groups only.
# Its owner in the room state is merely whoever created it after it last
# ended, which says nothing about whom the security team reserved it for.
host_reasons contains "room_owner" if {
	not configured_room
	input.room.owner != ""
	input.room.owner == input.identity.sub
}

is_host if count(host_reasons) > 0

# A lookup rather than object.keys(config.rooms): no set of every configured
# room is built per decision.
configured_room if config.rooms[input.room.id]

default member := false

member if is_staff

member if is_host

# Staff have a verified email address in one of the organisation's domains.
# The domain must match exactly: "example.com.evil.test" and
# "evilexample.com" are not "example.com", and an address with two "@" is
# nobody's.
is_staff if {
	input.identity.email_verified
	email_domain in config.staff_domains
}

# The domain must be ASCII before it is lower-cased: lower() folds Unicode,
# so the Kelvin sign (U+212A) would become "k" and the dotted capital I
# (U+0130) "i", and "mallory@\u212Ait.edu" would be staff of kit.edu. The
# gateway turns internationalised domains into their ASCII (IDNA) form
# before they get here; staff_domains lists them in that form (xn--…).
email_domain := lower(parts[1]) if {
	parts := split(input.identity.email, "@")
	count(parts) == 2
	parts[0] != ""
	regex.match(`^[A-Za-z0-9.-]+$`, parts[1])
}

waits_for_host if {
	config.participants_wait_for_host
	not input.room.host_present
}

# MFA: the identity provider says so in amr (RFC 8176 "mfa") or with one of
# the configured acr values.
mfa if "mfa" in input.identity.amr

mfa if input.identity.acr in config.mfa_acr_values

# --- Why someone is turned away -------------------------------------------------

# Input booleans are negated with "not", not compared with "== false": an
# input that lacks the field (a hand-made input, an older logged one) is then
# refused rather than let through.

deny contains "unauthenticated" if not authenticated

deny contains "banned" if input.room.banned

deny contains "room_not_found" if not input.room.exists

# A locked room is closed to everyone but its hosts, lobby included.
deny contains "room_locked" if {
	input.room.locked
	not is_host
}

deny contains "room_full" if {
	input.room.occupancy >= capacity
	not capacity_exempt
}

deny contains "mfa_required" if {
	sensitive_room
	not mfa
}

deny contains "e2ee_key_required" if {
	e2ee_room
	not input.device.key_registered
}

# Hosts open passcode rooms without the passcode; everyone else needs it.
deny contains "passcode_required" if {
	input.room.passcode_required
	not input.room.passcode_ok
	not is_host
}

deny contains "rate_limited" if rate_limited

deny contains "outside_meeting_hours" if {
	some tag, hours in config.meeting_hours
	lower(tag) in room_tags
	not within_hours(hours)
}

# Without a lobby there is nowhere for a guest to wait.
deny contains "guests_not_allowed" if {
	not input.room.lobby_enabled
	not is_host
	not is_staff
}

# --- Rooms ---------------------------------------------------------------------

# capacity: a per-room setting in data.json wins over the room's own setting,
# which wins over the default; nothing goes above the configured maximum.
# An else rather than min({...}): no set is built per decision.
capacity := configured_capacity if {
	configured_capacity <= config.capacity.max
} else := config.capacity.max

configured_capacity := c if {
	c := config.rooms[input.room.id].capacity
} else := input.room.capacity if {
	input.room.capacity > 0
} else := config.capacity.default

capacity_exempt if {
	is_host
	config.capacity.hosts_exempt
}

# room_tags are the room's tags in lower case, so "Business-Hours" gets the
# rules of business-hours. The tags data.json gives a room (rooms.<id>.tags:
# its security classification, which only the security team edits) always
# count, so a host who removes them from the room does not lower it.
room_tags contains lower(tag) if some tag in input.room.tags

room_tags contains lower(tag) if some tag in config.rooms[input.room.id].tags

sensitive_room if {
	some tag in config.mfa_room_tags
	lower(tag) in room_tags
}

e2ee_room if sensitive_room

e2ee_room if input.room.e2ee_required

obligations := {
	"require_e2ee": require_e2ee,
	"max_duration_minutes": config.max_duration_minutes,
}

default require_e2ee := false

require_e2ee if e2ee_room

# --- Abuse -----------------------------------------------------------------------

# Every caller is authenticated, so the identity is the unit of abuse: its own
# failures (over history.window_seconds, from any address) turn it away, hosts
# included, and nobody else.
rate_limit_units contains "identity" if {
	input.history.identity.join_failures >= config.rate_limit.identity_join_failures
}

rate_limit_units contains "passcode" if {
	input.history.identity.passcode_failures >= config.rate_limit.identity_passcode_failures
}

# Addresses are only a backstop against account farms, fair to an office or a
# carrier behind one NAT address: the gateway counts only abuse indicators
# there (passcode guesses, refusals of non-members) and says when the address
# is over its limit (rooms.rate_limits.failures_per_address, or its own limit
# for trusted_networks). That turns away those the policy does not vouch for
# and members who failed themselves, never members in good standing.
rate_limit_units contains "address" if {
	input.history.ip.limited
	not in_good_standing
}

in_good_standing if {
	member
	input.history.identity.join_failures == 0
	input.history.identity.passcode_failures == 0
}

rate_limited if count(rate_limit_units) > 0

# The detail reasons say which limit for the audit log (rate_limited_identity:
# join failures, rate_limited_passcode: the identity's wrong passcodes,
# rate_limited_address); they rank after every ranked reason, so the person
# is shown the rate_limited message.
deny contains concat("_", ["rate_limited", unit]) if some unit in rate_limit_units

# Rooms protect themselves: once a room's budget of wrong passcodes (from
# anyone, any address) is spent, the passcode no longer admits anyone
# directly: everyone but hosts waits for a host, who sees them in the lobby.
passcode_attack if {
	input.room.passcode_required
	input.history.room.passcode_attack
}

lobby_role := "participant" if is_staff

else := "viewer"

# --- Meeting hours ----------------------------------------------------------------

# within_hours uses the gateway's clock from the request (never time.now_ns),
# so that a replay of the audit log decides the same way. A missing or bad
# time is never within hours. Times of day compare as "HH:MM" strings, the
# form config_check insists on.
within_hours(hours) if {
	ns := time.parse_rfc3339_ns(input.request.time)
	time.weekday([ns, hours.timezone]) in hours.weekdays
	[hour, minute, _] := time.clock([ns, hours.timezone])
	now := sprintf("%02d:%02d", [hour, minute])
	now >= hours.start
	now < hours.end
}
