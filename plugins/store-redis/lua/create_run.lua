#!lua
-- createRun(term?, run) — ARGV[3] term ('' = a person's trigger, not fenced), ARGV[4] dag_id,
-- ARGV[5] run_id, ARGV[6] dag_version ('0' = the current version), ARGV[7] trigger
-- ('scheduled'|'manual'|'backfill'), ARGV[8] logical_date, ARGV[9] conf_json, ARGV[10] queued_at,
-- ARGV[11] tenant.
-- Creates a queued run and indexes it; NOTFOUND when the DAG or the version does not exist,
-- EXISTS when the run id is taken for that DAG (run ids are unique per DAG, §8.5) or when a
-- scheduled or backfill run's logical date is already held by some run of the DAG (the DAG's
-- runs index, scored by logical date, answers that; a manual run is not checked). Issues the run's
-- uid from P:run_uid (never reused). Returns {dag version the run is bound to, uid}.
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
local logical, queuedAt, trigger = ARGV[8], ARGV[10], ARGV[7]
if trigger ~= 'manual' and redis.call('ZCOUNT', dagRunsKey(dag), logical, logical) > 0 then
  return redis.error_reply('EXISTS dag "' .. dag .. '" already has a run with the logical date of ' .. trigger ..
    ' run "' .. run .. '"')
end
local uid = redis.call('INCR', K_RUN_UID)
redis.call('HSET', key, 'dag_id', dag, 'run_id', run, 'dag_version', version, 'state', 'queued',
  'trigger', trigger, 'logical_date', logical, 'queued_at', queuedAt, 'started_at', '',
  'ended_at', '', 'conf', ARGV[9], 'note', '', 'active', '0', 'activity', '', 'uid', uid,
  'tenant', ARGV[11])
local ref = runRef(dag, run)
redis.call('ZADD', K_ACTIVE_RUNS, queuedAt, ref)
redis.call('ZADD', K_RUNS_BY_LOGICAL, logical, ref)
redis.call('ZADD', dagRunsKey(dag), logical, enc(run))
redis.call('SADD', runIdKey(run), dag)
local dk = dagKey(dag)
redis.call('HSET', dk, 'ever_run', '1')
if trigger == 'scheduled' then
  -- Only scheduled runs move the schedule (BEHAVIOUR §10 item 26).
  local last = redis.call('HGET', dk, 'last_scheduled_logical') or ''
  redis.call('HSET', dk, 'last_scheduled_logical', maxStamp(last, logical))
end
publishRun(dag, run)
return {tonumber(version), uid}
