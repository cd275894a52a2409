#!lua
-- deleteDag(dag_id), its last step — ARGV[3] dag_id. Not fenced (a person's command, `dags
-- delete`). Removes the DAG, every version, every run left with its instances, claims and index
-- entries, in one step, and publishes d:<dag>. NOTFOUND for an unknown DAG; CONFLICT (nothing
-- removed) while a run of it is queued or running. The run uid counter stays: uids are never issued
-- again. Returns how many runs it removed.
--
-- The store first removes the DAG's finished runs in slices (delete_dag_runs.lua), so this step
-- finds only the runs that came or finished meanwhile: one script over a DAG of 100,000 runs held
-- Redis for ~5 s.
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
for _, encRun in ipairs(runs) do removeRun(dag, dec(encRun)) end
redis.call('DEL', dk, dagVersionsKey(dag), runsKey)
redis.call('ZREM', K_DAGS, dag)
publishDag(dag)
return #runs
