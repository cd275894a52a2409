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
-- The reports are written in the order of (dag, run, task, position), whatever order they came in, so
-- two batches in flight lock their instances in the same order and never wait for each other in a
-- circle. (Against another writer that locks several instances — a person's command, the scheduler's
-- batch — PostgreSQL breaks a circle after deadlock_timeout by failing one side; if that is a report
-- here, only that report is answered 40P01, unavailable, and its executor sends it again.)
-- One row per report, in the order given: a NULL sqlstate when it was accepted.

CREATE OR REPLACE FUNCTION report_batch(p_finished boolean[], p_dag text[], p_run text[], p_task text[],
                                        p_try integer[], p_at bigint[], p_execution text[], p_to text[],
                                        p_exit integer[], p_message text[])
  RETURNS TABLE (refused_sqlstate text, refused_message text)
  LANGUAGE plpgsql AS $$
DECLARE
  i integer;
  states_ text[] := '{}';
  messages_ text[] := '{}';
  state_ text;
  message_ text;
BEGIN
  FOR i IN SELECT o FROM generate_subscripts(p_finished, 1) AS o ORDER BY p_dag[o], p_run[o], p_task[o], o LOOP
    BEGIN
      IF p_finished[i] THEN
        PERFORM report_finished(p_dag[i], p_run[i], p_task[i], p_try[i], p_at[i], p_execution[i], p_to[i],
                                p_exit[i], p_message[i]);
      ELSE
        PERFORM report_running(p_dag[i], p_run[i], p_task[i], p_try[i], p_at[i], p_execution[i]);
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS state_ = RETURNED_SQLSTATE, message_ = MESSAGE_TEXT;
      states_[i] := state_;
      messages_[i] := message_;
    END;
  END LOOP;
  RETURN QUERY SELECT states_[o], messages_[o] FROM generate_subscripts(p_finished, 1) AS o ORDER BY o;
END $$;
