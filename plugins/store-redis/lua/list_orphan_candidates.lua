#!lua flags=no-writes
-- listOrphanCandidates, one page — ARGV[3] ZSCAN cursor ('0' to start), ARGV[4] runs per page.
-- Running runs whose `active` counter (instances in scheduled, queued, running or up_for_retry, kept
-- by every script) is zero (BEHAVIOUR §4.2, §10 item 5). last_activity is the latest of the run's
-- queued and started stamps and its `activity` field (the latest started/ended stamp any of its
-- instances was given, kept by every script), so no instance is read here.
--
-- A page of the active-run index, not all of it: a sweep of 100,000 runs in one script kept Redis
-- from every other client for over half a second. The caller walks the cursor to '0', drops runs a
-- rehash returned twice, and sorts (stalest first, then the index's order: queued_at, then ref).
-- Returns the next cursor, then per candidate: dag_id, run_id, last_activity ('' = none), its
-- queued_at score as Redis printed it, and its ref. Only state and active are read for the rest.
local page = redis.call('ZSCAN', K_ACTIVE_RUNS, ARGV[3], 'COUNT', tonumber(ARGV[4]))
local out = {page[1]}
local entries = page[2]
for i = 1, #entries, 2 do
  local ref = entries[i]
  local run = P .. ':run:' .. ref
  local f = redis.call('HMGET', run, 'state', 'active')
  if f[1] == 'running' and tonumber(f[2] or '0') == 0 then
    local g = redis.call('HMGET', run, 'dag_id', 'run_id', 'queued_at', 'started_at', 'activity')
    if g[1] then
      out[#out + 1] = g[1]
      out[#out + 1] = g[2]
      out[#out + 1] = maxStamp(maxStamp(g[3], g[4]), g[5])
      out[#out + 1] = entries[i + 1]
      out[#out + 1] = ref
    end
  end
end
return out
