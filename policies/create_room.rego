# Room creation. The input schema annotation on the package (admission.rego)
# covers the rules in this file too.
package meetguard.admission

import data.meetguard.config

# METADATA
# title: Room creation
# description: |
#   Decides who may create a room. The rooms API asks for
#   data.meetguard.admission.create_room with the same input as an admission,
#   where room.id is the room asked for and room.exists says whether it is
#   taken. The answer has the same shape as decision; an allowed creator
#   becomes the room's host.
create_room := {
	"allow": false,
	"lobby": false,
	"role": "",
	"reasons": create_reasons,
	"user_message": message(create_reasons[0]),
	"ttl_seconds": 0,
} if {
	count(create_deny) > 0
} else := {
	"allow": true,
	"lobby": false,
	"role": "host",
	"reasons": sort(creator_reasons),
	"user_message": "",
	"ttl_seconds": config.decision_ttl_seconds,
}

create_reason_order := [
	"unauthenticated",
	"rate_limited",
	"banned",
	"not_room_creator",
	"room_exists",
]

create_reasons := [r | some r in create_reason_order; r in create_deny]

create_deny contains "unauthenticated" if not authenticated

create_deny contains "rate_limited" if rate_limited

# Bans outlive the room, so a banned person cannot wait for it to end,
# create it again as its owner and lock its hosts out. The rooms API gives
# this the same refusal as not_room_creator.
create_deny contains "banned" if input.room.banned

# Only creators learn whether a name is taken.
create_deny contains "not_room_creator" if count(creator_reasons) == 0

create_deny contains "room_exists" if input.room.exists

# A room listed in data.json is reserved for its hosts: only members of its
# or a global host group create it, so nobody else claims the name (and
# with it the passcode, the lock and the bans) by being first after it
# ended. Other names are open to the room_creation settings.
creator_reasons contains "host_group" if {
	configured_room
	"host_group" in host_reasons
}

creator_reasons contains "room_creator_group" if {
	not configured_room
	some group in input.identity.groups
	group in config.room_creation.groups
}

creator_reasons contains "staff_domain" if {
	not configured_room
	config.room_creation.staff
	is_staff
}
