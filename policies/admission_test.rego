# Tests for data.meetguard.admission.decision. Every test runs against the
# fixed configuration below, never the shipped data.json, so that a security
# team can change data.json without breaking these tests; data.json itself is
# checked by config_check_test.rego.
package meetguard.admission_test

import data.meetguard.admission

cfg := {
	"staff_domains": ["example.com"],
	"host_groups": ["meetguard-hosts"],
	"mfa_acr_values": ["phrh"],
	"mfa_room_tags": ["confidential"],
	"capacity": {"default": 10, "max": 100, "hosts_exempt": true},
	"rate_limit": {
		"identity_join_failures": 5,
		"identity_passcode_failures": 3,
	},
	"meeting_hours": {"office": {
		"timezone": "Europe/Berlin",
		"weekdays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
		"start": "08:00",
		"end": "18:00",
	}},
	"participants_wait_for_host": false,
	"decision_ttl_seconds": 300,
	"lobby_ttl_seconds": 30,
	"max_duration_minutes": 240,
	"room_creation": {"groups": ["meeting-creators"], "staff": true},
	"rooms": {
		"board": {"capacity": 3, "host_groups": ["board-members"]},
		"arena": {"capacity": 1000},
		"vault": {"host_groups": ["vault-keepers"], "tags": ["Confidential", "OFFICE"]},
	},
	"messages": {
		"unauthenticated": "sign in",
		"rate_limited": "slow down",
		"banned": "not available",
		"room_not_found": "not available",
		"room_locked": "not available",
		"outside_meeting_hours": "closed",
		"room_full": "full",
		"mfa_required": "use mfa",
		"e2ee_key_required": "set up e2ee",
		"passcode_required": "passcode",
		"guests_not_allowed": "members only",
		"guest_lobby": "wait for a host to let you in",
		"waiting_for_host": "wait for a host to arrive",
		"passcode_attack": "passcode under attack, wait for a host",
		"room_exists": "taken",
		"not_room_creator": "not a creator",
	},
}

# alice is staff (verified example.com address) joining an ordinary open room
# on a Wednesday morning in Berlin.
alice := {
	"identity": {
		"iss": "https://idp.example.com",
		"sub": "u-alice",
		"email": "alice@example.com",
		"email_verified": true,
		"name": "Alice",
		"groups": ["engineering"],
		"acr": "",
		"amr": ["pwd"],
		"auth_time": 1772611200,
		"via": "session",
	},
	"room": {
		"id": "standup",
		"exists": true,
		"owner": "u-olga",
		"capacity": 0,
		"occupancy": 3,
		"locked": false,
		"lobby_enabled": true,
		"host_present": true,
		"passcode_required": false,
		"passcode_ok": false,
		"e2ee_required": false,
		"tags": [],
		"banned": false,
	},
	"device": {"key_registered": false, "key_fingerprint": "", "pq": false},
	"request": {
		"time": "2026-03-04T09:30:00Z",
		"ip": "192.0.2.10",
		"user_agent": "Mozilla/5.0",
		"method": "GET",
		"path": "/r/standup",
		"origin": "https://meet.example.com",
	},
	"history": {
		"window_seconds": 900,
		"identity": {"join_attempts": 1, "join_failures": 0, "passcode_failures": 0},
		"ip": {"join_attempts": 4, "join_failures": 1, "passcode_failures": 0, "trusted": false, "limited": false},
		"room": {"passcode_failures": 0, "passcode_attack": false},
	},
}

guest := {"identity": {"sub": "u-gina", "email": "gina@partner.test", "groups": []}}

host := {"identity": {"sub": "u-hal", "email": "hal@partner.test", "groups": ["meetguard-hosts"]}}

# decide merges patch into alice (objects merge deeply; lists are replaced)
# and asks for the decision under the test configuration.
decide(patch) := d if {
	d := admission.decision with input as object.union(alice, patch)
		with data.meetguard.config as cfg
}

decide_with(patch, settings) := d if {
	d := admission.decision with input as object.union(alice, patch)
		with data.meetguard.config as object.union(cfg, settings)
}

admitted(d, role) if {
	d.allow == true
	d.lobby == false
	d.role == role
}

