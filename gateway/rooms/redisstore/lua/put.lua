-- ARGV 9 owner, 10 default capacity, 11 change (JSON object of meta fields),
-- 12 '1' for create-only: an existing room is answered 'exists' untouched.
local created = 0
if exists() and ARGV[12] == '1' then return {'exists'} end
if not exists() then
  created = 1
  redis.call('DEL', K_PARTS, K_LEASE, K_WAIT, K_WAITQ)
  redis.call('HSET', K_META, 'owner', ARGV[9], 'cap', ARGV[10], 'locked', '0', 'lobby', '0', 'pass', '',
    'e2ee', '0', 'tags', '[]', 'perm', '0', 'created', NOW, 'hosts', 0)
else
  prune()
end
local ch = cjson.decode(ARGV[11])
local lock_before = redis.call('HGET', K_META, 'locked')
local other = false
for _, f in ipairs({'cap', 'lobby', 'pass', 'e2ee', 'tags', 'perm'}) do
  if ch[f] ~= nil then
    redis.call('HSET', K_META, f, ch[f])
    other = true
  end
end
if ch.locked ~= nil then redis.call('HSET', K_META, 'locked', ch.locked) end
refresh_ttl()
if created == 0 then
  local lock_after = redis.call('HGET', K_META, 'locked')
  if lock_after ~= lock_before then
    if lock_after == '1' then publish({kind = 'locked'}) else publish({kind = 'unlocked'}) end
  end
  if other then publish({kind = 'updated'}) end
end
return {'ok', created}
