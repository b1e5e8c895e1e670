-- ARGV 9 pid.
if not exists() then return {'notadmitted'} end
local p = drop_participant(ARGV[9])
if not p then return {'notadmitted'} end
publish({kind = 'left', subject = p.s, revoked = {ARGV[9]}})
refresh_ttl()
return {'ok'}
