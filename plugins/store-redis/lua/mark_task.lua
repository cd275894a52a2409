#!lua
-- markTask(request) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] task_id, ARGV[6] to (success,
-- failed or skipped), ARGV[7] note, ARGV[8] at. Not fenced (a person's command, `tasks mark`).
-- Any state → `to`, keeping the try: ended_at stamped, failed exhausts the retries
-- (max_tries := try), the note becomes `note`. A finished run returns to running (ended_at
-- cleared, back in the active index) so it finalizes again. INVALID for another target, NOTFOUND
-- for an unknown run or task, CONFLICT when the run is queued or the instance is already in `to`.
-- Returns {run state, task_id}.
local dag, run, task, to, note, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if to ~= 'success' and to ~= 'failed' and to ~= 'skipped' then
  return redis.error_reply('INVALID a task can be marked success, failed or skipped, not ' .. to)
end
local key = runKey(dag, run)
local f = redis.call('HMGET', key, 'state', 'queued_at')
if not f[1] then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if f[1] == 'queued' then
  return redis.error_reply('CONFLICT run "' .. run .. '" is queued: it has no task instances yet')
end
local tis = tisKey(dag, run)
local raw = redis.call('HGET', tis, task)
if not raw then
  return redis.error_reply('NOTFOUND task "' .. task .. '" is not in run "' .. run .. '" of dag "' .. dag .. '"')
end
local t = decodeTi(raw)
if not t then
  return redis.error_reply('task "' .. task .. '" of run "' .. run .. '" of dag "' .. dag .. '" has a corrupt record')
end
if t[F_STATE] == to then
  return redis.error_reply('CONFLICT task "' .. task .. '" is already ' .. to)
end
local delta = personMove(dag, run, task, t, to, at, true)
if to == 'failed' then t[F_MAX] = t[F_TRY] end
t[F_NOTE] = note
redis.call('HSET', tis, task, encodeTi(t))
publishTask(dag, run, task)
flushRun(dag, run, delta)
local state = f[1]
if state == 'success' or state == 'failed' then
  redis.call('HSET', key, 'state', 'running', 'ended_at', '')
  local score = f[2]
  if score == nil or score == '' then score = at end
  redis.call('ZADD', K_ACTIVE_RUNS, 'NX', score, runRef(dag, run))
  state = 'running'
end
publishRun(dag, run)
return outcomeReply(state, {task})
