# Tests for data.meetguard.config_check: the shipped data.json and the test
# configuration are clean, and every kind of mistake is named.
package meetguard.config_check_test

import data.meetguard.admission_test
import data.meetguard.config_check

test_shipped_data_json_has_no_problems if {
	problems := config_check.problems
	print("data.json problems:", problems)
	count(problems) == 0
}

test_test_configuration_has_no_problems if {
	count(config_check.problems) == 0 with data.meetguard.config as admission_test.cfg
}

problems_with(settings) := p if {
	p := config_check.problems with data.meetguard.config as object.union(admission_test.cfg, settings)
}

problems_without(key) := p if {
	p := config_check.problems with data.meetguard.config as object.remove(admission_test.cfg, [key])
}

test_each_mistake_is_named if {
	every c in [
		[{"staf_domains": ["example.com"]}, "staf_domains: unknown setting"],
		[{"host_groups": "meetguard-hosts"}, "host_groups: must be a list of strings"],
		[{"host_groups": [1]}, "host_groups: must be a list of strings"],
		[{"room_creation": {"groups": null}}, "room_creation.groups: must be a list of strings"],
		[{"capacity": {"default": "fifty"}}, "capacity.default: must be a whole number above 0"],
		[{"capacity": {"max": 0}}, "capacity.max: must be a whole number above 0"],
		[{"capacity": {"default": 2.5}}, "capacity.default: must be a whole number above 0"],
		[{"capacity": {"default": 500}}, "capacity.default: must not be above capacity.max"],
		[{"rate_limit": {"identity_join_failures": -1}}, "rate_limit.identity_join_failures: must be a whole number above 0"],
		[{"rate_limit": {"ip_join_failures": 50}}, "rate_limit.ip_join_failures: unknown setting (address limits are rooms.rate_limits in the gateway configuration)"],
		[{"lobby_ttl_seconds": -5}, "lobby_ttl_seconds: must be a whole number, 0 or more"],
		[{"max_duration_minutes": "8h"}, "max_duration_minutes: must be a whole number, 0 or more"],
		[{"capacity": {"hosts_exempt": "yes"}}, "capacity.hosts_exempt: must be true or false"],
		[{"rooms": []}, "rooms: must be an object"],
		[{"staff_domains": ["Example.com"]}, `staff_domains: "Example.com" must be a lower-case domain name without @`],
		[{"staff_domains": ["@example.com"]}, `staff_domains: "@example.com" must be a lower-case domain name without @`],
		[{"staff_domains": ["localhost"]}, `staff_domains: "localhost" must be a lower-case domain name without @`],
		[{"rooms": {"x": {"capasity": 3}}}, `rooms.x: unknown setting "capasity"`],
		[{"rooms": {"x": {"capacity": 0}}}, "rooms.x.capacity: must be a whole number above 0"],
		[{"rooms": {"x": {"host_groups": "a"}}}, "rooms.x.host_groups: must be a list of strings"],
		[{"rooms": {"x": {"tags": "confidential"}}}, "rooms.x.tags: must be a list of strings"],
		[{"meeting_hours": {"office": {"timezone": "Mars/Olympus"}}}, `meeting_hours.office.timezone: must be a time zone name such as "Europe/Berlin"`],
		[{"meeting_hours": {"office": {"timezone": ""}}}, `meeting_hours.office.timezone: must be a time zone name such as "Europe/Berlin"`],
		[{"meeting_hours": {"office": {"timezone": "Local"}}}, `meeting_hours.office.timezone: must be a time zone name such as "Europe/Berlin"`],
		[{"meeting_hours": {"office": {"weekdays": ["Mon"]}}}, `meeting_hours.office.weekdays: must list days such as "Monday"`],
		[{"meeting_hours": {"office": {"weekdays": []}}}, `meeting_hours.office.weekdays: must list days such as "Monday"`],
		[{"meeting_hours": {"office": {"start": "8:00"}}}, "meeting_hours.office.start: must be a time of day as HH:MM"],
		[{"meeting_hours": {"office": {"end": "24:00"}}}, "meeting_hours.office.end: must be a time of day as HH:MM"],
		[{"meeting_hours": {"office": {"start": "18:00", "end": "08:00"}}}, "meeting_hours.office: start must be before end"],
		[{"messages": {"room_full": 3}}, "messages.room_full: missing"],
	] {
		c[1] in problems_with(c[0])
	}
}

test_missing_settings_are_named if {
	"staff_domains: must be a list of strings" in problems_without("staff_domains")
	"participants_wait_for_host: must be true or false" in problems_without("participants_wait_for_host")
	"decision_ttl_seconds: must be a whole number, 0 or more" in problems_without("decision_ttl_seconds")
	"messages: must be an object" in problems_without("messages")
	"messages.room_full: missing" in problems_without("messages")
	"meeting_hours: must be an object" in problems_without("meeting_hours")
}