denied(d, reason) if {
	d.allow == false
	d.lobby == false
	d.reasons[0] == reason
	d.user_message == cfg.messages[reason]
	d.ttl_seconds == 0
}

# --- roles -------------------------------------------------------------------------

test_staff_member_joins_as_participant if {
	d := decide({})
	admitted(d, "participant")
	d.reasons == ["staff_domain"]
	d.user_message == ""
	d.ttl_seconds == 300
	d.obligations == {"require_e2ee": false, "max_duration_minutes": 240}
}

test_staff_domain_is_case_insensitive if {
	admitted(decide({"identity": {"email": "Alice@EXAMPLE.com"}}), "participant")
}

test_unverified_staff_email_waits_as_guest if {
	d := decide({"identity": {"email_verified": false}})
	d.lobby == true
	d.role == "viewer"
}

# lower() folds Unicode: the Kelvin sign to "k", the dotted capital I to
# "i". Only an ASCII domain is lower-cased and compared.
test_unicode_confusable_domains_are_not_staff if {
	every email in [
		"mallory@\u212Ait.edu", # KELVIN SIGN
		"mallory@example.\u212Aom", # KELVIN SIGN, shipped-style domain
		"mallory@\u0130example.com", # LATIN CAPITAL LETTER I WITH DOT ABOVE
		"mallory@exampl\u0435.com", # CYRILLIC SMALL LETTER IE
		"mallory@\uff45xample.com", # FULLWIDTH LATIN SMALL LETTER E
		"mallory@example\u3002com", # IDEOGRAPHIC FULL STOP
		"mallory@example.com\u200b", # ZERO WIDTH SPACE
		"mallory@ex\u00adample.com", # SOFT HYPHEN
		"mallory@example.co\u1d0d", # LATIN LETTER SMALL CAPITAL M
	] {
		d := decide_with({"identity": {"email": email}}, {"staff_domains": ["example.com", "kit.edu", "iexample.com"]})
		d.reasons == ["guest_lobby"]
	}
}

test_ascii_domains_fold_case if {
	every email in ["mallory@KIT.edu", "mallory@Kit.EDU"] {
		admitted(decide_with({"identity": {"email": email}}, {"staff_domains": ["kit.edu"]}), "participant")
	}
	admitted(decide_with({"identity": {"email": "m@XN--BCHER-KVA.example"}}, {"staff_domains": ["xn--bcher-kva.example"]}), "participant")
}

test_lookalike_domains_are_not_staff if {
	every email in [
		"alice@example.com.evil.test",
		"alice@evilexample.com",
		"alice@sub.example.com",
		"alice@evil.test@example.com",
		"@example.com",
		"example.com",
		"",
	] {
		d := decide({"identity": {"email": email}})
		d.lobby == true
		d.role == "viewer"
		d.reasons == ["guest_lobby"]
	}
}

test_guest_waits_in_lobby_as_viewer if {
	d := decide(guest)
	d.allow == false
	d.lobby == true
	d.role == "viewer"
	d.reasons == ["guest_lobby"]
	d.user_message == "wait for a host to let you in"
	d.ttl_seconds == 30
}

test_guest_is_refused_when_room_has_no_lobby if {
	denied(decide(object.union(guest, {"room": {"lobby_enabled": false}})), "guests_not_allowed")
}

test_staff_and_hosts_need_no_lobby if {
	admitted(decide({"room": {"lobby_enabled": false}}), "participant")
	admitted(decide(object.union(host, {"room": {"lobby_enabled": false}})), "host")
}

test_host_group_member_is_host if {
	d := decide(host)
	admitted(d, "host")
	d.reasons == ["host_group"]
	d.ttl_seconds == 300
}

test_room_host_group_makes_host_only_in_that_room if {
	board_member := {"identity": {"groups": ["board-members"]}}
	admitted(decide(object.union(board_member, {"room": {"id": "board"}})), "host")
	admitted(decide(board_member), "participant")
}

test_owner_is_host if {
	d := decide({"room": {"owner": "u-alice"}})
	admitted(d, "host")
	d.reasons == ["room_owner"]
}

test_owner_and_group_both_recorded if {
	d := decide({"identity": {"groups": ["meetguard-hosts"]}, "room": {"owner": "u-alice"}})
	d.reasons == ["host_group", "room_owner"]
}

