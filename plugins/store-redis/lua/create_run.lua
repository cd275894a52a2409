#!lua
-- createRun(term?, run) — ARGV[3] term ('' = a person's trigger, not fenced), ARGV[4] dag_id,
-- ARGV[5] run_id, ARGV[6] dag_version ('0' = the current version), ARGV[7] trigger
-- ('scheduled'|'manual'), ARGV[8] logical_date, ARGV[9] conf_json, ARGV[10] queued_at.
-- Creates a queued run and indexes it; NOTFOUND when the DAG or the version does not exist,
-- EXISTS when the run id is taken for that DAG (run ids are unique per DAG, §8.5).
-- Returns the dag version the run is bound to.
if ARGV[3] ~= '' then
  local err = termError(ARGV[3])
  if err then return redis.error_reply(err) end
end
local dag, run = ARGV[4], ARGV[5]
local current = redis.call('HGET', dagKey(dag), 'version')
if not current then return redis.error_reply('NOTFOUND dag "' .. dag .. '" does not exist') end
local version = ARGV[6]
if version == '0' then version = current end
if redis.call('HEXISTS', dagVersionsKey(dag), version) == 0 then
  return redis.error_reply('NOTFOUND dag "' .. dag .. '" has no version ' .. version)
end
local key = runKey(dag, run)
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('EXISTS run "' .. run .. '" already exists for dag "' .. dag .. '"')
end
local logical, queuedAt = ARGV[8], ARGV[10]
redis.call('HSET', key, 'dag_id', dag, 'run_id', run, 'dag_version', version, 'state', 'queued',
  'trigger', ARGV[7], 'logical_date', logical, 'queued_at', queuedAt, 'started_at', '',
  'ended_at', '', 'conf', ARGV[9], 'note', '', 'active', '0', 'activity', '')
local ref = runRef(dag, run)
redis.call('ZADD', K_ACTIVE_RUNS, queuedAt, ref)
redis.call('ZADD', K_RUNS_BY_LOGICAL, logical, ref)
redis.call('ZADD', dagRunsKey(dag), logical, enc(run))
redis.call('SADD', runIdKey(run), dag)
local dk = dagKey(dag)
redis.call('HSET', dk, 'ever_run', '1')
if ARGV[7] == 'scheduled' then
  -- Only scheduled runs move the schedule (BEHAVIOUR §10 item 26).
  local last = redis.call('HGET', dk, 'last_scheduled_logical') or ''
  redis.call('HSET', dk, 'last_scheduled_logical', maxStamp(last, logical))
end
publishRun(dag, run)
return tonumber(version)
