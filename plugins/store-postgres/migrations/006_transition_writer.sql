-- 006: a task moved by the scheduler's apply_transitions names the term that wrote it in its change
-- message, t:<dag>:<run>:<task>:<term> (store.h Change::leader_term, SDK 3.4): the leader mirrors its
-- own applied transitions into its cache, and skips their echoes instead of reading each instance
-- back. Every other move (a reaper's, an executor's report, a person's command) publishes as before.
-- move_task is 003's with only its publish changed; what it writes and refuses is the same.
CREATE OR REPLACE FUNCTION move_task(p_uid bigint, p_dag text, p_run text, p_task text, p_from text, p_try integer,
                                     p_to text, p_at bigint, p_note text, p_exhaust boolean, p_set_exit boolean,
                                     p_exit integer, p_source text, p_term bigint, p_execution text) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  at_ timestamptz := us_ts(p_at);
  fresh boolean := p_from = 'up_for_retry' AND p_to <> 'failed';
  terminal boolean := p_to IN ('success', 'failed', 'skipped', 'upstream_failed');
BEGIN
  UPDATE task_instances SET
    state = p_to,
    try_number = CASE WHEN fresh THEN try_number + 1 ELSE try_number END,
    max_tries = CASE WHEN p_exhaust THEN try_number ELSE max_tries END,
    scheduled_at = CASE WHEN p_to = 'scheduled' THEN at_ WHEN fresh THEN NULL ELSE scheduled_at END,
    queued_at = CASE WHEN p_to = 'queued' THEN at_
                     WHEN fresh OR (p_from = 'queued' AND p_to = 'scheduled') THEN NULL
                     ELSE queued_at END,
    started_at = CASE WHEN p_to = 'running' THEN at_ WHEN fresh THEN NULL ELSE started_at END,
    last_heartbeat_at = CASE WHEN p_to = 'running' THEN at_ WHEN fresh THEN NULL ELSE last_heartbeat_at END,
    ended_at = CASE WHEN terminal THEN at_ WHEN fresh THEN NULL ELSE ended_at END,
    exit_code = CASE WHEN p_set_exit THEN p_exit WHEN fresh THEN NULL ELSE exit_code END,
    note = CASE WHEN coalesce(p_note, '') <> '' THEN p_note WHEN fresh THEN '' ELSE note END,
    execution_id = CASE WHEN p_to = 'running' THEN p_execution WHEN fresh THEN NULL ELSE execution_id END
    WHERE run_uid = p_uid AND task_id = p_task AND state = p_from AND try_number = p_try;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note, execution_id)
    VALUES (p_uid, p_task, p_try, p_from, p_to, at_, p_source, p_term, coalesce(p_note, ''), p_execution);
  PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task)
                  || CASE WHEN p_source = 'scheduler' THEN ':' || p_term::text ELSE '' END);
  RETURN true;
END $$;