# The owner of a room data.json lists is whoever created it after it last
# ended; that makes nobody its host.
test_owner_of_configured_room_is_not_host if {
	d := decide({"room": {"id": "board", "owner": "u-alice", "occupancy": 0}})
	admitted(d, "participant")
	d.reasons == ["staff_domain"]
	denied(decide({"room": {"id": "board", "owner": "u-alice", "locked": true}}), "room_locked")
	admitted(decide({"identity": {"groups": ["board-members"]}, "room": {"id": "board", "owner": "u-olga"}}), "host")
}

test_roomless_owner_never_matches_empty_subject if {
	not "room_owner" in admission.host_reasons with input as object.union(alice, {"identity": {"sub": ""}, "room": {"owner": ""}})
		with data.meetguard.config as cfg
}

test_staff_waits_for_host_when_configured if {
	d := decide_with({"room": {"host_present": false}}, {"participants_wait_for_host": true})
	d.allow == false
	d.lobby == true
	d.role == "participant"
	d.reasons == ["waiting_for_host"]
	d.user_message == "wait for a host to arrive"
	d.ttl_seconds == 30
}

test_staff_joins_when_host_present_even_if_configured_to_wait if {
	admitted(decide_with({"room": {"host_present": true}}, {"participants_wait_for_host": true}), "participant")
}

# --- authentication, bans, missing rooms ---------------------------------------------

test_unauthenticated_is_refused if {
	every patch in [
		{"identity": {"iss": ""}},
		{"identity": {"sub": ""}},
		{"identity": {"via": ""}},
	] {
		denied(decide(patch), "unauthenticated")
	}
}

test_bearer_identity_is_authenticated if {
	admitted(decide({"identity": {"via": "bearer"}}), "participant")
}

test_banned_identity_is_refused_even_as_host if {
	denied(decide({"room": {"banned": true}}), "banned")
	denied(decide(object.union(host, {"room": {"banned": true}})), "banned")
}

test_missing_room_is_refused if {
	denied(decide({"room": {"exists": false}}), "room_not_found")
}

test_locked_room_admits_only_hosts if {
	denied(decide({"room": {"locked": true}}), "room_locked")
	denied(decide(object.union(guest, {"room": {"locked": true}})), "room_locked")
	admitted(decide(object.union(host, {"room": {"locked": true}})), "host")
}

test_locked_banned_and_missing_look_the_same if {
	banned := decide({"room": {"banned": true}})
	locked := decide({"room": {"locked": true}})
	missing := decide({"room": {"exists": false}})
	banned.user_message == locked.user_message
	locked.user_message == missing.user_message
}

# --- capacity -----------------------------------------------------------------------

test_default_capacity_caps_the_room if {
	denied(decide({"room": {"occupancy": 10}}), "room_full")
	admitted(decide({"room": {"occupancy": 9}}), "participant")
}

test_room_capacity_replaces_default if {
	denied(decide({"room": {"capacity": 4, "occupancy": 4}}), "room_full")
	admitted(decide({"room": {"capacity": 40, "occupancy": 30}}), "participant")
}

test_configured_room_capacity_wins_over_room_setting if {
	denied(decide({"room": {"id": "board", "capacity": 50, "occupancy": 3}}), "room_full")
	admitted(decide({"room": {"id": "board", "capacity": 50, "occupancy": 2}}), "participant")
}

test_capacity_never_exceeds_maximum if {
	denied(decide({"room": {"id": "arena", "occupancy": 100}}), "room_full")
	denied(decide({"room": {"capacity": 5000, "occupancy": 100}}), "room_full")
	admitted(decide({"room": {"id": "arena", "occupancy": 99}}), "participant")
}

test_hosts_exempt_from_capacity_only_when_configured if {
	admitted(decide(object.union(host, {"room": {"occupancy": 10}})), "host")
	denied(decide_with(object.union(host, {"room": {"occupancy": 10}}), {"capacity": {"hosts_exempt": false}}), "room_full")
}

# --- confidential rooms ---------------------------------------------------------------

confidential := {"room": {"tags": ["confidential"]}}

with_mfa_and_key := {"identity": {"amr": ["pwd", "mfa"]}, "device": {"key_registered": true, "key_fingerprint": "SHA256:k", "pq": true}}

