#!lua flags=no-writes
-- listActiveRuns() — runs in queued or running, oldest queued_at first. Flat, per run:
-- dag_id, run_id, dag_version, state, queued_at.
local out = {}
for _, ref in ipairs(redis.call('ZRANGE', K_ACTIVE_RUNS, 0, -1)) do
  local f = redis.call('HMGET', P .. ':run:' .. ref, 'dag_id', 'run_id', 'dag_version', 'state',
    'queued_at')
  if f[1] then
    for i = 1, 5 do out[#out + 1] = f[i] or '' end
  end
end
return out
