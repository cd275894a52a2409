#!lua flags=no-writes
-- loadRuns(keys) — ARGV[3..] pairs of dag_id, run_id. One consistent snapshot of each run with all
-- its task instances, in one round trip. Per run: the integer 0 when it does not exist, else one
-- string of length-prefixed fields ("<length>:<bytes>", records.h unpackFields): the 14 run fields
-- below, the number of instance fields then {task_id, record, ...}, the number of claim fields then
-- {task_id, execution id, ...} (the claims of the current attempts: TaskInstance::execution_id).
-- One string a run instead of a nested array: a new leader reads every active run, and the client
-- library then allocates one reply object a run instead of ~40 (issue 14 §3, the takeover's cost).
local RUN_FIELDS = {'dag_id', 'run_id', 'dag_version', 'state', 'trigger', 'logical_date',
  'queued_at', 'started_at', 'ended_at', 'conf', 'note', 'active', 'uid', 'tenant'}
local out = {}
local i = 3
while i + 1 <= #ARGV do
  local dag, run = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', runKey(dag, run), unpack(RUN_FIELDS))
  if not f[1] then
    out[#out + 1] = 0
  else
    local parts = {}
    local function put(s)
      parts[#parts + 1] = #s
      parts[#parts + 1] = ':'
      parts[#parts + 1] = s
    end
    for j = 1, #RUN_FIELDS do put(f[j] or '') end
    for _, hash in ipairs({tisKey(dag, run), execKey(dag, run)}) do
      local pairs_ = redis.call('HGETALL', hash)
      put(tostring(#pairs_))
      for j = 1, #pairs_ do put(pairs_[j]) end
    end
    out[#out + 1] = table.concat(parts)
  end
  i = i + 2
end
return out
