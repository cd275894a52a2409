#!lua flags=no-writes
-- scheduledDags() — every unpaused DAG with a non-empty schedule (BEHAVIOUR §3.1). Flat, per DAG:
-- dag_id, version, schedule, schedule_timezone, start_date, end_date, catchup, max_active_runs,
-- last_scheduled_logical ('' = none; scheduled runs only, BEHAVIOUR §10 item 26), ever_run,
-- tenant ('' = registered before tenants were stored: "default").
local out = {}
for _, dag in ipairs(redis.call('ZRANGE', K_DAGS, 0, -1)) do
  local f = redis.call('HMGET', dagKey(dag), 'version', 'schedule', 'schedule_timezone',
    'start_date', 'end_date', 'catchup', 'max_active_runs', 'last_scheduled_logical', 'ever_run',
    'paused', 'tenant')
  if f[10] ~= '1' and f[2] and f[2] ~= '' then
    out[#out + 1] = dag
    for i = 1, 9 do out[#out + 1] = f[i] or '' end
    out[#out + 1] = f[11] or ''
  end
end
return out
