-- 002: one function per Store mutation (README.md "Functions"), so every call is one round trip and
-- one transaction: atomic, fenced and guarded inside PostgreSQL itself (store.h, ARCHITECTURE §8.7).
--
-- Errors use SQLSTATEs of their own, which the plugin maps to Status codes:
--   LF001 fenced, LF002 not found, LF003 conflict, LF004 already exists, LF005 invalid argument.
-- Change-feed messages (README.md "Change feed") go out with pg_notify on the installation's channel
-- and are delivered when the transaction commits: t:<dag>:<run>:<task>, r:<dag>:<run>, d:<dag>, ids
-- percent-encoded so ':' separates them.

CREATE FUNCTION changes_channel() RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT @CHANNEL@::text $$;

CREATE FUNCTION enc(id text) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT replace(replace(id, '%', '%25'), ':', '%3A') $$;

CREATE FUNCTION publish(payload text) RETURNS void
  LANGUAGE sql AS $$ SELECT pg_notify(changes_channel(), payload) $$;

-- Fencing (ARCHITECTURE §8.7): a decision must carry the current term. FOR SHARE makes a claim in
-- flight wait for the decisions that checked the old term, and a decision wait for a claim in flight,
-- so there is no window between the check and the write.
CREATE FUNCTION check_term(p_term bigint) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  cur bigint;
BEGIN
  SELECT term INTO cur FROM term FOR SHARE;
  IF p_term IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = 'a decision needs a term';
  ELSIF cur = 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'LF001',
      MESSAGE = format('term %s was never claimed (no term has been claimed)', p_term);
  ELSIF p_term < cur THEN
    RAISE EXCEPTION USING ERRCODE = 'LF001', MESSAGE = format('term %s is below the current term %s', p_term, cur);
  ELSIF p_term > cur THEN
    RAISE EXCEPTION USING ERRCODE = 'LF001',
      MESSAGE = format('term %s was never claimed (current term %s)', p_term, cur);
  END IF;
END $$;

CREATE FUNCTION run_uid_of(p_dag text, p_run text, p_lock boolean) RETURNS bigint
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
BEGIN
  -- FOR NO KEY UPDATE, not FOR UPDATE: an executor's report inserting a history row (whose foreign
  -- key takes KEY SHARE on the run) must not deadlock with a reaper holding the run.
  IF p_lock THEN
    SELECT uid INTO uid_ FROM runs WHERE dag_id = p_dag AND run_id = p_run FOR NO KEY UPDATE;
  ELSE
    SELECT uid INTO uid_ FROM runs WHERE dag_id = p_dag AND run_id = p_run;
  END IF;
  IF uid_ IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('run "%s" of dag "%s" does not exist', p_run, p_dag);
  END IF;
  RETURN uid_;
END $$;

CREATE FUNCTION claim_term(p_holder text) RETURNS bigint
  LANGUAGE sql AS $$
  UPDATE term SET term = term + 1, holder = p_holder, claimed_at = now() RETURNING term
$$;

CREATE FUNCTION record_liveness(p_term bigint, p_holder text, p_record_term bigint, p_last_tick bigint,
                                p_queue_depth bigint, p_active_runs bigint) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM check_term(p_term);
  INSERT INTO liveness (holder, term, last_tick, queue_depth, active_runs)
    VALUES (p_holder, p_record_term, us_ts(p_last_tick), p_queue_depth, p_active_runs)
    ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, term = excluded.term,
      last_tick = excluded.last_tick, queue_depth = excluded.queue_depth, active_runs = excluded.active_runs;
END $$;

-- All DAGs at once or none (the caller's transaction). Syncs are serialized by an advisory lock on the
-- installation, so two concurrent syncs of a new DAG cannot both create version 1.
CREATE FUNCTION sync_dags(p_ids text[], p_json text[], p_schedule text[], p_tz text[], p_start bigint[],
                          p_end bigint[], p_catchup boolean[], p_max_active integer[])
  RETURNS TABLE (out_version integer, out_changed boolean)
  LANGUAGE plpgsql AS $$
DECLARE
  cur integer;
  same boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(changes_channel()), 1);
  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
    SELECT d.version INTO cur FROM dags d WHERE d.dag_id = p_ids[i] FOR NO KEY UPDATE;
    same := false;
    IF cur IS NOT NULL THEN
      SELECT v.spec_json = p_json[i] INTO same FROM dag_versions v WHERE v.dag_id = p_ids[i] AND v.version = cur;
    END IF;
    IF coalesce(same, false) THEN
      out_version := cur;
      out_changed := false;
    ELSE
      out_version := coalesce(cur, 0) + 1;
      out_changed := true;
      IF cur IS NULL THEN
        INSERT INTO dags (dag_id, version) VALUES (p_ids[i], out_version);
      END IF;
      INSERT INTO dag_versions (dag_id, version, spec_json) VALUES (p_ids[i], out_version, p_json[i]);
      UPDATE dags d SET version = out_version, schedule = p_schedule[i], schedule_timezone = p_tz[i],
        start_date = us_ts(p_start[i]), end_date = us_ts(p_end[i]), catchup = p_catchup[i],
        max_active_runs = p_max_active[i]
        WHERE d.dag_id = p_ids[i];
      PERFORM publish('d:' || enc(p_ids[i]));
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