test_confidential_room_requires_mfa if {
	denied(decide(object.union(confidential, {"device": {"key_registered": true}})), "mfa_required")
}

test_confidential_room_requires_e2ee_key if {
	denied(decide(object.union(confidential, {"identity": {"amr": ["mfa"]}})), "e2ee_key_required")
}

test_confidential_room_reports_both_missing if {
	d := decide(confidential)
	d.reasons == ["mfa_required", "e2ee_key_required"]
}

test_confidential_room_admits_mfa_and_key if {
	d := decide(object.union(confidential, with_mfa_and_key))
	admitted(d, "participant")
	d.obligations.require_e2ee == true
}

test_configured_acr_counts_as_mfa if {
	admitted(decide(object.union(confidential, {"identity": {"acr": "phrh"}, "device": {"key_registered": true}})), "participant")
	denied(decide(object.union(confidential, {"identity": {"acr": "pwd"}, "device": {"key_registered": true}})), "mfa_required")
}

test_confidential_applies_to_hosts if {
	denied(decide(object.union(host, confidential)), "mfa_required")
}

# Tags compare in lower case, so "Confidential" is confidential.
test_security_tags_compare_case_insensitively if {
	every tags in [["Confidential"], ["CONFIDENTIAL"], ["confidential"]] {
		denied(decide({"room": {"tags": tags}}), "mfa_required")
	}
	every tags in [["Office"], ["OFFICE"]] {
		denied(decide({"room": {"tags": tags}, "request": {"time": "2026-03-07T10:00:00Z"}}), "outside_meeting_hours")
	}
	d := decide_with({"room": {"tags": ["confidential"]}}, {"mfa_room_tags": ["Confidential"]})
	d.reasons == ["mfa_required", "e2ee_key_required"]
}

# data.json's rooms.<id>.tags classify the room whatever tags a host left on
# it: a host cannot lower it by removing them.
test_configured_tags_hold_when_a_host_strips_them if {
	vault_host := {"identity": {"groups": ["vault-keepers"]}, "room": {"id": "vault", "tags": []}}
	d := decide(vault_host)
	d.reasons == ["mfa_required", "e2ee_key_required"]
	weekend := decide(object.union(object.union(vault_host, with_mfa_and_key), {"request": {"time": "2026-03-07T10:00:00Z"}}))
	weekend.reasons == ["outside_meeting_hours"]
	open := decide(object.union(vault_host, with_mfa_and_key))
	admitted(open, "host")
	open.obligations.require_e2ee == true
}

test_e2ee_room_requires_key_but_not_mfa if {
	denied(decide({"room": {"e2ee_required": true}}), "e2ee_key_required")
	d := decide({"room": {"e2ee_required": true}, "device": {"key_registered": true}})
	admitted(d, "participant")
	d.obligations.require_e2ee == true
}

# --- passcodes and rate limits -----------------------------------------------------------

test_passcode_room_needs_passcode if {
	denied(decide({"room": {"passcode_required": true, "passcode_ok": false}}), "passcode_required")
	admitted(decide({"room": {"passcode_required": true, "passcode_ok": true}}), "participant")
}

test_hosts_skip_passcode if {
	admitted(decide(object.union(host, {"room": {"passcode_required": true}})), "host")
}

test_identity_failures_rate_limit_the_identity if {
	every c in [
		[{"join_failures": 5}, "rate_limited_identity"],
		[{"passcode_failures": 3}, "rate_limited_passcode"],
	] {
		d := decide({"history": {"identity": c[0]}})
		denied(d, "rate_limited")
		d.reasons == ["rate_limited", c[1]]
		d.member == true
	}
}

test_failures_below_limits_are_fine if {
	d := decide({"history": {
		"identity": {"join_failures": 4, "passcode_failures": 2},
		"ip": {"join_failures": 1000, "passcode_failures": 1000},
	}})
	admitted(d, "participant")
}

test_rate_limit_applies_to_hosts if {
	denied(decide(object.union(host, {"history": {"identity": {"join_failures": 5}}})), "rate_limited")
}

