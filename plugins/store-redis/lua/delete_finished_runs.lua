#!lua
-- deleteFinishedRuns(before), one slice — ARGV[3] before (microseconds), ARGV[4] the most runs to
-- delete in this call, ARGV[5] the cursor's score ('' = the start), ARGV[6] how many runs kept at
-- exactly that score earlier calls already read, ARGV[7] the most runs this call may read. Not
-- fenced (a person's command: `leoflow store clean`). Deletes success and failed runs whose ended_at
-- is before `before`, with their instances and index entries; the DAG keeps ever_run and
-- last_scheduled_logical, so a cleaned schedule does not fire its old slots again.
--
-- Walks P:runs:by_logical oldest first from the cursor, reading at most ARGV[7] runs: among
-- 100,000 active runs a call that read them all held Redis for ~0.4 s, and each slice started over
-- from the top. A deleted run leaves the index, so the cursor counts only the runs kept at its score.
-- Returns 1 when the index is exhausted (else 0), how many runs it deleted, and the next cursor's
-- score and count.
local before, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local min, skip, budget = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if min == '' then min = '-inf' end
local page = redis.call('ZRANGEBYSCORE', K_RUNS_BY_LOGICAL, min, '+inf', 'WITHSCORES', 'LIMIT', skip, budget)
local deleted, read = 0, 0
for i = 1, #page, 2 do
  local ref, score = page[i], page[i + 1]
  read = read + 1
  if score ~= min then min, skip = score, 0 end
  local key = P .. ':run:' .. ref
  local f = redis.call('HMGET', key, 'dag_id', 'run_id', 'state', 'ended_at')
  if f[1] and (f[3] == 'success' or f[3] == 'failed') and f[4] and f[4] ~= '' and tonumber(f[4]) < before then
    removeRun(f[1], f[2])
    deleted = deleted + 1
    if deleted >= max then break end
  else
    skip = skip + 1
  end
end
-- Exhausted only when the index had no more to give and this call read all it gave.
local done = 0
if #page < 2 * budget and read == #page / 2 then done = 1 end
return {done, deleted, min, tostring(skip)}
