#!lua
-- reapRun(term, run, at, note) — ARGV[3] term, ARGV[4] dag_id, ARGV[5] run_id, ARGV[6] at,
-- ARGV[7] note. Fenced. Fails a running run and every unfinished instance of it (none, scheduled,
-- queued, running, up_for_retry) with the note, in one step (BEHAVIOUR §4.2). A run that is no
-- longer running is left alone: a finalizer won (returns 0).
local err = termError(ARGV[3])
if err then return redis.error_reply(err) end
local dag, run, at, note = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = runKey(dag, run)
local state = redis.call('HGET', key, 'state')
if not state then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
if state ~= 'running' then return 0 end
redis.call('HSET', key, 'state', 'failed', 'ended_at', at)
if note ~= '' then redis.call('HSET', key, 'note', note) end
redis.call('ZREM', K_ACTIVE_RUNS, runRef(dag, run))
local tis = tisKey(dag, run)
local all = redis.call('HGETALL', tis)
for i = 1, #all, 2 do
  local task = all[i]
  local t = decodeTi(all[i + 1])
  if t and not TERMINAL[t[F_STATE]] then
    applyMove(dag, run, task, t, 'failed', at)
    if note ~= '' then t[F_NOTE] = note end
    redis.call('HSET', tis, task, encodeTi(t))
    publishTask(dag, run, task)
  end
end
flushRun(dag, run, 0)
redis.call('HSET', key, 'active', '0')
publishRun(dag, run)
return 1
