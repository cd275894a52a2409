#!lua
-- materializeRun(term, run, tasks, at) — ARGV[3] term, ARGV[4] dag_id, ARGV[5] run_id, ARGV[6] at,
-- ARGV[7..] pairs of task_id, max_tries. Fenced.
-- One instance per task in `none`, try 1, and the run queued → running with started_at, all in
-- one step (BEHAVIOUR §10 items 15-16). CONFLICT when the run is not queued or has instances.
local err = termError(ARGV[3])
if err then return redis.error_reply(err) end
local dag, run, at = ARGV[4], ARGV[5], ARGV[6]
local key = runKey(dag, run)
local state = redis.call('HGET', key, 'state')
if not state then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if state ~= 'queued' then
  return redis.error_reply('CONFLICT run "' .. run .. '" is ' .. state .. ', not queued')
end
local tis = tisKey(dag, run)
if redis.call('EXISTS', tis) == 1 then
  return redis.error_reply('CONFLICT run "' .. run .. '" already has task instances')
end
local args = {}
local seq = 0
local i = 7
while i + 1 <= #ARGV do
  args[#args + 1] = ARGV[i]
  args[#args + 1] = table.concat({tostring(seq), 'none', '1', ARGV[i + 1], '', '', '', '', '', '', ''}, '|')
  seq = seq + 1
  i = i + 2
end
-- HSET in chunks: unpack() is bounded by the Lua stack (LUAI_MAXCSTACK 8000).
local chunk = 2000
for s = 1, #args, chunk do
  redis.call('HSET', tis, unpack(args, s, math.min(s + chunk - 1, #args)))
end
redis.call('HSET', key, 'state', 'running', 'started_at', at, 'active', '0')
publishRunByTerm(dag, run, ARGV[3])
return 1
