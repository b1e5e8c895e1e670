# Tests for data.meetguard.admission.create_room.
package meetguard.admission_test

import data.meetguard.admission

new_room := {"room": {"id": "retro", "exists": false, "owner": "", "occupancy": 0}}

create(patch) := d if {
	d := admission.create_room with input as object.union(object.union(alice, new_room), patch)
		with data.meetguard.config as cfg
}

test_creator_group_may_create if {
	d := create(object.union(guest, {"identity": {"groups": ["meeting-creators"]}}))
	admitted(d, "host")
	d.reasons == ["room_creator_group"]
	d.ttl_seconds == 300
}

test_staff_may_create_when_configured if {
	d := create({})
	admitted(d, "host")
	d.reasons == ["staff_domain"]
}

test_staff_may_not_create_when_not_configured if {
	d := admission.create_room with input as object.union(alice, new_room)
		with data.meetguard.config as object.union(cfg, {"room_creation": {"staff": false}})
	denied(d, "not_room_creator")
}

test_guest_may_not_create if {
	denied(create(guest), "not_room_creator")
}

test_taken_name_is_only_revealed_to_creators if {
	denied(create({"room": {"exists": true}}), "room_exists")
	d := create(object.union(guest, {"room": {"exists": true}}))
	d.reasons == ["not_room_creator", "room_exists"]
	d.user_message == "not a creator"
}

test_unauthenticated_may_not_create if {
	denied(create({"identity": {"sub": ""}}), "unauthenticated")
}

test_rate_limited_may_not_create if {
	denied(create({"history": {"identity": {"join_failures": 5}}}), "rate_limited")
}

# A room data.json lists is created only by its or a global host group, so
# staff and room creators cannot squat it after it ends.
test_configured_room_is_created_only_by_its_hosts if {
	denied(create({"room": {"id": "board"}}), "not_room_creator")
	denied(create({"identity": {"groups": ["meeting-creators"]}, "room": {"id": "board"}}), "not_room_creator")
	board := create({"identity": {"groups": ["board-members"]}, "room": {"id": "board"}})
	admitted(board, "host")
	board.reasons == ["host_group"]
	admitted(create(object.union(host, {"room": {"id": "board"}})), "host")
	denied(create({"identity": {"groups": ["board-members"]}, "room": {"id": "vault"}}), "not_room_creator")
}

# Bans outlive the room; the banned cannot re-create it, whatever else they
# may do, and learn nothing about whether it exists.
test_banned_identity_may_not_create if {
	banned := {"room": {"banned": true}}
	denied(create(banned), "banned")
	denied(create(object.union(host, banned)), "banned")
	denied(create(object.union(host, {"room": {"id": "board", "banned": true, "exists": true}})), "banned")
}
