#!lua
-- reportHeartbeat(attempt, at) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id, ARGV[6] try,
-- ARGV[7] at. Stamps last_heartbeat_at of the current attempt while it is running, or still
-- queued (a beat may overtake the running report: it is a sign of life all the same), and moves a
-- running attempt in the heartbeat index. Publishes nothing: a heartbeat changes no state, so it
-- must not wake the scheduler.
local dag, run, task, try, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local tis = tisKey(dag, run)
local t, refused = currentAttempt(dag, run, task, try)
if not t then return refused end
if t[F_STATE] ~= 'running' and t[F_STATE] ~= 'queued' then
  return redis.error_reply('CONFLICT attempt ' .. try .. ' is ' .. t[F_STATE] .. ', not running')
end
t[F_HB] = at
redis.call('HSET', tis, task, encodeTi(t))
if t[F_STATE] == 'running' then
  redis.call('ZADD', K_RUNNING_TIS, at, runRef(dag, run) .. ':' .. enc(task))
end
return 1
