#!lua
-- clearTasks(request) — ARGV[3] dag_id, ARGV[4] run_id, ARGV[5] failed_only (0/1), ARGV[6] note,
-- ARGV[7] at, then pairs of task_id, retries. Not fenced (a person's command, `runs clear`).
-- Moves the listed instances that are not in none (with failed_only: failed or upstream_failed)
-- back to none. One that started (started_at set) begins a new attempt: try + 1 and
-- max_tries := old try + retries + 1; one that never started keeps both. Every per-attempt field
-- and the claim (execution id) are cleared, the note becomes `note`. When anything was cleared the
-- run becomes running from any state (ended_at cleared, started_at := at, back in the active
-- index). NOTFOUND for an unknown run or a task not in it, CONFLICT for a queued run (no instances
-- yet); both before the first write. Returns {run state, cleared task ids in the run's order...}.
local dag, run, failedOnly, note, at = ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6], ARGV[7]
local f, refused = runWithInstances(dag, run)
if not f then return refused end
local tis = tisKey(dag, run)
local listed = {}
local list = {}
for i = 8, #ARGV, 2 do
  local task = ARGV[i]
  local raw = redis.call('HGET', tis, task)
  if not raw then
    return redis.error_reply('NOTFOUND task "' .. task .. '" is not in run "' .. run .. '" of dag "' .. dag .. '"')
  end
  if not listed[task] then
    listed[task] = true
    local t = decodeTi(raw)
    if not t then
      return redis.error_reply('task "' .. task .. '" of run "' .. run .. '" of dag "' .. dag ..
        '" has a corrupt record')
    end
    list[#list + 1] = {task = task, t = t, retries = tonumber(ARGV[i + 1]) or 0, seq = tonumber(t[F_SEQ]) or 0}
  end
end
table.sort(list, function(a, b) return a.seq < b.seq end)

local changed = {}
local delta = 0
local exec = execKey(dag, run)
for _, e in ipairs(list) do
  local t = e.t
  local from = t[F_STATE]
  if from ~= 'none' and (not failedOnly or from == 'failed' or from == 'upstream_failed') then
    delta = delta + personMove(dag, run, e.task, t, 'none', at, false)
    if t[F_STARTED] ~= '' then
      local try = tonumber(t[F_TRY])
      t[F_MAX] = tostring(try + e.retries + 1)
      t[F_TRY] = tostring(try + 1)
    end
    for i = F_SCHED, F_EXIT do t[i] = '' end
    t[F_NOTE] = note
    redis.call('HSET', tis, e.task, encodeTi(t))
    redis.call('HDEL', exec, e.task)
    publishTask(dag, run, e.task)
    changed[#changed + 1] = e.task
  end
end
local state = f[1]
if #changed > 0 then
  flushRun(dag, run, delta)
  reopenRun(dag, run, f[2], at)
  redis.call('HSET', runKey(dag, run), 'started_at', at)
  state = 'running'
  publishRun(dag, run)
end
return outcomeReply(state, changed)
