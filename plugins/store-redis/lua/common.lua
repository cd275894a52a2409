-- Shared prelude of every store-redis script. gen_lua_scripts.py pastes it into each script right
-- after the script's shebang line, so every script is self-contained for EVAL/EVALSHA.
--
-- Calling convention (every script): ARGV[1] = key prefix, ARGV[2] = change-feed channel; the
-- script's own arguments start at ARGV[3]. Keys are built here from the prefix and the ids (ids are
-- percent-encoded so that ':' can separate key segments; see README.md "Key layout"), which is fine
-- for a standalone Redis (hiredis 0.14 has no cluster support anyway).
--
-- Numbers: every timestamp is an integer count of microseconds since the epoch, kept as the decimal
-- STRING the caller sent. Lua numbers are doubles and tostring()/cjson print them with 14 significant
-- digits (1.7000000001235e+15), which would lose the microseconds, so no timestamp is ever formatted
-- from a Lua number. Small integers (terms, try numbers, counters) are safe to format.

local P = ARGV[1]
local CHANNEL = ARGV[2]

-- Percent-encodes '%', ':' and control characters: the encoded id never contains ':'.
local function enc(s)
  return (string.gsub(s, '[%%:%c]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

local function dec(s)
  return (string.gsub(s, '%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end

local K_TERM = P .. ':term'
local K_LIVENESS = P .. ':liveness'
local K_DAGS = P .. ':dags'
local K_ACTIVE_RUNS = P .. ':runs:active'
local K_RUNS_BY_LOGICAL = P .. ':runs:by_logical'
local K_RUNNING_TIS = P .. ':tis:running'
local K_QUEUED_TIS = P .. ':tis:queued'
-- The run uid counter (RunRecord::uid): INCR only, never deleted (not by delete_dag either), so a
-- uid is never issued twice.
local K_RUN_UID = P .. ':run_uid'

local function dagKey(dag) return P .. ':dag:' .. enc(dag) end
local function dagVersionsKey(dag) return dagKey(dag) .. ':versions' end
local function dagRunsKey(dag) return dagKey(dag) .. ':runs' end
local function runRef(dag, run) return enc(dag) .. ':' .. enc(run) end
local function runKey(dag, run) return P .. ':run:' .. runRef(dag, run) end
local function tisKey(dag, run) return runKey(dag, run) .. ':tis' end
-- task id → the execution that claimed its current attempt (ARCHITECTURE §8.13)
local function execKey(dag, run) return runKey(dag, run) .. ':exec' end
local function runIdKey(run) return P .. ':runid:' .. enc(run) end

-- Change feed (README.md "Change feed"): t:<dag>:<run>:<task>, r:<dag>:<run>, d:<dag>; a task moved
-- by apply_transitions adds the term that wrote it, t:<dag>:<run>:<task>:<term>, and so does a run
-- started or moved by the leader, r:<dag>:<run>:<term> (store.h Change::leader_term: the leader
-- skips its own echoes).
local function publishTask(dag, run, task)
  redis.call('PUBLISH', CHANNEL, 't:' .. runRef(dag, run) .. ':' .. enc(task))
end
local function publishTaskByTerm(dag, run, task, term)
  redis.call('PUBLISH', CHANNEL, 't:' .. runRef(dag, run) .. ':' .. enc(task) .. ':' .. term)
end
-- An executor's report that moved the instance names its execution (store.h Change::execution_id).
local function publishTaskByExecution(dag, run, task, execution)
  redis.call('PUBLISH', CHANNEL, 'x:' .. runRef(dag, run) .. ':' .. enc(task) .. ':' .. enc(execution))
end
-- A run's change goes to the runs channel too, <channel>:runs, where a subscriber that wants only
-- run changes listens (store.h subscribeRuns: `runs trigger --wait`), so it hears no task's change.
local RUNS_CHANNEL = CHANNEL .. ':runs'
local function publishRunMessage(message)
  redis.call('PUBLISH', CHANNEL, message)
  redis.call('PUBLISH', RUNS_CHANNEL, message)
end
local function publishRun(dag, run) publishRunMessage('r:' .. runRef(dag, run)) end
-- The leader's run start or run move names its term, r:<dag>:<run>:<term> (SDK 3.7).
local function publishRunByTerm(dag, run, term) publishRunMessage('r:' .. runRef(dag, run) .. ':' .. term) end
local function publishDag(dag) redis.call('PUBLISH', CHANNEL, 'd:' .. enc(dag)) end

-- Fencing (ARCHITECTURE §8.7): a decision must carry the store's current term. A lower term is a
-- deposed leader; a higher one was never issued by claim_term. Returns an error text or nil.
local function termError(term)
  local cur = tonumber(redis.call('HGET', K_TERM, 'term') or '0')
  local t = tonumber(term)
  if t == nil then return 'INVALID term "' .. tostring(term) .. '" is not a number' end
  if cur == 0 then return 'FENCED term ' .. term .. ' was never claimed (no term has been claimed)' end
  if t < cur then
    return 'FENCED term ' .. term .. ' is below the current term ' .. cur
  end
  if t > cur then
    return 'FENCED term ' .. term .. ' was never claimed (current term ' .. cur .. ')'
  end
  return nil
end

-- Legal moves: core/planning/transitions.cpp (BEHAVIOUR §1.2 + ARCHITECTURE §8.2), mirrored here so
-- that every write path, the executor reports included, refuses what the table forbids. The
-- integration tests compare this table with planning::canTransition for all 81 pairs.
local TASK_MOVES = {
  none = {scheduled = true, skipped = true, upstream_failed = true, failed = true},
  scheduled = {queued = true, failed = true},
  queued = {running = true, failed = true, up_for_retry = true, success = true, scheduled = true},
  running = {success = true, failed = true, up_for_retry = true},
  up_for_retry = {scheduled = true, queued = true, none = true, failed = true},
  success = {none = true},
  failed = {none = true, up_for_retry = true},
  skipped = {none = true},
  upstream_failed = {none = true},
}
local RUN_MOVES = {
  queued = {running = true, failed = true, success = true},
  running = {success = true, failed = true},
  success = {queued = true},
  failed = {queued = true},
}
local TERMINAL = {success = true, failed = true, skipped = true, upstream_failed = true}
-- The states that keep a run from being an orphan candidate (store.h, BEHAVIOUR §10 item 5).
local ACTIVE = {scheduled = true, queued = true, running = true, up_for_retry = true}

local function canMove(from, to)
  local row = TASK_MOVES[from]
  return row ~= nil and row[to] == true
end

-- A task instance record: 11 '|'-separated fields, the note last (it may contain '|').
local F_SEQ, F_STATE, F_TRY, F_MAX, F_SCHED, F_QUEUED, F_STARTED, F_ENDED, F_HB, F_EXIT, F_NOTE =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

local function decodeTi(s)
  local t = {}
  local pos = 1
  for i = 1, 10 do
    local e = string.find(s, '|', pos, true)
    if e == nil then return nil end
    t[i] = string.sub(s, pos, e - 1)
    pos = e + 1
  end
  t[11] = string.sub(s, pos)
  return t
end

local function encodeTi(t)
  return table.concat(t, '|', 1, 11)
end

-- The instance of an executor's report, when `try` is its current attempt; else nil and the
-- NOTFOUND or CONFLICT reply the report answers with (guarded by try_number, §8.7).
local function currentAttempt(dag, run, task, try)
  local raw = redis.call('HGET', tisKey(dag, run), task)
  if not raw then
    return nil, redis.error_reply('NOTFOUND task "' .. task .. '" of run "' .. run .. '" of dag "' .. dag ..
      '" does not exist')
  end
  local t = decodeTi(raw)
  if t[F_TRY] ~= try then
    return nil, redis.error_reply('CONFLICT attempt ' .. try .. ' is not current (try ' .. t[F_TRY] .. ')')
  end
  return t
end

-- The attempt of an execution's report after its claim: current, running and claimed by this very
-- execution (ARCHITECTURE §8.13); else nil and the reply to refuse with. `what` names the report.
local function claimedAttempt(dag, run, task, try, execution, what)
  local t, refused = currentAttempt(dag, run, task, try)
  if not t then return nil, refused end
  if t[F_STATE] == 'queued' then
    return nil, redis.error_reply('CONFLICT attempt ' .. try .. ' is queued: no execution claimed it, so no ' ..
      what .. ' is accepted')
  end
  if t[F_STATE] ~= 'running' then
    return nil, redis.error_reply('CONFLICT attempt ' .. try .. ' is ' .. t[F_STATE] .. ', it has ended')
  end
  local claimed = redis.call('HGET', execKey(dag, run), task)
  if claimed ~= execution then
    return nil, redis.error_reply('CONFLICT attempt ' .. try .. ' is claimed by execution ' .. (claimed or 'none') ..
      ', not ' .. execution)
  end
  return t
end

-- The larger of two decimal timestamps ('', nil or false = none), compared as numbers, returned
-- as given (never reformatted: see the note on numbers above).
local function maxStamp(a, b)
  if not a or a == '' then return b or '' end
  if not b or b == '' then return a end
  if tonumber(b) > tonumber(a) then return b end
  return a
end

-- The latest started/ended stamp this script wrote to an instance (a script changes one run):
-- flushRun folds it into the run's `activity` field, which listOrphanCandidates reads instead of
-- scanning every instance.
local runActivity = ''

-- Applies the side effects of a move (store.h TaskTransitionWrite) to the record `t` of task
-- `task` and keeps the queued/running indexes in step. Returns the change of the run's `active`
-- counter (-1, 0 or 1). The caller writes the record back and publishes.
local function applyMove(dag, run, task, t, to, at)
  local from = t[F_STATE]
  if from == 'up_for_retry' and to ~= 'failed' then
    -- Leaving up_for_retry for none, scheduled or queued starts the next attempt: nothing of the
    -- previous one may be mistaken for it (BEHAVIOUR §10 items 1, 3, 6). (up_for_retry → failed is
    -- a reaped run: the attempt that failed stays the current one.)
    t[F_TRY] = tostring(tonumber(t[F_TRY]) + 1)
    for i = F_SCHED, F_NOTE do t[i] = '' end
    -- The new attempt has not been claimed by anyone yet (TaskInstance::execution_id).
    redis.call('HDEL', execKey(dag, run), task)
  end
  if to == 'scheduled' then t[F_SCHED] = at end
  if to == 'queued' then t[F_QUEUED] = at end
  if from == 'queued' and to == 'scheduled' then t[F_QUEUED] = '' end
  if to == 'running' then
    t[F_STARTED] = at
    t[F_HB] = at
    runActivity = maxStamp(runActivity, at)
  end
  if TERMINAL[to] then
    t[F_ENDED] = at
    runActivity = maxStamp(runActivity, at)
  end
  t[F_STATE] = to

  local member = runRef(dag, run) .. ':' .. enc(task)
  if from == 'queued' then redis.call('ZREM', K_QUEUED_TIS, member) end
  if to == 'queued' then redis.call('ZADD', K_QUEUED_TIS, t[F_QUEUED], member) end
  if from == 'running' then redis.call('ZREM', K_RUNNING_TIS, member) end
  if to == 'running' then redis.call('ZADD', K_RUNNING_TIS, t[F_HB], member) end

  local delta = 0
  if ACTIVE[from] then delta = delta - 1 end
  if ACTIVE[to] then delta = delta + 1 end
  return delta
end

-- Writes what applyMove accumulated for the run: the change of its `active` counter and its
-- latest instance activity.
local function flushRun(dag, run, delta)
  local key = runKey(dag, run)
  if delta ~= 0 then redis.call('HINCRBY', key, 'active', delta) end
  if runActivity ~= '' then
    redis.call('HSET', key, 'activity', maxStamp(redis.call('HGET', key, 'activity') or '', runActivity))
  end
end

-- Decodes a task index member "<dag>:<run>:<task>" into its three ids.
local function splitTaskRef(member)
  local a, b, c = string.match(member, '^([^:]*):([^:]*):([^:]*)$')
  if a == nil then return nil end
  return dec(a), dec(b), dec(c)
end


-- --- A person's commands (store.h "A person's commands") ---------------------------------------

-- The run's instances in materialization order (the DAG's task order): {task = id, t = record}.
-- nil and the error reply when a record is corrupt.
local function instancesInOrder(dag, run)
  local all = redis.call('HGETALL', tisKey(dag, run))
  local list = {}
  for i = 1, #all, 2 do
    local t = decodeTi(all[i + 1])
    if not t then
      return nil, redis.error_reply('task "' .. all[i] .. '" of run "' .. run .. '" of dag "' .. dag ..
        '" has a corrupt record')
    end
    list[#list + 1] = {task = all[i], t = t, seq = tonumber(t[F_SEQ]) or 0}
  end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  return list
end

-- A person's move of one instance to `to` (their own move table, not the planner's): the try is
-- kept (no new attempt); entering success, failed, skipped or upstream_failed stamps ended_at when
-- `stamp`; the queued/running indexes follow. Returns the change of the run's `active` counter.
-- The caller sets max_tries and the note, writes the record back and publishes.
local function personMove(dag, run, task, t, to, at, stamp)
  local from = t[F_STATE]
  if stamp and TERMINAL[to] then
    t[F_ENDED] = at
    runActivity = maxStamp(runActivity, at)
  end
  t[F_STATE] = to
  local member = runRef(dag, run) .. ':' .. enc(task)
  if from == 'queued' then redis.call('ZREM', K_QUEUED_TIS, member) end
  if from == 'running' then redis.call('ZREM', K_RUNNING_TIS, member) end
  local delta = 0
  if ACTIVE[from] then delta = delta - 1 end
  if ACTIVE[to] then delta = delta + 1 end
  return delta
end

-- The reply of a person's command: the run's state after the call, then the task ids that moved.
local function outcomeReply(state, changed)
  local out = {state}
  for _, task in ipairs(changed) do out[#out + 1] = task end
  return out
end

-- A run a person's command works on the instances of: its {state, queued_at}, or nil and the error
-- reply (NOTFOUND for an unknown run, CONFLICT for a queued one: it has no task instances yet).
local function runWithInstances(dag, run)
  local f = redis.call('HMGET', runKey(dag, run), 'state', 'queued_at')
  if not f[1] then
    return nil, redis.error_reply('NOTFOUND run "' .. run .. '" of dag "' .. dag .. '" does not exist')
  end
  if f[1] == 'queued' then
    return nil, redis.error_reply('CONFLICT run "' .. run .. '" is queued: it has no task instances yet')
  end
  return f
end

-- A person ends one instance in `to` (success, failed or skipped), keeping its try: personMove with
-- ended_at stamped, failed exhausts the retries (max_tries := try), the note becomes `note`; the
-- record is written back and published. Returns the change of the run's `active` counter.
local function personEnd(dag, run, task, t, to, note, at)
  local delta = personMove(dag, run, task, t, to, at, true)
  if to == 'failed' then t[F_MAX] = t[F_TRY] end
  t[F_NOTE] = note
  redis.call('HSET', tisKey(dag, run), task, encodeTi(t))
  publishTask(dag, run, task)
  return delta
end

-- A person finishes the run in `to` (success or failed): the instances' `delta` flushed, ended_at
-- := at, note `note`, out of the active index; published.
local function personFinishRun(dag, run, delta, to, note, at)
  flushRun(dag, run, delta)
  redis.call('HSET', runKey(dag, run), 'state', to, 'ended_at', at, 'note', note)
  redis.call('ZREM', K_ACTIVE_RUNS, runRef(dag, run))
  publishRun(dag, run)
end

-- A finished run a person's command touched runs again: running, ended_at cleared, back in the
-- active index scored by its queued_at (or `at` when it has none) unless it is there. Not published.
local function reopenRun(dag, run, queuedAt, at)
  redis.call('HSET', runKey(dag, run), 'state', 'running', 'ended_at', '')
  local score = queuedAt
  if score == nil or score == '' then score = at end
  redis.call('ZADD', K_ACTIVE_RUNS, 'NX', score, runRef(dag, run))
end

-- Removes a run for good (`store clean`, `dags delete`): its hash, instances and claims, and its
-- entries in every index (the held logical date in the DAG's runs index goes with it). The run uid
-- counter is never touched. Not published: the caller publishes what its command changed.
local function removeRun(dag, run)
  local ref = runRef(dag, run)
  local tis = tisKey(dag, run)
  for _, task in ipairs(redis.call('HKEYS', tis)) do
    local member = ref .. ':' .. enc(task)
    redis.call('ZREM', K_QUEUED_TIS, member)
    redis.call('ZREM', K_RUNNING_TIS, member)
  end
  redis.call('DEL', runKey(dag, run), tis, execKey(dag, run))
  redis.call('ZREM', K_RUNS_BY_LOGICAL, ref)
  redis.call('ZREM', K_ACTIVE_RUNS, ref)
  redis.call('ZREM', dagRunsKey(dag), enc(run))
  redis.call('SREM', runIdKey(run), dag)
end
