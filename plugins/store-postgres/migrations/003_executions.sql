-- 003: executions (ARCHITECTURE §8.13). Every start of an attempt's code is an execution with an id
-- its dispatcher makes; the running report is its claim. The instance records which execution
-- claimed its current attempt, heartbeats and the finished report must come from that execution,
-- and the history says which execution made each executor move.

ALTER TABLE task_instances ADD COLUMN execution_id text;
ALTER TABLE task_history ADD COLUMN execution_id text;

-- move_task with the execution that made the move (NULL for decisions); the 002 signature stays as a
-- wrapper, so apply_transitions and reap_run are unchanged.
CREATE FUNCTION move_task(p_uid bigint, p_dag text, p_run text, p_task text, p_from text, p_try integer,
                          p_to text, p_at bigint, p_note text, p_exhaust boolean, p_set_exit boolean,
                          p_exit integer, p_source text, p_term bigint, p_execution text) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  at_ timestamptz := us_ts(p_at);
  fresh boolean := p_from = 'up_for_retry' AND p_to <> 'failed';
  terminal boolean := p_to IN ('success', 'failed', 'skipped', 'upstream_failed');
BEGIN
  UPDATE task_instances SET
    state = p_to,
    try_number = CASE WHEN fresh THEN try_number + 1 ELSE try_number END,
    max_tries = CASE WHEN p_exhaust THEN try_number ELSE max_tries END,
    scheduled_at = CASE WHEN p_to = 'scheduled' THEN at_ WHEN fresh THEN NULL ELSE scheduled_at END,
    queued_at = CASE WHEN p_to = 'queued' THEN at_
                     WHEN fresh OR (p_from = 'queued' AND p_to = 'scheduled') THEN NULL
                     ELSE queued_at END,
    started_at = CASE WHEN p_to = 'running' THEN at_ WHEN fresh THEN NULL ELSE started_at END,
    last_heartbeat_at = CASE WHEN p_to = 'running' THEN at_ WHEN fresh THEN NULL ELSE last_heartbeat_at END,
    ended_at = CASE WHEN terminal THEN at_ WHEN fresh THEN NULL ELSE ended_at END,
    exit_code = CASE WHEN p_set_exit THEN p_exit WHEN fresh THEN NULL ELSE exit_code END,
    note = CASE WHEN coalesce(p_note, '') <> '' THEN p_note WHEN fresh THEN '' ELSE note END,
    -- The claim records its execution; a new attempt starts unclaimed.
    execution_id = CASE WHEN p_to = 'running' THEN p_execution WHEN fresh THEN NULL ELSE execution_id END
    WHERE run_uid = p_uid AND task_id = p_task AND state = p_from AND try_number = p_try;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note, execution_id)
    VALUES (p_uid, p_task, p_try, p_from, p_to, at_, p_source, p_term, coalesce(p_note, ''), p_execution);
  PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION move_task(p_uid bigint, p_dag text, p_run text, p_task text, p_from text, p_try integer,
                                     p_to text, p_at bigint, p_note text, p_exhaust boolean, p_set_exit boolean,
                                     p_exit integer, p_source text, p_term bigint) RETURNS boolean
  LANGUAGE sql AS $$
  SELECT move_task(p_uid, p_dag, p_run, p_task, p_from, p_try, p_to, p_at, p_note, p_exhaust, p_set_exit, p_exit,
                   p_source, p_term, NULL::text)
$$;

DROP FUNCTION report_running(text, text, text, integer, bigint);
DROP FUNCTION report_heartbeat(text, text, text, integer, bigint);
DROP FUNCTION report_finished(text, text, text, integer, bigint, text, integer, text);
DROP FUNCTION current_attempt(text, text, text, integer);

-- The current attempt an executor reports about, locked, with the execution that claimed it;
-- NOTFOUND or CONFLICT when there is none with that try (guarded by try_number, not fenced: §8.7).
CREATE FUNCTION current_attempt(p_dag text, p_run text, p_task text, p_try integer,
                                OUT uid_ bigint, OUT state_ text, OUT execution_ text)
  LANGUAGE plpgsql AS $$
DECLARE
  try_ integer;
BEGIN
  SELECT r.uid, ti.state, ti.try_number, ti.execution_id INTO uid_, state_, try_, execution_
    FROM runs r JOIN task_instances ti ON ti.run_uid = r.uid
    WHERE r.dag_id = p_dag AND r.run_id = p_run AND ti.task_id = p_task
    FOR UPDATE OF ti;
  IF uid_ IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002',
      MESSAGE = format('task "%s" of run "%s" of dag "%s" does not exist', p_task, p_run, p_dag);
  END IF;
  IF try_ <> p_try THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is not current (try %s)', p_try, try_);
  END IF;
END $$;

-- The attempt of a report after the claim: running, and claimed by this very execution.
CREATE FUNCTION claimed_attempt(p_dag text, p_run text, p_task text, p_try integer, p_execution text, p_what text)
  RETURNS bigint
  LANGUAGE plpgsql AS $$
DECLARE
  a record;
BEGIN
  SELECT * INTO a FROM current_attempt(p_dag, p_run, p_task, p_try);
  IF a.state_ = 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('attempt %s is queued: no execution claimed it, so no %s is accepted', p_try, p_what);
  ELSIF a.state_ <> 'running' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is %s, it has ended', p_try, a.state_);
  ELSIF a.execution_ IS DISTINCT FROM p_execution THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is claimed by execution %s, not %s', p_try,
      coalesce(a.execution_, 'none'), p_execution);
  END IF;
  RETURN a.uid_;
END $$;

-- The claim: queued → running under this execution; the same execution again on a running attempt
-- is accepted and changes nothing (a retry after a lost reply, an adopting dispatcher).
CREATE FUNCTION report_running(p_dag text, p_run text, p_task text, p_try integer, p_at bigint, p_execution text)
  RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  a record;
BEGIN
  SELECT * INTO a FROM current_attempt(p_dag, p_run, p_task, p_try);
  IF a.state_ = 'running' AND a.execution_ = p_execution THEN
    RETURN;
  ELSIF a.state_ = 'running' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is claimed by execution %s, not %s', p_try,
      coalesce(a.execution_, 'none'), p_execution);
  ELSIF a.state_ <> 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is %s, not queued', p_try, a.state_);
  END IF;
  PERFORM move_task(a.uid_, p_dag, p_run, p_task, 'queued', p_try, 'running', p_at, '', false, false, NULL,
                    'executor', NULL, p_execution);
END $$;

-- Publishes nothing: a heartbeat changes nothing a planner reads.
CREATE FUNCTION report_heartbeat(p_dag text, p_run text, p_task text, p_try integer, p_at bigint, p_execution text)
  RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
BEGIN
  uid_ := claimed_attempt(p_dag, p_run, p_task, p_try, p_execution, 'heartbeat');
  UPDATE task_instances SET last_heartbeat_at = us_ts(p_at) WHERE run_uid = uid_ AND task_id = p_task;
END $$;

CREATE FUNCTION report_finished(p_dag text, p_run text, p_task text, p_try integer, p_at bigint, p_execution text,
                                p_to text, p_exit integer, p_message text) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
BEGIN
  uid_ := claimed_attempt(p_dag, p_run, p_task, p_try, p_execution, 'finished report');
  PERFORM 1 FROM task_moves WHERE from_state = 'running' AND to_state = p_to;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = format('illegal move running -> %s', p_to);
  END IF;
  PERFORM move_task(uid_, p_dag, p_run, p_task, 'running', p_try, p_to, p_at, p_message, false, true, p_exit,
                    'executor', NULL, p_execution);
END $$;
