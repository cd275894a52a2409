#!lua
-- deleteDag(dag_id), one slice before its last step (delete_dag.lua) — ARGV[3] dag_id, ARGV[4]
-- 'check' or 'remove', ARGV[5] the rank in the DAG's runs index to start at, ARGV[6] the most runs
-- to read. Not fenced (a person's command).
--
-- A DAG's runs go a slice per call, so no script holds Redis for long (a DAG of 100,000 runs in one
-- script: ~5 s, and the leader's lease was lost). 'check' slices read the whole index first and
-- answer CONFLICT (nothing removed) at the first queued or running run, as the last step would;
-- 'remove' slices then remove the finished runs, leaving any run that became active meanwhile for
-- the last step to refuse. NOTFOUND for an unknown DAG. Returns 1 when the slice reached the
-- index's end (else 0), the rank the next slice starts at (the runs a 'remove' slice left keep
-- their ranks) and how many runs it removed.
local dag, mode, start, budget = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('EXISTS', dagKey(dag)) == 0 then
  return redis.error_reply('NOTFOUND dag "' .. dag .. '" does not exist')
end
local refs = redis.call('ZRANGE', dagRunsKey(dag), start, start + budget - 1)
local kept, removed = 0, 0
for _, encRun in ipairs(refs) do
  local state = redis.call('HGET', P .. ':run:' .. enc(dag) .. ':' .. encRun, 'state')
  if state == 'queued' or state == 'running' then
    if mode == 'check' then
      return redis.error_reply('CONFLICT dag "' .. dag .. '" has a ' .. state .. ' run "' .. dec(encRun) ..
        '"; cancel it first')
    end
    kept = kept + 1
  elseif mode == 'remove' then
    removeRun(dag, dec(encRun))
    removed = removed + 1
  end
end
local nextStart = start + kept
if mode == 'check' then nextStart = start + #refs end
local done = 0
if #refs < budget then done = 1 end
return {done, nextStart, removed}
