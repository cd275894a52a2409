#!lua
-- reportFinished(execution, outcome, at) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id,
-- ARGV[6] try, ARGV[7] at, ARGV[8] execution id, ARGV[9] 'success' or 'failed', ARGV[10] exit code
-- ('' = none), ARGV[11] message. running → success or failed on the current attempt claimed by this
-- execution (§8.13); stamps ended_at, records the exit code and the message as the note (when
-- non-empty).
local dag, run, task, try, at, execution, to, exit, msg =
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local tis = tisKey(dag, run)
local t, refused = claimedAttempt(dag, run, task, try, execution, 'finished report')
if not t then return refused end
if not canMove(t[F_STATE], to) then
  return redis.error_reply('INVALID illegal move ' .. t[F_STATE] .. ' -> ' .. to)
end
flushRun(dag, run, applyMove(dag, run, task, t, to, at))
t[F_EXIT] = exit
if msg ~= '' then t[F_NOTE] = msg end
redis.call('HSET', tis, task, encodeTi(t))
publishTaskByExecution(dag, run, task, execution)
return 1
