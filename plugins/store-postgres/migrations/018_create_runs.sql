-- 018: create_runs, several runs created in one call (SDK 3.10, store.h Store::createRuns). `dags
-- backfill` of 10,000 slots called create_run 10,000 times, each its own transaction: a round trip
-- and a commit with its WAL flush per run.
--
-- Each run is still 004's create_run, in a block of its own: a taken run id or a held logical date
-- (LF004), an unknown DAG or version (LF002), a fenced term (LF001) or any other refusal is answered
-- with its SQLSTATE and message and undoes only its own insert; the others commit together, and a
-- run sees those created before it in the call. The runs are created DAG by DAG (in dag id order, so
-- two calls in flight lock their DAGs' rows in the same order) and, within a DAG, in the order given:
-- what a run can clash with — a run id, a logical date — belongs to its DAG, so each answer is the
-- one the order given would make. One row per run, out_index its place in the arrays: its uid, or
-- the refusal.

CREATE FUNCTION create_runs(p_term bigint, p_dag text[], p_run text[], p_version integer[], p_trigger text[],
                            p_logical bigint[], p_conf text[], p_queued_at bigint[], p_tenant text[])
  RETURNS TABLE (out_index integer, uid bigint, refused_sqlstate text, refused_message text)
  LANGUAGE plpgsql AS $$
DECLARE
  i integer;
BEGIN
  FOR i IN SELECT o FROM generate_subscripts(p_dag, 1) AS o ORDER BY p_dag[o], o LOOP
    out_index := i;
    refused_sqlstate := NULL;
    refused_message := NULL;
    BEGIN
      uid := create_run(p_term, p_dag[i], p_run[i], p_version[i], p_trigger[i], p_logical[i], p_conf[i],
                        p_queued_at[i], p_tenant[i]);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS refused_sqlstate = RETURNED_SQLSTATE, refused_message = MESSAGE_TEXT;
      uid := NULL;
    END;
    RETURN NEXT;
  END LOOP;
END $$;

-- create_run's check for a held logical date reaches the run by runs_by_dag_logical in every plan.
-- A session plans a function's statements once and keeps the generic plan; made while the DAG had
-- few runs, that plan walked the DAG's runs along (dag_id, run_id)'s unique index instead, and kept
-- doing so as a backfill added thousands: each run read every run of its DAG before it (a backfill of
-- 10,000 slots read ~50 million index entries and took ~10 s). Planned for each call, the statements
-- see the table as it is.
ALTER FUNCTION create_run(bigint, text, text, integer, text, bigint, text, bigint, text)
  SET plan_cache_mode = force_custom_plan;
