-- 009: load_task_instances (Store::loadTaskInstances, the scheduler's read of the instances a change
-- names, and the stop watcher's read of the attempts its executors hold) reads each instance by its
-- primary key, whatever the table's statistics say.
--
-- The single statement it replaces joined `ti.run_uid = r.uid AND ti.task_id = ANY($3)`. Right after
-- a large run is materialized the statistics still describe the table as it was (autovacuum's
-- ANALYZE comes later), so the planner believes a run has a few dozen instances and reads the whole
-- run instead: a bitmap scan of the primary key on run_uid alone, then every instance of the run
-- filtered by the ids. In bench/e2e_bench.py's fan-out of 20,000 that was ~27,000 index entries and
-- 20,000 rows per call however few ids it asked for (~5 on average; auto_explain: Bitmap Heap Scan,
-- Recheck Cond (run_uid = r.uid), Rows Removed by Filter 19,951), over ~11,000 calls.
--
-- Here each id is one lookup with both key columns bound, a plan the planner cannot beat with any
-- estimate (one row, unique), cached once per session as a generic plan. Every lookup sees the
-- snapshot of the calling statement (a STABLE function takes none of its own), so the answer is
-- still one snapshot. Same answer as before: one row per instance found (in the order asked), one
-- row with a NULL task when the run has none of them, no row at all when the run does not exist.
CREATE FUNCTION load_task_instances(p_dag text, p_run text, p_tasks text[])
  RETURNS TABLE (o_task_id text, o_state text, o_try_number integer, o_max_tries integer, o_scheduled_at bigint,
                 o_queued_at bigint, o_started_at bigint, o_ended_at bigint, o_last_heartbeat_at bigint,
                 o_exit_code integer, o_note text, o_execution_id text)
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  uid_ bigint;
  id_ text;
  any_ boolean := false;
BEGIN
  SELECT r.uid INTO uid_ FROM runs r WHERE r.dag_id = p_dag AND r.run_id = p_run;
  IF uid_ IS NULL THEN
    RETURN;
  END IF;
  FOREACH id_ IN ARRAY coalesce(p_tasks, '{}') LOOP
    RETURN QUERY
      SELECT ti.task_id, ti.state, ti.try_number, ti.max_tries, ts_us(ti.scheduled_at), ts_us(ti.queued_at),
             ts_us(ti.started_at), ts_us(ti.ended_at), ts_us(ti.last_heartbeat_at), ti.exit_code, ti.note,
             ti.execution_id
        FROM task_instances ti WHERE ti.run_uid = uid_ AND ti.task_id = id_;
    any_ := any_ OR FOUND;
  END LOOP;
  IF NOT any_ THEN
    RETURN NEXT;  -- every output column NULL: the run exists but has none of the tasks
  END IF;
END $$;