CREATE FUNCTION set_paused(p_dag text, p_paused boolean) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  UPDATE dags SET paused = p_paused WHERE dag_id = p_dag;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('dag "%s" does not exist', p_dag);
  END IF;
  PERFORM publish('d:' || enc(p_dag));
END $$;

-- p_term NULL: a person's trigger, not fenced. p_version 0: the current version.
CREATE FUNCTION create_run(p_term bigint, p_dag text, p_run text, p_version integer, p_trigger text,
                           p_logical bigint, p_conf text, p_queued_at bigint) RETURNS integer
  LANGUAGE plpgsql AS $$
DECLARE
  cur integer;
  v integer := p_version;
BEGIN
  IF p_term IS NOT NULL THEN
    PERFORM check_term(p_term);
  END IF;
  SELECT version INTO cur FROM dags WHERE dag_id = p_dag FOR NO KEY UPDATE;
  IF cur IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('dag "%s" does not exist', p_dag);
  END IF;
  IF v = 0 THEN
    v := cur;
  END IF;
  PERFORM 1 FROM dag_versions WHERE dag_id = p_dag AND version = v;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('dag "%s" has no version %s', p_dag, v);
  END IF;
  INSERT INTO runs (dag_id, run_id, dag_version, state, trigger, logical_date, queued_at, conf)
    VALUES (p_dag, p_run, v, 'queued', p_trigger, us_ts(p_logical), us_ts(p_queued_at), coalesce(p_conf, ''))
    ON CONFLICT (dag_id, run_id) DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF004', MESSAGE = format('run "%s" already exists for dag "%s"', p_run, p_dag);
  END IF;
  UPDATE dags SET ever_run = true,
    last_scheduled_logical = CASE WHEN p_trigger = 'scheduled'
                                  THEN greatest(last_scheduled_logical, us_ts(p_logical))
                                  ELSE last_scheduled_logical END
    WHERE dag_id = p_dag;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
  RETURN v;
END $$;

