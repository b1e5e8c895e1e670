# METADATA
# title: Configuration check
# description: |
#   Lists what is wrong with data.meetguard.config (data.json), one line per
#   problem, naming the setting. The bundle's own tests require this list to
#   be empty, and meetguard never serves a revision whose tests fail, so a
#   typo in data.json is refused at load instead of quietly weakening a rule.
package meetguard.config_check

import data.meetguard.admission
import data.meetguard.config

known_settings := {
	"staff_domains",
	"host_groups",
	"mfa_acr_values",
	"mfa_room_tags",
	"capacity",
	"rate_limit",
	"meeting_hours",
	"participants_wait_for_host",
	"decision_ttl_seconds",
	"lobby_ttl_seconds",
	"max_duration_minutes",
	"room_creation",
	"rooms",
	"messages",
}

string_list_settings := [
	["staff_domains"],
	["host_groups"],
	["mfa_acr_values"],
	["mfa_room_tags"],
	["room_creation", "groups"],
]

positive_int_settings := [
	["capacity", "default"],
	["capacity", "max"],
	["rate_limit", "identity_join_failures"],
	["rate_limit", "identity_passcode_failures"],
]

non_negative_int_settings := [
	["decision_ttl_seconds"],
	["lobby_ttl_seconds"],
	["max_duration_minutes"],
]

bool_settings := [
	["capacity", "hosts_exempt"],
	["participants_wait_for_host"],
	["room_creation", "staff"],
]

object_settings := [
	["meeting_hours"],
	["rooms"],
	["messages"],
]

weekdays := {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

problems contains sprintf("%s: unknown setting", [key]) if {
	some key in object.keys(config)
	not key in known_settings
}

problems contains sprintf("%s: must be a list of strings", [concat(".", path)]) if {
	some path in string_list_settings
	not string_list(object.get(config, path, null))
}

problems contains sprintf("%s: must be a whole number above 0", [concat(".", path)]) if {
	some path in positive_int_settings
	not positive_int(object.get(config, path, null))
}

problems contains sprintf("%s: must be a whole number, 0 or more", [concat(".", path)]) if {
	some path in non_negative_int_settings
	not non_negative_int(object.get(config, path, null))
}

problems contains sprintf("%s: must be true or false", [concat(".", path)]) if {
	some path in bool_settings
	not is_boolean(object.get(config, path, null))
}

problems contains sprintf("%s: must be an object", [concat(".", path)]) if {
	some path in object_settings
	not is_object(object.get(config, path, null))
}

problems contains "capacity.default: must not be above capacity.max" if {
	config.capacity.default > config.capacity.max
}

# Domains are compared exactly and in lower case, so a domain written any
# other way would never match anybody.
problems contains sprintf("staff_domains: %q must be a lower-case domain name without @", [domain]) if {
	some domain in config.staff_domains
	not regex.match(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`, domain)
}

# The per-address limits moved to the gateway (rooms.rate_limits), which
# knows the trusted networks; an old key must not look like it still works.
problems contains sprintf("rate_limit.%s: unknown setting (address limits are rooms.rate_limits in the gateway configuration)", [key]) if {
	some key in object.keys(config.rate_limit)
	not key in {"identity_join_failures", "identity_passcode_failures"}
}

problems contains sprintf("rooms.%s: unknown setting %q", [id, key]) if {
	some id, room in config.rooms
	some key in object.keys(room)
	not key in {"capacity", "host_groups", "tags"}
}

problems contains sprintf("rooms.%s.tags: must be a list of strings", [id]) if {
	some id, room in config.rooms
	"tags" in object.keys(room)
	not string_list(room.tags)
}

problems contains sprintf("rooms.%s.capacity: must be a whole number above 0", [id]) if {
	some id, room in config.rooms
	"capacity" in object.keys(room)
	not positive_int(room.capacity)
}

problems contains sprintf("rooms.%s.host_groups: must be a list of strings", [id]) if {
	some id, room in config.rooms
	"host_groups" in object.keys(room)
	not string_list(room.host_groups)
}

problems contains sprintf("meeting_hours.%s.timezone: must be a time zone name such as \"Europe/Berlin\"", [tag]) if {
	some tag, hours in config.meeting_hours
	not valid_timezone(object.get(hours, "timezone", null))
}

problems contains sprintf("meeting_hours.%s.weekdays: must list days such as \"Monday\"", [tag]) if {
	some tag, hours in config.meeting_hours
	not valid_weekdays(object.get(hours, "weekdays", null))
}

problems contains sprintf("meeting_hours.%s.%s: must be a time of day as HH:MM", [tag, key]) if {
	some tag, hours in config.meeting_hours
	some key in ["start", "end"]
	not valid_clock(object.get(hours, key, null))
}

problems contains sprintf("meeting_hours.%s: start must be before end", [tag]) if {
	some tag, hours in config.meeting_hours
	valid_clock(hours.start)
	valid_clock(hours.end)
	hours.start >= hours.end
}

problems contains sprintf("messages.%s: missing", [code]) if {
	some code in message_codes
	not is_string(object.get(config, ["messages", code], null))
}

message_codes := {code | some code in admission.reason_order} | {
	"guest_lobby",
	"waiting_for_host",
	"passcode_attack",
	"room_exists",
	"not_room_creator",
}

string_list(x) if {
	is_array(x)
	every item in x {
		is_string(item)
	}
}

positive_int(x) if {
	is_number(x)
	x == round(x)
	x > 0
}

non_negative_int(x) if {
	is_number(x)
	x == round(x)
	x >= 0
}

# "" and "Local" are valid to Go but mean the gateway host's zone, which
# changes with where it runs.
valid_timezone(tz) if {
	is_string(tz)
	not tz in {"", "Local"}
	time.clock([0, tz])
}

valid_weekdays(days) if {
	is_array(days)
	count(days) > 0
	every day in days {
		day in weekdays
	}
}

valid_clock(hhmm) if {
	is_string(hhmm)
	regex.match(`^([01][0-9]|2[0-3]):[0-5][0-9]$`, hhmm)
}
