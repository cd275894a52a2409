#!lua
-- setPaused(dag_id, paused) — ARGV[3] dag_id, ARGV[4] '1' or '0'. Not fenced (a person's command).
local dag = ARGV[3]
local key = dagKey(dag)
if redis.call('EXISTS', key) == 0 then
  return redis.error_reply('NOTFOUND dag "' .. dag .. '" does not exist')
end
redis.call('HSET', key, 'paused', ARGV[4])
publishDag(dag)
return 1
