#!lua flags=no-writes
-- loadTaskInstances(run, task_ids) — ARGV[3], ARGV[4]: dag_id, run_id; ARGV[5..]: task ids. One
-- consistent snapshot of those instances in one round trip, whatever the run's size: {0} when the
-- run does not exist, else {1, {record or '' per id}, {execution id or '' per id}} — '' for a task
-- the run does not have, or an attempt nobody claimed.
local dag, run = ARGV[3], ARGV[4]
if redis.call('EXISTS', runKey(dag, run)) == 0 then return {0} end
local ids = {}
for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return {1, {}, {}} end
local records = redis.call('HMGET', tisKey(dag, run), unpack(ids))
local claims = redis.call('HMGET', execKey(dag, run), unpack(ids))
for i = 1, #ids do
  records[i] = records[i] or ''
  claims[i] = claims[i] or ''
end
return {1, records, claims}
