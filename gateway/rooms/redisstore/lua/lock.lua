-- ARGV 9 '1' to lock, '0' to unlock.
if not exists() then return {'notfound'} end
if redis.call('HGET', K_META, 'locked') ~= ARGV[9] then
  redis.call('HSET', K_META, 'locked', ARGV[9])
  if ARGV[9] == '1' then publish({kind = 'locked'}) else publish({kind = 'unlocked'}) end
end
return {'ok'}
