-- 015: the leader's run start (materialize_run) and run move (set_run_state) name the term that
-- wrote them in their change-feed message, r:<dag>:<run>:<term> (SDK 3.7, store.h
-- Change::leader_term), as 006 did for apply_transitions' t: messages. The leader mirrors both into its
-- cache when the call returns, so it skips their echoes instead of reading the run back: a run of
-- 20,000 tasks was read whole again right after its start. Every other r: message (a run created,
-- reaped, cleared, marked or cancelled) names no term, as before.
--
-- 002's two functions with the published message changed, nothing else.

CREATE OR REPLACE FUNCTION materialize_run(p_term bigint, p_dag text, p_run text, p_at bigint, p_tasks text[],
                                p_max_tries integer[]) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  st text;
BEGIN
  PERFORM check_term(p_term);
  uid_ := run_uid_of(p_dag, p_run, true);
  SELECT state INTO st FROM runs WHERE uid = uid_;
  IF st <> 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('run "%s" is %s, not queued', p_run, st);
  END IF;
  PERFORM 1 FROM task_instances WHERE run_uid = uid_ LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('run "%s" already has task instances', p_run);
  END IF;
  INSERT INTO task_instances (run_uid, task_id, seq, state, try_number, max_tries)
    SELECT uid_, t.task_id, (t.ord - 1)::integer, 'none', 1, t.max_tries
    FROM unnest(p_tasks, p_max_tries) WITH ORDINALITY AS t(task_id, max_tries, ord);
  UPDATE runs SET state = 'running', started_at = us_ts(p_at) WHERE uid = uid_;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run) || ':' || p_term);
END $$;

CREATE OR REPLACE FUNCTION set_run_state(p_term bigint, p_dag text, p_run text, p_from text, p_to text, p_at bigint,
                              p_note text) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  st text;
BEGIN
  PERFORM check_term(p_term);
  PERFORM 1 FROM run_moves WHERE from_state = p_from AND to_state = p_to;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = format('illegal run move %s -> %s', p_from, p_to);
  END IF;
  uid_ := run_uid_of(p_dag, p_run, true);
  SELECT state INTO st FROM runs WHERE uid = uid_;
  IF st <> p_from THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('run "%s" is %s, not %s', p_run, st, p_from);
  END IF;
  UPDATE runs SET state = p_to,
    started_at = CASE WHEN p_to = 'running' THEN us_ts(p_at) ELSE started_at END,
    ended_at = CASE WHEN p_to IN ('success', 'failed') THEN us_ts(p_at) ELSE ended_at END,
    queued_at = CASE WHEN p_to = 'queued' THEN coalesce(queued_at, us_ts(p_at)) ELSE queued_at END,
    note = CASE WHEN p_note <> '' THEN p_note ELSE note END
    WHERE uid = uid_;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run) || ':' || p_term);
END $$;