# A limited address (the gateway's verdict, history.ip.limited) turns away
# those the policy does not vouch for and members who failed themselves.
test_limited_address_refuses_non_members_and_failed_members if {
	limited := {"history": {"ip": {"limited": true}}}
	every patch in [
		guest,
		{"identity": {"email_verified": false}},
		{"history": {"identity": {"join_failures": 1}}},
		{"history": {"identity": {"passcode_failures": 1}}},
		object.union(host, {"history": {"identity": {"passcode_failures": 1}}}),
	] {
		d := decide(object.union(limited, patch))
		denied(d, "rate_limited")
		"rate_limited_address" in d.reasons
	}
}

# ... and never members in good standing: an office behind one NAT address
# holds its all-hands while someone else at that address guesses.
test_limited_address_never_refuses_members_in_good_standing if {
	limited := {"history": {"ip": {"limited": true, "join_failures": 5000, "passcode_failures": 5000}}}
	admitted(decide(limited), "participant")
	admitted(decide(object.union(limited, host)), "host")
	admitted(decide(object.union(limited, {"history": {"ip": {"trusted": true}}})), "participant")
}

test_member_is_said_whatever_the_outcome if {
	decide({}).member == true
	decide(host).member == true
	decide({"room": {"banned": true}}).member == true
	decide(guest).member == false
	decide(object.union(guest, {"room": {"banned": true}})).member == false
}

# Once a room's passcode budget is spent, the right passcode no longer
# admits: everyone but hosts waits for a host.
test_passcode_attack_sends_everyone_but_hosts_to_the_lobby if {
	attack := {"room": {"passcode_required": true, "passcode_ok": true}, "history": {"room": {"passcode_attack": true}}}
	d := decide(attack)
	d.allow == false
	d.lobby == true
	d.role == "participant"
	d.reasons == ["passcode_attack"]
	d.user_message == cfg.messages.passcode_attack
	d.ttl_seconds == 30
	d.member == true

	g := decide(object.union(attack, guest))
	g.lobby == true
	g.role == "viewer"
	g.reasons == ["passcode_attack"]
	g.member == false

	admitted(decide(object.union(attack, host)), "host")
}

test_passcode_attack_still_refuses_wrong_passcodes if {
	denied(decide({"room": {"passcode_required": true}, "history": {"room": {"passcode_attack": true}}}), "passcode_required")
}

test_passcode_attack_leaves_rooms_without_passcode_alone if {
	admitted(decide({"history": {"room": {"passcode_attack": true, "passcode_failures": 99}}}), "participant")
}

# --- meeting hours --------------------------------------------------------------------

office := {"room": {"tags": ["office"]}}

test_office_room_open_during_hours if {
	# 09:30 UTC on Wednesday 4 March 2026 is 10:30 in Berlin.
	admitted(decide(office), "participant")

	# 07:00 UTC is 08:00 in Berlin: opening minute.
	admitted(decide(object.union(office, {"request": {"time": "2026-03-04T07:00:00Z"}})), "participant")
}

test_office_room_closed_outside_hours if {
	every t in [
		"2026-03-04T06:59:00Z", # 07:59 Berlin, before opening
		"2026-03-04T17:00:00Z", # 18:00 Berlin, closing minute
		"2026-03-07T10:00:00Z", # Saturday
		"not a time",
		"",
	] {
		denied(decide(object.union(office, {"request": {"time": t}})), "outside_meeting_hours")
	}
}

test_untimed_tags_have_no_hours if {
	admitted(decide({"room": {"tags": ["weekly"]}, "request": {"time": "2026-03-07T23:00:00Z"}}), "participant")
}

# --- how reasons are reported -----------------------------------------------------------

test_reasons_are_ranked_and_first_picks_message if {
	d := decide({"room": {"locked": true, "occupancy": 50, "passcode_required": true}})
	d.reasons == ["room_locked", "room_full", "passcode_required"]
	d.user_message == "not available"
}

test_unranked_reasons_follow_ranked_ones if {
	d := admission.decision with input as alice
		with data.meetguard.config as cfg
		with admission.deny as {"zz_custom", "room_full", "aa_custom"}
	d.reasons == ["room_full", "aa_custom", "zz_custom"]
}

test_unknown_reason_gets_generic_message if {
	admission.message("no_such_reason") == "This meeting is not available." with data.meetguard.config as cfg
}
