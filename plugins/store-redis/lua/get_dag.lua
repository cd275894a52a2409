#!lua flags=no-writes
-- getDag(dag_id, version) — ARGV[3] dag_id, ARGV[4] version ('' = the current one).
-- Returns {version, paused, spec_json}; NOTFOUND when the DAG or the version does not exist.
local dag = ARGV[3]
local f = redis.call('HMGET', dagKey(dag), 'version', 'paused')
if not f[1] then return redis.error_reply('NOTFOUND dag "' .. dag .. '" does not exist') end
local v = ARGV[4]
if v == '' then v = f[1] end
local json = redis.call('HGET', dagVersionsKey(dag), v)
if not json then
  return redis.error_reply('NOTFOUND dag "' .. dag .. '" has no version ' .. v)
end
return {v, f[2] or '0', json}
