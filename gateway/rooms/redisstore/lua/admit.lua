-- ARGV 9 pid, 10 subject, 11 role, 12 name.
if not exists() then return {'notfound'} end
if redis.call('HEXISTS', K_BANS, ARGV[10]) == 1 then return {'banned'} end
prune()
if ARGV[11] ~= 'host' and redis.call('HGET', K_META, 'locked') == '1' then return {'locked'} end
if is_full() then return {'full'} end
add_participant(ARGV[9], ARGV[10], ARGV[11], ARGV[12])
refresh_ttl()
return {'ok', NOW}
