#!lua
-- cancelRun(request) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] note, ARGV[6] at. Not fenced (a
-- person's command, `runs cancel`). A queued or running run ends failed (ended_at := at, note
-- `note`, out of the active index); its queued and running instances become failed
-- (max_tries := try, ended_at stamped, note `note`), those not started (none, scheduled,
-- up_for_retry) skipped (note `note`, ended_at stamped as every entry into a
-- finished state is); finished instances stay. NOTFOUND for an unknown run,
-- CONFLICT for a finished one. Returns {run state, moved task ids in the run's order...}.
local dag, run, note, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = runKey(dag, run)
local state = redis.call('HGET', key, 'state')
if not state then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if state == 'success' or state == 'failed' then
  return redis.error_reply('CONFLICT run "' .. run .. '" already finished (' .. state .. ')')
end
local list, corrupt = instancesInOrder(dag, run)
if not list then return corrupt end
local changed = {}
local delta = 0
for _, e in ipairs(list) do
  local from = e.t[F_STATE]
  local to = nil
  if from == 'queued' or from == 'running' then
    to = 'failed'
  elseif from == 'none' or from == 'scheduled' or from == 'up_for_retry' then
    to = 'skipped'
  end
  if to then
    delta = delta + personEnd(dag, run, e.task, e.t, to, note, at)
    changed[#changed + 1] = e.task
  end
end
personFinishRun(dag, run, delta, 'failed', note, at)
return outcomeReply('failed', changed)
