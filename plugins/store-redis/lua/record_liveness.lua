#!lua
-- recordLiveness(term, record) — ARGV[3] term, ARGV[4] holder, ARGV[5] record term,
-- ARGV[6] last_tick ('' = none), ARGV[7] queue_depth, ARGV[8] active_runs. Fenced.
local err = termError(ARGV[3])
if err then return redis.error_reply(err) end
redis.call('HSET', K_LIVENESS, 'holder', ARGV[4], 'term', ARGV[5], 'last_tick', ARGV[6],
  'queue_depth', ARGV[7], 'active_runs', ARGV[8])
return 1
