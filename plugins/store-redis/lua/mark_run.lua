#!lua
-- markRun(request) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] to (success or failed), ARGV[6] note,
-- ARGV[7] at. Not fenced (a person's command, `runs mark`). Every unfinished instance (none,
-- scheduled, queued, running, up_for_retry) moves to `to` keeping its try, ended_at stamped, note
-- `note` (failed: max_tries := try); then the run moves to `to` with ended_at := at, note `note`
-- and started_at := at if it never started, and leaves the active index. INVALID for another
-- target, NOTFOUND for an unknown run, CONFLICT when the run is already in `to`.
-- Returns {run state, moved task ids in the run's order...}.
local dag, run, to, note, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if to ~= 'success' and to ~= 'failed' then
  return redis.error_reply('INVALID a run can be marked success or failed, not ' .. to)
end
local key = runKey(dag, run)
local f = redis.call('HMGET', key, 'state', 'started_at')
if not f[1] then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if f[1] == to then
  return redis.error_reply('CONFLICT run "' .. run .. '" is already ' .. to)
end
local list, corrupt = instancesInOrder(dag, run)
if not list then return corrupt end
local changed = {}
local delta = 0
for _, e in ipairs(list) do
  if not TERMINAL[e.t[F_STATE]] then
    delta = delta + personEnd(dag, run, e.task, e.t, to, note, at)
    changed[#changed + 1] = e.task
  end
end
if not f[2] or f[2] == '' then redis.call('HSET', key, 'started_at', at) end
personFinishRun(dag, run, delta, to, note, at)
return outcomeReply(to, changed)
