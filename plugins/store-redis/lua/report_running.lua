#!lua
-- reportRunning(execution, at) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id, ARGV[6] try,
-- ARGV[7] at, ARGV[8] execution id. The claim (ARCHITECTURE §8.13): an executor's report, guarded by
-- (try_number, state), not fenced (§8.7). queued → running, recording the execution in
-- <run>:tis:exec and stamping started_at and the first heartbeat (§8.8). The same execution again
-- on a running attempt is accepted and changes nothing (a retry after a lost reply, an adopter).
local dag, run, task, try, at, execution = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local tis = tisKey(dag, run)
local t, refused = currentAttempt(dag, run, task, try)
if not t then return refused end
local claimed = redis.call('HGET', execKey(dag, run), task)
if t[F_STATE] == 'running' and claimed == execution then return 1 end
if t[F_STATE] == 'running' then
  return redis.error_reply('CONFLICT attempt ' .. try .. ' is claimed by execution ' .. (claimed or 'none') ..
    ', not ' .. execution)
end
if t[F_STATE] ~= 'queued' then
  return redis.error_reply('CONFLICT attempt ' .. try .. ' is ' .. t[F_STATE] .. ', not queued')
end
flushRun(dag, run, applyMove(dag, run, task, t, 'running', at))
redis.call('HSET', tis, task, encodeTi(t))
redis.call('HSET', execKey(dag, run), task, execution)
publishTaskByExecution(dag, run, task, execution)
return 1
