#!lua
-- applyTransitions(term, run, writes, at) — ARGV[3] term, ARGV[4] dag_id, ARGV[5] run_id,
-- ARGV[6] at, then 6 arguments per write: task_id, from, try_number, to, note, exhaust (0/1).
-- Fenced. What can refuse the whole call (the term, an unknown run) is checked before the first
-- write, so the batch lands entirely or not at all. Each write is then a compare-and-set on
-- (state, try_number) of its own, and is refused on its own when the transition table forbids the
-- move (ARCHITECTURE §8.2) or exhaust_retries comes without the target failed; writes apply in
-- order, so a later write sees an earlier one. Returns one 1/0 per write: applied or not.
local err = termError(ARGV[3])
if err then return redis.error_reply(err) end
local dag, run, at = ARGV[4], ARGV[5], ARGV[6]
local key = runKey(dag, run)
if redis.call('EXISTS', key) == 0 then
  return redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
end
local n = (#ARGV - 6) / 6
local tis = tisKey(dag, run)
local out = {}
local delta = 0
for w = 0, n - 1 do
  local b = 7 + w * 6
  local task, from, try, to, note, exhaust =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local legal = canMove(from, to) and (exhaust ~= '1' or to == 'failed')
  local raw = legal and redis.call('HGET', tis, task)
  local t = raw and decodeTi(raw)
  if t and t[F_STATE] == from and t[F_TRY] == try then
    delta = delta + applyMove(dag, run, task, t, to, at)
    if exhaust == '1' then t[F_MAX] = t[F_TRY] end
    if note ~= '' then t[F_NOTE] = note end
    redis.call('HSET', tis, task, encodeTi(t))
    publishTaskByTerm(dag, run, task, ARGV[3])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
flushRun(dag, run, delta)
return out
