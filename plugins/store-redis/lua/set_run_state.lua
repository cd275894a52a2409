#!lua
-- setRunState(term, run, from, to, at, note) — ARGV[3] term, ARGV[4] dag_id, ARGV[5] run_id,
-- ARGV[6] from, ARGV[7] to, ARGV[8] at, ARGV[9] note ('' = keep). Fenced; compare-and-set on the
-- run state. Entering running stamps started_at, entering success/failed stamps ended_at and
-- takes the run out of the active index; entering queued (a cleared run) puts it back.
local err = termError(ARGV[3])
if err then return redis.error_reply(err) end
local dag, run, from, to, at, note = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local row = RUN_MOVES[from]
if row == nil or row[to] ~= true then
  return redis.error_reply('INVALID illegal run move ' .. from .. ' -> ' .. to)
end
local key = runKey(dag, run)
local f = redis.call('HMGET', key, 'state', 'queued_at')
if not f[1] then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if f[1] ~= from then
  return redis.error_reply('CONFLICT run "' .. run .. '" is ' .. f[1] .. ', not ' .. from)
end
redis.call('HSET', key, 'state', to)
if to == 'running' then redis.call('HSET', key, 'started_at', at) end
if to == 'success' or to == 'failed' then
  redis.call('HSET', key, 'ended_at', at)
  redis.call('ZREM', K_ACTIVE_RUNS, runRef(dag, run))
end
if to == 'queued' then
  local score = f[2]
  if score == nil or score == '' then score = at end
  redis.call('ZADD', K_ACTIVE_RUNS, score, runRef(dag, run))
end
if note ~= '' then redis.call('HSET', key, 'note', note) end
publishRunByTerm(dag, run, ARGV[3])
return 1
