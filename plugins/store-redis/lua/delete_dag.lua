#!lua
-- deleteDag(dag_id) — ARGV[3] dag_id. Not fenced (a person's command, `dags delete`). Removes the
-- DAG, every version, every run with its instances, claims and index entries, in one step, and
-- publishes d:<dag>. NOTFOUND for an unknown DAG; CONFLICT (nothing removed) while a run of it is
-- queued or running. The run uid counter stays: uids are never issued again. Returns how many runs
-- it removed.
local dag = ARGV[3]
local dk = dagKey(dag)
if redis.call('EXISTS', dk) == 0 then
  return redis.error_reply('NOTFOUND dag "' .. dag .. '" does not exist')
end
local runsKey = dagRunsKey(dag)
local runs = redis.call('ZRANGE', runsKey, 0, -1)
for _, encRun in ipairs(runs) do
  local state = redis.call('HGET', P .. ':run:' .. enc(dag) .. ':' .. encRun, 'state')
  if state == 'queued' or state == 'running' then
    return redis.error_reply('CONFLICT dag "' .. dag .. '" has a ' .. state .. ' run "' .. dec(encRun) ..
      '"; cancel it first')
  end
end
for _, encRun in ipairs(runs) do
  local run = dec(encRun)
  local ref = runRef(dag, run)
  local tis = tisKey(dag, run)
  for _, task in ipairs(redis.call('HKEYS', tis)) do
    local member = ref .. ':' .. enc(task)
    redis.call('ZREM', K_QUEUED_TIS, member)
    redis.call('ZREM', K_RUNNING_TIS, member)
  end
  redis.call('DEL', runKey(dag, run), tis, execKey(dag, run))
  redis.call('ZREM', K_RUNS_BY_LOGICAL, ref)
  redis.call('ZREM', K_ACTIVE_RUNS, ref)
  local ids = runIdKey(run)
  redis.call('SREM', ids, dag)
end
redis.call('DEL', dk, dagVersionsKey(dag), runsKey)
redis.call('ZREM', K_DAGS, dag)
publishDag(dag)
return #runs
