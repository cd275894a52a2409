#!lua flags=no-writes
-- listRuns(filter) — ARGV[3] '1' to filter by DAG, ARGV[4] dag_id, ARGV[5] state ('' = any),
-- ARGV[6] limit, ARGV[7] '1' to filter by tenant, ARGV[8] tenant, ARGV[9] logical_since ('' = no
-- bound), ARGV[10] logical_until ('' = no bound), both inclusive. Newest logical date first: the
-- logical-date bounds are a range of the index (P:runs:by_logical, or the DAG's runs index), read
-- in batches. Flat, per run, the 13 fields below (a run stored before uids and tenants has neither:
-- '' reads as uid 0 and tenant "default").
local FIELDS = {'dag_id', 'run_id', 'dag_version', 'state', 'trigger', 'logical_date', 'queued_at',
  'started_at', 'ended_at', 'conf', 'note', 'uid', 'tenant'}
local byDag, dag, state, limit = ARGV[3] == '1', ARGV[4], ARGV[5], tonumber(ARGV[6])
local byTenant, tenant = ARGV[7] == '1', ARGV[8]
local min, max = ARGV[9], ARGV[10]
if min == '' then min = '-inf' end
if max == '' then max = '+inf' end
local index = K_RUNS_BY_LOGICAL
if byDag then index = dagRunsKey(dag) end
local out = {}
local found = 0
local start = 0
local batch = 256
while found < limit do
  local refs = redis.call('ZREVRANGEBYSCORE', index, max, min, 'LIMIT', start, batch)
  if #refs == 0 then break end
  for _, ref in ipairs(refs) do
    local key
    if byDag then key = P .. ':run:' .. enc(dag) .. ':' .. ref else key = P .. ':run:' .. ref end
    local f = redis.call('HMGET', key, unpack(FIELDS))
    local runTenant = f[13]
    if not runTenant or runTenant == '' then runTenant = 'default' end
    if f[1] and (state == '' or f[4] == state) and (not byTenant or runTenant == tenant) then
      for j = 1, #FIELDS do out[#out + 1] = f[j] or '' end
      found = found + 1
      if found >= limit then break end
    end
  end
  start = start + batch
end
return out
