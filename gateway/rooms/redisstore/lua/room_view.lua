-- Returns {meta, participants, waiting, bans} as flat field/value lists.
if not exists() then return {'notfound'} end
prune()
return {'ok', redis.call('HGETALL', K_META), redis.call('HGETALL', K_PARTS),
  redis.call('HGETALL', K_WAIT), redis.call('HGETALL', K_BANS)}
