-- 012: a task that becomes ready while its executor has room reaches `queued` in one row write. The
-- scheduler sends such a task as two writes of one batch, none → scheduled then scheduled → queued
-- (store.h: a batch applies in order, each write seeing the ones before it). Each write used to be
-- its own UPDATE, and each moved the row between partial indexes (task_instances_in_flight,
-- task_instances_queued): the first UPDATE's row version was dead on arrival. A fan-out paid it once
-- per task — one of the four row moves a task makes on its way to the end.
--
-- What is stored and answered is unchanged: the row ends `queued` with scheduled_at = queued_at = the
-- batch's time, both history rows are written, each write is answered applied, and the one change
-- message is the one the two publishes made before (PostgreSQL delivers a payload once per
-- transaction). The pair is still a compare-and-set on (none, try): if the row is not there, the first
-- write is refused and the second is tried on its own, exactly as before.

CREATE FUNCTION queue_ready_task(p_uid bigint, p_dag text, p_run text, p_task text, p_try integer, p_at bigint,
                                 p_note_scheduled text, p_note_queued text, p_term bigint) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  at_ timestamptz := us_ts(p_at);
BEGIN
  -- move_task's columns for none → scheduled followed by scheduled → queued: the stamps, and the
  -- note of the last write that carries one.
  UPDATE task_instances SET
    state = 'queued',
    scheduled_at = at_,
    queued_at = at_,
    note = CASE WHEN coalesce(p_note_queued, '') <> '' THEN p_note_queued
                WHEN coalesce(p_note_scheduled, '') <> '' THEN p_note_scheduled
                ELSE note END
    WHERE run_uid = p_uid AND task_id = p_task AND state = 'none' AND try_number = p_try;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note, execution_id)
    VALUES (p_uid, p_task, p_try, 'none', 'scheduled', at_, 'scheduler', p_term, coalesce(p_note_scheduled, ''), NULL),
           (p_uid, p_task, p_try, 'scheduled', 'queued', at_, 'scheduler', p_term, coalesce(p_note_queued, ''), NULL);
  PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task) || ':' || p_term::text);
  RETURN true;
END $$;

-- 004's apply_transitions, with the pair above written at once.
CREATE OR REPLACE FUNCTION apply_transitions(p_term bigint, p_dag text, p_run text, p_at bigint, p_tasks text[],
                                             p_from text[], p_try integer[], p_to text[], p_note text[],
                                             p_exhaust boolean[]) RETURNS boolean[]
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  out_ boolean[] := '{}';
  ok boolean;
  n integer := coalesce(array_length(p_tasks, 1), 0);
  i integer := 1;
BEGIN
  PERFORM check_term(p_term);
  uid_ := run_uid_of(p_dag, p_run, true);
  WHILE i <= n LOOP
    -- none → scheduled and scheduled → queued are both in task_moves; neither exhausts retries.
    IF i < n AND p_from[i] = 'none' AND p_to[i] = 'scheduled' AND NOT p_exhaust[i]
       AND p_tasks[i + 1] = p_tasks[i] AND p_try[i + 1] = p_try[i]
       AND p_from[i + 1] = 'scheduled' AND p_to[i + 1] = 'queued' AND NOT p_exhaust[i + 1] THEN
      IF queue_ready_task(uid_, p_dag, p_run, p_tasks[i], p_try[i], p_at, p_note[i], p_note[i + 1], p_term) THEN
        out_ := out_ || true || true;
        i := i + 2;
        CONTINUE;
      END IF;
      -- Refused: the first write is, the second is tried below on the next turn, as before.
      out_ := out_ || false;
      i := i + 1;
      CONTINUE;
    END IF;
    ok := (NOT p_exhaust[i] OR p_to[i] = 'failed')
          AND EXISTS (SELECT 1 FROM task_moves WHERE from_state = p_from[i] AND to_state = p_to[i]);
    IF ok THEN
      ok := move_task(uid_, p_dag, p_run, p_tasks[i], p_from[i], p_try[i], p_to[i], p_at, p_note[i],
                      p_exhaust[i], false, NULL, 'scheduler', p_term);
    END IF;
    out_ := out_ || ok;
    i := i + 1;
  END LOOP;
  RETURN out_;
END $$;
