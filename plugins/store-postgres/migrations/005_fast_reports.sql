-- 005: the executors' two reports on the path between dependent tasks (issue 14 §2) take a fast path:
-- one guarded UPDATE — the compare-and-set itself — then the history row and the message, instead of
-- locking the instance (SELECT ... FOR UPDATE through current_attempt), checking it, and updating it
-- through move_task. Under READ COMMITTED the UPDATE's guard is re-checked against a concurrent
-- writer's committed row, so of two racing writers exactly one applies, as before. Only when the guard
-- does not hold does the call run 003's function, kept under a new name and unchanged, which says why
-- (LF002, LF003) or accepts a repeated claim; what each call writes, refuses and publishes is the same
-- as 003's.

ALTER FUNCTION report_running(text, text, text, integer, bigint, text) RENAME TO report_running_checked;
ALTER FUNCTION report_finished(text, text, text, integer, bigint, text, text, integer, text)
  RENAME TO report_finished_checked;

-- The claim: queued → running under this execution (store.h reportRunning).
CREATE FUNCTION report_running(p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
                               p_execution text)
  RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  at_ timestamptz := us_ts(p_at);
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
  -- The guard did not hold: 003's function says why, or accepts the same execution's claim again.
  PERFORM report_running_checked(p_dag, p_run, p_task, p_try, p_at, p_execution);
END $$;

-- running → success or failed, from the execution that claimed the attempt (store.h reportFinished).
CREATE FUNCTION report_finished(p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
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
  -- The guard did not hold (or an unusual target): 003's function says why.
  PERFORM report_finished_checked(p_dag, p_run, p_task, p_try, p_at, p_execution, p_to, p_exit, p_message);
END $$;
