-- 011: executor reports written together. Every claim and finished report publishes a change message,
-- and a transaction that notifies holds PostgreSQL's one notify lock from before its commit until its WAL
-- flush is done: notifying commits take turns, one flush each, whatever the number of sessions (during a
-- wide fan-out, pg_stat_activity showed ~5 sessions waiting on that lock, Lock/object, for each one
-- flushing). The plugin gathers the reports that arrive while others are being written (README.md
-- "Executor reports") and sends them in one call of report_batch: one commit, one flush, one turn of the
-- lock for all of them.
--
-- Each report is still its own compare-and-set: report_batch calls 010's report_running or
-- report_finished for it, in a block of its own, so a refused report (a stale try, another execution's
-- claim) is answered with its SQLSTATE and message and undoes only its own writes; the others commit.
-- One row per report, in the order given: a NULL sqlstate when it was accepted.

CREATE OR REPLACE FUNCTION report_batch(p_finished boolean[], p_dag text[], p_run text[], p_task text[],
                                        p_try integer[], p_at bigint[], p_execution text[], p_to text[],
                                        p_exit integer[], p_message text[])
  RETURNS TABLE (refused_sqlstate text, refused_message text)
  LANGUAGE plpgsql AS $$
DECLARE
  i integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_finished, 1), 0) LOOP
    refused_sqlstate := NULL;
    refused_message := NULL;
    BEGIN
      IF p_finished[i] THEN
        PERFORM report_finished(p_dag[i], p_run[i], p_task[i], p_try[i], p_at[i], p_execution[i], p_to[i],
                                p_exit[i], p_message[i]);
      ELSE
        PERFORM report_running(p_dag[i], p_run[i], p_task[i], p_try[i], p_at[i], p_execution[i]);
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS refused_sqlstate = RETURNED_SQLSTATE, refused_message = MESSAGE_TEXT;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
