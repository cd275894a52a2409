#!lua
-- reportHeartbeat(execution, at) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id, ARGV[6] try,
-- ARGV[7] at, ARGV[8] execution id. Stamps last_heartbeat_at of the current attempt while it is
-- running under this execution's claim (§8.13: a queued attempt was claimed by nobody, so its beat
-- is refused), and moves it in the heartbeat index. Publishes nothing: a heartbeat changes no
-- state, so it must not wake the scheduler.
local dag, run, task, try, at, execution = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local tis = tisKey(dag, run)
local t, refused = claimedAttempt(dag, run, task, try, execution, 'heartbeat')
if not t then return refused end
t[F_HB] = at
redis.call('HSET', tis, task, encodeTi(t))
redis.call('ZADD', K_RUNNING_TIS, at, runRef(dag, run) .. ':' .. enc(task))
return 1
