#!lua
-- reportRunning(attempt, at) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id, ARGV[6] try,
-- ARGV[7] at. An executor's report: guarded by (try_number, state), not fenced (§8.7).
-- queued → running; stamps started_at and the first heartbeat (§8.8).
local dag, run, task, try, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local tis = tisKey(dag, run)
local t, refused = currentAttempt(dag, run, task, try)
if not t then return refused end
if t[F_STATE] ~= 'queued' then
  return redis.error_reply('CONFLICT attempt ' .. try .. ' is ' .. t[F_STATE] .. ', not queued')
end
flushRun(dag, run, applyMove(dag, run, task, t, 'running', at))
redis.call('HSET', tis, task, encodeTi(t))
publishTask(dag, run, task)
return 1
