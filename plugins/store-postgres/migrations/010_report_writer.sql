-- 010: an executor's claim or finished report that moves its instance names the execution in its change
-- message, x:<dag>:<run>:<task>:<execution> (store.h Change::execution_id, SDK 3.5): the host mirrors the
-- reports of its own executions into its cache when they are accepted, and skips their echoes instead of
-- reading each instance back. The two functions are 008's with only their publish changed; what they
-- write, refuse and look up is the same. The slower paths of 003 (report_running_checked,
-- report_finished_checked: a repeated claim, a refusal's reason) publish as before.

CREATE OR REPLACE FUNCTION report_running(p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
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
      AND ti.state IS NOT DISTINCT FROM 'queued' AND ti.try_number = p_try
    RETURNING r.uid INTO uid_;
  IF FOUND THEN
    INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note, execution_id)
      VALUES (uid_, p_task, p_try, 'queued', 'running', at_, 'executor', NULL, '', p_execution);
    PERFORM publish('x:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task) || ':' || enc(p_execution));
    RETURN;
  END IF;
  -- The guard did not hold: 003's function says why, or accepts the same execution's claim again.
  PERFORM report_running_checked(p_dag, p_run, p_task, p_try, p_at, p_execution);
END $$;

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
        AND ti.state IS NOT DISTINCT FROM 'running' AND ti.try_number = p_try AND ti.execution_id = p_execution
      RETURNING r.uid INTO uid_;
    IF FOUND THEN
      INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note,
                                execution_id)
        VALUES (uid_, p_task, p_try, 'running', p_to, at_, 'executor', NULL, coalesce(p_message, ''), p_execution);
      PERFORM publish('x:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task) || ':' || enc(p_execution));
      RETURN;
    END IF;
  END IF;
  -- The guard did not hold (or an unusual target): 003's function says why.
  PERFORM report_finished_checked(p_dag, p_run, p_task, p_try, p_at, p_execution, p_to, p_exit, p_message);
END $$;
