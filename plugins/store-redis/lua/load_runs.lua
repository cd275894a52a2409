#!lua flags=no-writes
-- loadRuns(keys) — ARGV[3..] pairs of dag_id, run_id. One consistent snapshot of each run with all
-- its task instances, in one round trip. Per run: {0} when it does not exist, else
-- {1, <the 14 run fields below>, {task_id, record, ...}, {task_id, execution id, ...}}: the
-- instances and the claims of their current attempts (TaskInstance::execution_id).
local RUN_FIELDS = {'dag_id', 'run_id', 'dag_version', 'state', 'trigger', 'logical_date',
  'queued_at', 'started_at', 'ended_at', 'conf', 'note', 'active', 'uid', 'tenant'}
local out = {}
local i = 3
while i + 1 <= #ARGV do
  local dag, run = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', runKey(dag, run), unpack(RUN_FIELDS))
  if not f[1] then
    out[#out + 1] = {0}
  else
    local item = {1}
    for j = 1, #RUN_FIELDS do item[#item + 1] = f[j] or '' end
    item[#item + 1] = redis.call('HGETALL', tisKey(dag, run))
    item[#item + 1] = redis.call('HGETALL', execKey(dag, run))
    out[#out + 1] = item
  end
  i = i + 2
end
return out