CREATE FUNCTION materialize_run(p_term bigint, p_dag text, p_run text, p_at bigint, p_tasks text[],
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
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
END $$;

CREATE FUNCTION set_run_state(p_term bigint, p_dag text, p_run text, p_from text, p_to text, p_at bigint,
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
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
END $$;

-- One guarded move of one instance with its side effects (store.h TaskTransitionWrite): applied only
-- when the row is in p_from on try p_try. Leaving up_for_retry for anything but failed starts the next
-- attempt with every per-attempt field cleared (BEHAVIOUR §10 items 1, 3, 6). Records the history row
-- and publishes. Returns whether it applied. The caller checks the move against task_moves.
CREATE FUNCTION move_task(p_uid bigint, p_dag text, p_run text, p_task text, p_from text, p_try integer,
                          p_to text, p_at bigint, p_note text, p_exhaust boolean, p_set_exit boolean,
                          p_exit integer, p_source text, p_term bigint) RETURNS boolean
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
    note = CASE WHEN coalesce(p_note, '') <> '' THEN p_note WHEN fresh THEN '' ELSE note END
    WHERE run_uid = p_uid AND task_id = p_task AND state = p_from AND try_number = p_try;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note)
    VALUES (p_uid, p_task, p_try, p_from, p_to, at_, p_source, p_term, coalesce(p_note, ''));
  PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
  RETURN true;
END $$;

-- Fenced. What can refuse the whole call (the term, an unknown run) is checked before the first
-- write; each write is then guarded on its own and refused on its own when the table forbids the move
-- or exhaust comes without the target failed. Writes apply in order.
CREATE FUNCTION apply_transitions(p_term bigint, p_dag text, p_run text, p_at bigint, p_tasks text[],
                                  p_from text[], p_try integer[], p_to text[], p_note text[],
                                  p_exhaust boolean[]) RETURNS boolean[]
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  out_ boolean[] := '{}';
  ok boolean;
BEGIN
  PERFORM check_term(p_term);
  uid_ := run_uid_of(p_dag, p_run, false);
  FOR i IN 1 .. coalesce(array_length(p_tasks, 1), 0) LOOP
    ok := (NOT p_exhaust[i] OR p_to[i] = 'failed')
          AND EXISTS (SELECT 1 FROM task_moves WHERE from_state = p_from[i] AND to_state = p_to[i]);
    IF ok THEN
      ok := move_task(uid_, p_dag, p_run, p_tasks[i], p_from[i], p_try[i], p_to[i], p_at, p_note[i],
                      p_exhaust[i], false, NULL, 'scheduler', p_term);
    END IF;
    out_ := out_ || ok;
  END LOOP;
  RETURN out_;
END $$;

-- Fenced. Fails a running run and every unfinished instance of it, in one step (BEHAVIOUR §4.2).
-- A run no longer running is left alone: a finalizer won (returns false).
CREATE FUNCTION reap_run(p_term bigint, p_dag text, p_run text, p_at bigint, p_note text) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  st text;
  ti record;
BEGIN
  PERFORM check_term(p_term);
  uid_ := run_uid_of(p_dag, p_run, true);
  SELECT state INTO st FROM runs WHERE uid = uid_;
  IF st <> 'running' THEN
    RETURN false;
  END IF;
  UPDATE runs SET state = 'failed', ended_at = us_ts(p_at), note = CASE WHEN p_note <> '' THEN p_note ELSE note END
    WHERE uid = uid_;
  FOR ti IN SELECT task_id, state, try_number FROM task_instances
            WHERE run_uid = uid_ AND state NOT IN ('success', 'failed', 'skipped', 'upstream_failed')
            ORDER BY seq FOR UPDATE LOOP
    PERFORM move_task(uid_, p_dag, p_run, ti.task_id, ti.state, ti.try_number, 'failed', p_at, p_note, false,
                      false, NULL, 'reaper', p_term);
  END LOOP;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
  RETURN true;
END $$;

-- The current attempt an executor reports about, locked; NOTFOUND or CONFLICT when there is none
-- with that try (guarded by try_number, not fenced: §8.7).
CREATE FUNCTION current_attempt(p_dag text, p_run text, p_task text, p_try integer,
                                OUT uid_ bigint, OUT state_ text)
  LANGUAGE plpgsql AS $$
DECLARE
  try_ integer;
BEGIN
  SELECT r.uid, ti.state, ti.try_number INTO uid_, state_, try_
    FROM runs r JOIN task_instances ti ON ti.run_uid = r.uid
    WHERE r.dag_id = p_dag AND r.run_id = p_run AND ti.task_id = p_task
    FOR UPDATE OF ti;
  IF uid_ IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002',
      MESSAGE = format('task "%s" of run "%s" of dag "%s" does not exist', p_task, p_run, p_dag);
  END IF;
  IF try_ <> p_try THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is not current (try %s)', p_try, try_);
  END IF;
END $$;

CREATE FUNCTION report_running(p_dag text, p_run text, p_task text, p_try integer, p_at bigint) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  a record;
BEGIN
  SELECT * INTO a FROM current_attempt(p_dag, p_run, p_task, p_try);
  IF a.state_ <> 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is %s, not queued', p_try, a.state_);
  END IF;
  PERFORM move_task(a.uid_, p_dag, p_run, p_task, 'queued', p_try, 'running', p_at, '', false, false, NULL,
                    'executor', NULL);
END $$;

-- A beat may overtake the running report: a queued attempt's beat is a sign of life all the same.
-- Publishes nothing: a heartbeat changes nothing a planner reads.
CREATE FUNCTION report_heartbeat(p_dag text, p_run text, p_task text, p_try integer, p_at bigint) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  a record;
BEGIN
  SELECT * INTO a FROM current_attempt(p_dag, p_run, p_task, p_try);
  IF a.state_ NOT IN ('running', 'queued') THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is %s, not running', p_try, a.state_);
  END IF;
  UPDATE task_instances SET last_heartbeat_at = us_ts(p_at) WHERE run_uid = a.uid_ AND task_id = p_task;
END $$;

CREATE FUNCTION report_finished(p_dag text, p_run text, p_task text, p_try integer, p_at bigint, p_to text,
                                p_exit integer, p_message text) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  a record;
BEGIN
  SELECT * INTO a FROM current_attempt(p_dag, p_run, p_task, p_try);
  IF a.state_ NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('attempt %s is %s, it has ended', p_try, a.state_);
  END IF;
  PERFORM 1 FROM task_moves WHERE from_state = a.state_ AND to_state = p_to;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = format('illegal move %s -> %s', a.state_, p_to);
  END IF;
  PERFORM move_task(a.uid_, p_dag, p_run, p_task, a.state_, p_try, p_to, p_at, p_message, false, true, p_exit,
                    'executor', NULL);
END $$;
