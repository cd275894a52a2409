-- 008: the executors' two reports find their instance by its primary key again, whatever the table's
-- statistics say.
--
-- 005's guarded UPDATEs said `ti.state = 'queued'` (report_running) and `ti.state = 'running'`
-- (report_finished). A constant there proves the predicate of 001's partial indexes, so the planner may
-- reach the row through task_instances_in_flight (run_uid) — the run's scheduled, queued, running and
-- up_for_retry entries, live or dead, read until the one asked for turns up — or through
-- task_instances_queued / task_instances_running, every queued or running entry of the installation,
-- dead ones included. Which one it takes depends on the statistics of the moment. In a fan-out of N
-- every child is scheduled at once, so the run's in-flight entries number ~N, and the queued and
-- running entries pile up faster than vacuum removes them: in bench/e2e_bench.py's fan-out of 20,000
-- (LEOFLOW_BENCH_PGSS=1) the two reports read 27.5 million index entries through those three indexes,
-- ~1,370 per task (in_flight 8,376 per scan, running 2,643, queued 600); with this migration, in a run
-- two minutes before on the same build, 0.17 million, all of them the reapers' listings.
--
-- The guard is now written `state IS NOT DISTINCT FROM '...'`: the same test (state is NOT NULL), but
-- one the planner cannot prove a partial index's predicate from, so the only index it can use is the
-- primary key (run_uid, task_id) with both columns bound: one entry per call, in every plan. What each
-- call writes, refuses and publishes is 005's.

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
    PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
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
      PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
      RETURN;
    END IF;
  END IF;
  -- The guard did not hold (or an unusual target): 003's function says why.
  PERFORM report_finished_checked(p_dag, p_run, p_task, p_try, p_at, p_execution, p_to, p_exit, p_message);
END $$;
