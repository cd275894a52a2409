#!lua
-- syncDags(dags) — ARGV[3] count n, then 9 arguments per DAG: dag_id, spec_json, schedule,
-- schedule_timezone, start_date, end_date ('' = none), catchup (0/1), max_active_runs, tenant.
-- Not fenced (a person's command). One script, so all DAGs register at once or none does.
-- A DAG whose JSON differs from its current version gets version current+1 (versions count from
-- 1); an identical one is left alone. The schedule fields the store indexes are those of the
-- current version (the tenant too). Returns, per DAG, {version, changed (0/1)}.
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local base = 4 + i * 9
  local dag = ARGV[base]
  local json = ARGV[base + 1]
  local key = dagKey(dag)
  local current = tonumber(redis.call('HGET', key, 'version') or '0')
  local same = false
  if current > 0 then
    same = (redis.call('HGET', dagVersionsKey(dag), tostring(current)) == json)
  end
  if same then
    -- A DAG registered before tenants were stored gets its tenant field now (no new version).
    if redis.call('HEXISTS', key, 'tenant') == 0 then redis.call('HSET', key, 'tenant', ARGV[base + 8]) end
    out[#out + 1] = current
    out[#out + 1] = 0
  else
    local v = current + 1
    redis.call('HSET', dagVersionsKey(dag), tostring(v), json)
    redis.call('HSET', key, 'dag_id', dag, 'version', tostring(v), 'schedule', ARGV[base + 2],
      'schedule_timezone', ARGV[base + 3], 'start_date', ARGV[base + 4], 'end_date', ARGV[base + 5],
      'catchup', ARGV[base + 6], 'max_active_runs', ARGV[base + 7], 'tenant', ARGV[base + 8])
    if current == 0 then
      redis.call('HSET', key, 'paused', '0', 'ever_run', '0', 'last_scheduled_logical', '')
      redis.call('ZADD', K_DAGS, 0, dag)
    end
    publishDag(dag)
    out[#out + 1] = v
    out[#out + 1] = 1
  end
end
return out
