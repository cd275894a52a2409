#!lua
-- deleteFinishedRuns(before, max) — ARGV[3] before (microseconds), ARGV[4] the most runs to delete
-- in this call. Not fenced (a person's command: `leoflow store clean`). Deletes success and failed
-- runs whose ended_at is before `before`, with their instances and index entries; the DAG keeps
-- ever_run and last_scheduled_logical, so a cleaned schedule does not fire its old slots again.
-- Returns how many runs it deleted; the caller calls again while a call deletes `max`.
local before, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local deleted = 0
for _, ref in ipairs(redis.call('ZRANGE', K_RUNS_BY_LOGICAL, 0, -1)) do
  if deleted >= max then break end
  local key = P .. ':run:' .. ref
  local f = redis.call('HMGET', key, 'dag_id', 'run_id', 'state', 'ended_at')
  if f[1] and (f[3] == 'success' or f[3] == 'failed') and f[4] and f[4] ~= '' and tonumber(f[4]) < before then
    local dag, run = f[1], f[2]
    local tis = tisKey(dag, run)
    for _, task in ipairs(redis.call('HKEYS', tis)) do
      local member = ref .. ':' .. enc(task)
      redis.call('ZREM', K_QUEUED_TIS, member)
      redis.call('ZREM', K_RUNNING_TIS, member)
    end
    redis.call('DEL', key, tis, execKey(dag, run))
    redis.call('ZREM', K_RUNS_BY_LOGICAL, ref)
    redis.call('ZREM', K_ACTIVE_RUNS, ref)
    redis.call('ZREM', dagRunsKey(dag), enc(run))
    redis.call('SREM', runIdKey(run), dag)
    deleted = deleted + 1
  end
end
return deleted
