#!lua flags=no-writes
-- listRuns(filter) — ARGV[3] '1' to filter by DAG, ARGV[4] dag_id, ARGV[5] state ('' = any),
-- ARGV[6] limit. Newest logical date first. Flat, per run, the 11 fields below.
local FIELDS = {'dag_id', 'run_id', 'dag_version', 'state', 'trigger', 'logical_date', 'queued_at',
  'started_at', 'ended_at', 'conf', 'note'}
local byDag, dag, state, limit = ARGV[3] == '1', ARGV[4], ARGV[5], tonumber(ARGV[6])
local index = K_RUNS_BY_LOGICAL
if byDag then index = dagRunsKey(dag) end
local out = {}
local found = 0
local start = 0
local batch = 256
while found < limit do
  local refs = redis.call('ZREVRANGE', index, start, start + batch - 1)
  if #refs == 0 then break end
  for _, ref in ipairs(refs) do
    local key
    if byDag then key = P .. ':run:' .. enc(dag) .. ':' .. ref else key = P .. ':run:' .. ref end
    local f = redis.call('HMGET', key, unpack(FIELDS))
    if f[1] and (state == '' or f[4] == state) then
      for j = 1, #FIELDS do out[#out + 1] = f[j] or '' end
      found = found + 1
      if found >= limit then break end
    end
  end
  start = start + batch
end
return out
