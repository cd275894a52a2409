#!lua flags=no-writes
-- listDags() — every DAG by id: flat {dag_id, schedule, paused, version, tenant} per DAG (tenant ''
-- for a DAG registered before tenants were stored: read as "default").
local out = {}
for _, dag in ipairs(redis.call('ZRANGE', K_DAGS, 0, -1)) do
  local f = redis.call('HMGET', dagKey(dag), 'schedule', 'paused', 'version', 'tenant')
  out[#out + 1] = dag
  out[#out + 1] = f[1] or ''
  out[#out + 1] = f[2] or '0'
  out[#out + 1] = f[3] or '0'
  out[#out + 1] = f[4] or ''
end
return out
