-- facts is the policy's view of the room for subject ('' for none):
-- {'missing', banned} or {'ok', banned, participants, meta hash}. The facts
-- script calls it with ARGV 9, start_join with its own argument.
local function facts(subject)
  local banned = 0
  if subject ~= '' and redis.call('HEXISTS', K_BANS, subject) == 1 then banned = 1 end
  if not exists() then return {'missing', banned} end
  prune()
  return {'ok', banned, redis.call('HLEN', K_PARTS), redis.call('HGETALL', K_META)}
end
