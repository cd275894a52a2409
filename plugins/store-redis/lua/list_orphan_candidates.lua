#!lua flags=no-writes
-- listOrphanCandidates(limit) — ARGV[3] limit. Running runs whose `active` counter (instances in
-- scheduled, queued, running or up_for_retry, kept by every script) is zero (BEHAVIOUR §4.2, §10
-- item 5), stalest first, then oldest queued. last_activity is the latest of the run's queued and
-- started stamps and its `activity` field (the latest started/ended stamp any of its instances was
-- given, kept by every script), so no instance is read here. Flat, per run: dag_id, run_id,
-- last_activity ('' = none).
local limit = tonumber(ARGV[3])
local found = {}
for i, ref in ipairs(redis.call('ZRANGE', K_ACTIVE_RUNS, 0, -1)) do
  local f = redis.call('HMGET', P .. ':run:' .. ref, 'dag_id', 'run_id', 'state', 'active', 'queued_at',
    'started_at', 'activity')
  if f[1] and f[3] == 'running' and tonumber(f[4] or '0') == 0 then
    local last = maxStamp(maxStamp(f[5], f[6]), f[7])
    local key = -math.huge
    if last ~= '' then key = tonumber(last) end
    found[#found + 1] = {key = key, order = i, dag = f[1], run = f[2], last = last}
  end
end
table.sort(found, function(a, b)
  if a.key ~= b.key then return a.key < b.key end
  return a.order < b.order
end)
local out = {}
for i = 1, math.min(limit, #found) do
  out[#out + 1] = found[i].dag
  out[#out + 1] = found[i].run
  out[#out + 1] = found[i].last
end
return out
