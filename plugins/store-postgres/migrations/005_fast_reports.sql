-- 005: the executors' two reports on the path between dependent tasks (issue 14 §2) take a fast path:
-- one guarded UPDATE — the compare-and-set itself — then the history row and the message, instead of
-- locking the instance (SELECT ... FOR UPDATE through current_attempt), checking it, and updating it
-- through move_task. Under READ COMMITTED the UPDATE's guard is re-checked against a concurrent
-- writer's committed row, so of two racing writers exactly one applies, as before. Only when the guard
-- does not hold does the call take the 003 path, unchanged, which says why (LF002, LF003) or accepts a
-- repeated claim; what each call writes, refuses and publishes is the same as 003's.

-- The claim: queued → running under this execution (store.h reportRunning).
CREATE OR REPLACE FUNCTION report_running(p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
                                          p_execution text)
  RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  at_ timestamptz := us_ts(p_at);
  a record;
BEGIN
  UPDATE task_instances ti SET state = 'running', started_at = at_, last_heartbeat_at = at_, execution_id = p_execution
    FROM runs r
    WHERE r.dag_id = p_dag AND r.run_id = p_run AND ti.run_uid = r.uid AND ti.task_id = p_task
      AND ti.state = 'queued' AND ti.try_number = p_try
    RETURNING r.uid INTO uid_;
  IF FOUND THEN
    INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note, execution_id)
      VALUES (uid_, p_task, p_try, 'queued', 'running', at_, 'executor', NULL, '', p_execution);
    PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
    RETURN;
  END IF;
  -- The guard did not hold: 003's path says why, or accepts the same execution's claim again.
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

-- running → success or failed, from the execution that claimed the attempt (store.h reportFinished).
CREATE OR REPLACE FUNCTION report_finished(p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
                                           p_execution text, p_to text, p_exit integer, p_message text)
  RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  at_ timestamptz := us_ts(p_at);
BEGIN
  IF p_to IN ('success', 'failed') THEN
    UPDATE task_instances ti SET state = p_to, ended_at = at_, exit_code = p_exit,
        note = CASE WHEN coalesce(p_message, '') <> '' THEN p_message ELSE ti.note END
      FROM runs r
      WHERE r.dag_id = p_dag AND r.run_id = p_run AND ti.run_uid = r.uid AND ti.task_id = p_task
        AND ti.state = 'running' AND ti.try_number = p_try AND ti.execution_id = p_execution
      RETURNING r.uid INTO uid_;
    IF FOUND THEN
      INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note,
                                execution_id)
        VALUES (uid_, p_task, p_try, 'running', p_to, at_, 'executor', NULL, coalesce(p_message, ''), p_execution);
      PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
      RETURN;
    END IF;
  END IF;
  -- The guard did not hold (or an unusual target): 003's path says why.
  uid_ := claimed_attempt(p_dag, p_run, p_task, p_try, p_execution, 'finished report');
  PERFORM 1 FROM task_moves WHERE from_state = 'running' AND to_state = p_to;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = format('illegal move running -> %s', p_to);
  END IF;
  PERFORM move_task(uid_, p_dag, p_run, p_task, 'running', p_try, p_to, p_at, p_message, false, true, p_exit,
                    'executor', NULL, p_execution);
END $$;
