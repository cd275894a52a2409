-- 016: cancel_runs, several runs cancelled in one call (SDK 3.8, store.h Store::cancelRuns). `dags
-- delete --force` on a DAG with 20,000 active runs called cancel_run 20,000 times, each its own
-- transaction: a round trip, a commit with its WAL flush, and a turn of the notify lock per run.
--
-- Each run is still 004's cancel_run, in a block of its own: a run that finished meanwhile (LF003),
-- one that does not exist (LF002) or any other refusal is answered with its SQLSTATE and message and
-- undoes only its own writes; the others commit together. The runs are cancelled in (dag, run) order,
-- whatever order they came in, so two calls in flight lock their runs in the same order. One row per
-- run, out_index its place in the arrays (1-based): the run's state and the tasks moved, or the refusal.

CREATE FUNCTION cancel_runs(p_dag text[], p_run text[], p_note text, p_at bigint)
  RETURNS TABLE (out_index integer, run_state text, changed text[], refused_sqlstate text, refused_message text)
  LANGUAGE plpgsql AS $$
DECLARE
  i integer;
BEGIN
  FOR i IN SELECT o FROM generate_subscripts(p_dag, 1) AS o ORDER BY p_dag[o], p_run[o], o LOOP
    out_index := i;
    refused_sqlstate := NULL;
    refused_message := NULL;
    BEGIN
      SELECT c.run_state, c.changed INTO run_state, changed FROM cancel_run(p_dag[i], p_run[i], p_note, p_at) c;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS refused_sqlstate = RETURNED_SQLSTATE, refused_message = MESSAGE_TEXT;
      run_state := NULL;
      changed := NULL;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
