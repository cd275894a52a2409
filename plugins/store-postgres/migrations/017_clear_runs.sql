-- 017: clear_runs, several runs cleared in one call (SDK 3.9, store.h Store::clearRuns). `runs clear
-- --dag D --from T --to T` over thousands of runs called clear_tasks once per run, each its own
-- transaction: a round trip, a commit with its WAL flush, and a turn of the notify lock per run.
--
-- Each run is still 004's clear_tasks, in a block of its own: a queued run (LF003), an unknown run or
-- task (LF002) or any other refusal is answered with its SQLSTATE and message and undoes only its own
-- writes; the others commit together. Run i (1-based) clears the p_task_count[i] tasks that follow
-- those of the runs before it in p_tasks and p_retries, with its own failed_only, note and time. The
-- runs are cleared in (dag, run) order, whatever order they came in, so two calls in flight lock
-- their runs in the same order (016's cancel_runs does the same). One row per run, out_index its
-- place in the arrays: the run's state and the tasks moved, or the refusal.

CREATE FUNCTION clear_runs(p_dag text[], p_run text[], p_task_count integer[], p_tasks text[], p_retries integer[],
                           p_failed_only boolean[], p_note text[], p_at bigint[])
  RETURNS TABLE (out_index integer, run_state text, changed text[], refused_sqlstate text, refused_message text)
  LANGUAGE plpgsql AS $$
DECLARE
  i integer;
  first_task integer[];  -- where run i's tasks start in p_tasks
  next integer := 1;
BEGIN
  IF cardinality(p_task_count) IS DISTINCT FROM cardinality(p_dag)
     OR coalesce((SELECT sum(c) FROM unnest(p_task_count) AS c), 0) <> cardinality(p_tasks)
     OR cardinality(p_retries) <> cardinality(p_tasks) THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005',
      MESSAGE = 'clear_runs: the task counts do not add up to the tasks given';
  END IF;
  FOR i IN 1 .. coalesce(cardinality(p_dag), 0) LOOP
    first_task[i] := next;
    next := next + p_task_count[i];
  END LOOP;
  FOR i IN SELECT o FROM generate_subscripts(p_dag, 1) AS o ORDER BY p_dag[o], p_run[o], o LOOP
    out_index := i;
    refused_sqlstate := NULL;
    refused_message := NULL;
    BEGIN
      SELECT c.run_state, c.changed INTO run_state, changed
        FROM clear_tasks(p_dag[i], p_run[i],
                         coalesce(p_tasks[first_task[i] : first_task[i] + p_task_count[i] - 1], '{}'),
                         coalesce(p_retries[first_task[i] : first_task[i] + p_task_count[i] - 1], '{}'),
                         p_failed_only[i], p_note[i], p_at[i]) c;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS refused_sqlstate = RETURNED_SQLSTATE, refused_message = MESSAGE_TEXT;
      run_state := NULL;
      changed := NULL;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
