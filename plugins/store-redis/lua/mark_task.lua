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
local f, refused = runWithInstances(dag, run)
if not f then return refused end
local raw = redis.call('HGET', tisKey(dag, run), task)
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
flushRun(dag, run, personEnd(dag, run, task, t, to, note, at))
local state = f[1]
if state == 'success' or state == 'failed' then
  reopenRun(dag, run, f[2], at)
  state = 'running'
end
publishRun(dag, run)
return outcomeReply(state, {task})
