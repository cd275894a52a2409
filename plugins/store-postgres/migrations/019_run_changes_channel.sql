-- 019: a channel of run changes only (SDK 3.11, store.h Store::subscribeRuns). `runs trigger --wait`
-- follows one run and wakes only for a change of a run, but LISTENing on the installation's channel
-- it received every task's change of every run — in a fan-out of 1,000 tasks four messages per task,
-- each sent to its session, read and parsed, to be dropped.
--
-- Every function publishes through publish() (002), so a run's change (payload r:<dag>:<run>, with
-- the term that wrote it when a leader did, 015) now also goes to '<channel>_runs', where a
-- subscriber of run changes listens. The installation's channel carries exactly what it did. The
-- name ends in _runs, so it is never another schema's '<schema>_changes' (settings.h runChannel()).
-- PL/pgSQL, not SQL as before: a SQL function of two statements is planned again in every
-- transaction that calls it, which a fan-out paid on each of its five or so publishes per task.

CREATE OR REPLACE FUNCTION publish(payload text) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(changes_channel(), payload);
  IF starts_with(payload, 'r:') THEN
    PERFORM pg_notify(changes_channel() || '_runs', payload);
  END IF;
END $$;
