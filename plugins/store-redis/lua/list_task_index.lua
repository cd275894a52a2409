#!lua flags=no-writes
-- listAgentLostCandidates / listDispatchLostCandidates — ARGV[3] 'running' or 'queued',
-- ARGV[4] limit. Reads the index of running instances (by last heartbeat) or queued instances
-- (by queued_at), oldest first. Flat, per instance: dag_id, run_id, task_id, try_number, stamp.
local index = K_QUEUED_TIS
if ARGV[3] == 'running' then index = K_RUNNING_TIS end
local limit = tonumber(ARGV[4])
local out = {}
if limit <= 0 then return out end
local members = redis.call('ZRANGE', index, 0, limit - 1)
for _, m in ipairs(members) do
  local dag, run, task = splitTaskRef(m)
  if dag then
    local raw = redis.call('HGET', tisKey(dag, run), task)
    local t = raw and decodeTi(raw)
    if t and t[F_STATE] == ARGV[3] then
      local stamp = t[F_QUEUED]
      if ARGV[3] == 'running' then stamp = t[F_HB] end
      out[#out + 1] = dag
      out[#out + 1] = run
      out[#out + 1] = task
      out[#out + 1] = t[F_TRY]
      out[#out + 1] = stamp
    end
  end
end
return out
