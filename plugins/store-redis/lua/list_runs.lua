#!lua flags=no-writes
-- listRuns(filter), one page — ARGV[3] '1' to filter by DAG, ARGV[4] dag_id, ARGV[5] state ('' =
-- any), ARGV[6] the most runs still wanted, ARGV[7] '1' to filter by tenant, ARGV[8] tenant,
-- ARGV[9] logical_since ('' = no bound), ARGV[10] the page's upper score bound (logical_until on
-- the first page, '' = none; then the cursor), both inclusive, ARGV[11] how many runs scored
-- exactly at that upper bound earlier pages already read, ARGV[12] the most runs this page may read.
--
-- Newest logical date first: the window is a score range of the index (P:runs:by_logical, or the
-- DAG's runs index). A page reads at most ARGV[12] runs of it, matching or not, so a filter that
-- matches few of 100,000 runs never keeps Redis from its other clients (the leader's lease
-- renewal among them) for long; the caller asks again from the cursor. The cursor is a score and
-- the runs already read at that score (runs of one logical date come in the index's order), not an
-- offset, so each page starts where the last ended without walking the index from its top.
--
-- Returns '1' when the window is exhausted (else '0'), the next cursor's score and count, then per
-- matching run the 13 fields below (a run stored before uids and tenants has neither: '' reads as
-- uid 0 and tenant "default").
local FIELDS = {'dag_id', 'run_id', 'dag_version', 'state', 'trigger', 'logical_date', 'queued_at',
  'started_at', 'ended_at', 'conf', 'note', 'uid', 'tenant'}
local byDag, dag, state, wanted = ARGV[3] == '1', ARGV[4], ARGV[5], tonumber(ARGV[6])
local byTenant, tenant = ARGV[7] == '1', ARGV[8]
local min, max, skip, budget = ARGV[9], ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
if min == '' then min = '-inf' end
if max == '' then max = '+inf' end
local index = K_RUNS_BY_LOGICAL
if byDag then index = dagRunsKey(dag) end
local out = {'0', max, tostring(skip)}
local page = redis.call('ZREVRANGEBYSCORE', index, max, min, 'WITHSCORES', 'LIMIT', skip, budget)
local found = 0
for i = 1, #page, 2 do
  local ref, score = page[i], page[i + 1]
  if score == max then skip = skip + 1 else max, skip = score, 1 end
  local key
  if byDag then key = P .. ':run:' .. enc(dag) .. ':' .. ref else key = P .. ':run:' .. ref end
  local f = redis.call('HMGET', key, unpack(FIELDS))
  local runTenant = f[13]
  if not runTenant or runTenant == '' then runTenant = 'default' end
  if f[1] and (state == '' or f[4] == state) and (not byTenant or runTenant == tenant) then
    for j = 1, #FIELDS do out[#out + 1] = f[j] or '' end
    found = found + 1
    if found >= wanted then break end
  end
end
-- (A page cut short by the limit ends the listing anyway.)
if #page < 2 * budget then out[1] = '1' end
out[2], out[3] = max, tostring(skip)
return out
