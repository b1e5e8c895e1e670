-- start_join is begin_join and then facts, in one step: the room script's
-- KEYS 1-6 and ARGV 1-8, then the rate-limit prelude's KEYS 7-9 and ARGV
-- 9-15 (KO 6, AO 8); ARGV 16 the attempts limit per identity, 17 the
-- subject. Returns {counts} for a refused attempt (the room is not read),
-- else {counts, facts}.
local c = begin_join(tonumber(ARGV[16]))
if c[1] ~= 'ok' then return {c} end
return {c, facts(ARGV[17])}
