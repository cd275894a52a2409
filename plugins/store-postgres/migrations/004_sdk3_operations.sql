-- 004: SDK 3.0 (store.h "A person's commands", domain.h tenants and run uids).
--
-- - Tenants: dags.tenant (the current version's, DagSummary/ScheduledDag::tenant) and runs.tenant (the
--   DAG's tenant when the run was created, NewRun::tenant). Rows from before are tenant 'default'.
-- - Run uids: runs.uid has been issued by its own sequence (runs_uid_seq, 001's bigserial) from the
--   start, so every existing run already has one; nothing resets the sequence — not deleting runs,
--   not deleting a DAG — so a uid is never reissued (RunRecord::uid).
-- - Triggers: 'backfill' joins 'scheduled' and 'manual'. A scheduled or backfill run may not take a
--   logical date some run of its DAG already holds (create_run).
-- - The person's commands: clear_tasks, mark_task, mark_run, cancel_run, delete_dag, each one
--   transaction with row locks and compare-and-set writes, publishing like every other write.

-- --- Tenants and triggers ---------------------------------------------------------------------------

ALTER TABLE dags ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE runs DROP CONSTRAINT runs_trigger_check;
ALTER TABLE runs ADD CONSTRAINT runs_trigger_check CHECK (trigger IN ('scheduled', 'manual', 'backfill'));
CREATE INDEX runs_by_tenant_logical ON runs (tenant, logical_date DESC, uid DESC);

-- sync_dags with the DAGs' tenants (a new version sets the DAG's tenant, as it sets its schedule).
DROP FUNCTION sync_dags(text[], text[], text[], text[], bigint[], bigint[], boolean[], integer[]);
CREATE FUNCTION sync_dags(p_ids text[], p_json text[], p_schedule text[], p_tz text[], p_start bigint[],
                          p_end bigint[], p_catchup boolean[], p_max_active integer[], p_tenant text[])
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
        max_active_runs = p_max_active[i], tenant = coalesce(p_tenant[i], 'default')
        WHERE d.dag_id = p_ids[i];
      PERFORM publish('d:' || enc(p_ids[i]));
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

-- create_run with the run's tenant, answering the run's uid. The DAG's row, locked first, serializes
-- the runs of one DAG, so the held-logical-date check and the insert see every committed run.
DROP FUNCTION create_run(bigint, text, text, integer, text, bigint, text, bigint);
CREATE FUNCTION create_run(p_term bigint, p_dag text, p_run text, p_version integer, p_trigger text,
                           p_logical bigint, p_conf text, p_queued_at bigint, p_tenant text) RETURNS bigint
  LANGUAGE plpgsql AS $$
DECLARE
  cur integer;
  v integer := p_version;
  uid_ bigint;
  holder text;
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
  PERFORM 1 FROM runs WHERE dag_id = p_dag AND run_id = p_run;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF004', MESSAGE = format('run "%s" already exists for dag "%s"', p_run, p_dag);
  END IF;
  -- A backfill or `--logical-date` run holds its slot: the scheduler's catch-up (and another
  -- backfill) skips it. A manual run is not checked.
  IF p_trigger <> 'manual' THEN
    SELECT run_id INTO holder FROM runs WHERE dag_id = p_dag AND logical_date = us_ts(p_logical) LIMIT 1;
    IF holder IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'LF004',
        MESSAGE = format('run "%s" of dag "%s" already holds logical date %s', holder, p_dag,
                         to_char(us_ts(p_logical) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
  END IF;
  INSERT INTO runs (dag_id, run_id, dag_version, state, trigger, logical_date, queued_at, conf, tenant)
    VALUES (p_dag, p_run, v, 'queued', p_trigger, us_ts(p_logical), us_ts(p_queued_at), coalesce(p_conf, ''),
            coalesce(p_tenant, 'default'))
    ON CONFLICT (dag_id, run_id) DO NOTHING
    RETURNING uid INTO uid_;
  IF uid_ IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF004', MESSAGE = format('run "%s" already exists for dag "%s"', p_run, p_dag);
  END IF;
  UPDATE dags SET ever_run = true,
    last_scheduled_logical = CASE WHEN p_trigger = 'scheduled'
                                  THEN greatest(last_scheduled_logical, us_ts(p_logical))
                                  ELSE last_scheduled_logical END
    WHERE dag_id = p_dag;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
  RETURN uid_;
END $$;

-- apply_transitions now takes the run's row first (FOR NO KEY UPDATE), as every other write of more than
-- one instance does (materialize_run, reap_run and the person's commands below): writers of one run's
-- instances then queue on the run instead of locking its instances in different orders and
-- deadlocking. Executors' reports lock one instance only and take no run lock (a history row's foreign
-- key takes KEY SHARE, which NO KEY UPDATE lets through), so they never wait on it.
CREATE OR REPLACE FUNCTION apply_transitions(p_term bigint, p_dag text, p_run text, p_at bigint, p_tasks text[],
                                             p_from text[], p_try integer[], p_to text[], p_note text[],
                                             p_exhaust boolean[]) RETURNS boolean[]
  LANGUAGE plpgsql AS $$
DECLARE
  uid_ bigint;
  out_ boolean[] := '{}';
  ok boolean;
BEGIN
  PERFORM check_term(p_term);
  uid_ := run_uid_of(p_dag, p_run, true);
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

-- --- A person's commands (store.h) ------------------------------------------------------------------
--
-- Not fenced. Each locks the run's row (FOR NO KEY UPDATE, like every other run write, so executors'
-- history inserts are not blocked) and then the instances it reads (FOR UPDATE, in the run's order),
-- so what it checks is what it changes; each instance write is still a compare-and-set on (state,
-- try_number). Every moved instance gets a task_history row (source 'operator') and a t: message;
-- the run an r: message. They answer the run's state and the moved task ids in the run's order.

-- The run, locked; LF002 when it does not exist.
CREATE FUNCTION operator_run(p_dag text, p_run text, OUT uid_ bigint, OUT state_ text)
  LANGUAGE plpgsql AS $$
BEGIN
  SELECT uid, state INTO uid_, state_ FROM runs WHERE dag_id = p_dag AND run_id = p_run FOR NO KEY UPDATE;
  IF uid_ IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('run "%s" of dag "%s" does not exist', p_run, p_dag);
  END IF;
END $$;

-- One person's move of a locked instance: to p_to, guarded on (p_from, p_try). p_fresh starts a new
-- attempt (try p_new_try, max_tries p_new_max, every per-attempt field and the claim cleared); otherwise
-- the try stays, ended_at is stamped for the finished targets and p_exhaust sets max_tries := try.
-- The note becomes p_note. Records the history row and publishes.
CREATE FUNCTION operator_move(p_uid bigint, p_dag text, p_run text, p_task text, p_from text, p_try integer,
                              p_to text, p_at bigint, p_note text, p_exhaust boolean, p_clear boolean,
                              p_new_try integer, p_new_max integer) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  at_ timestamptz := us_ts(p_at);
  terminal boolean := p_to IN ('success', 'failed', 'skipped', 'upstream_failed');
BEGIN
  UPDATE task_instances SET
    state = p_to,
    try_number = CASE WHEN p_clear THEN p_new_try ELSE try_number END,
    max_tries = CASE WHEN p_clear THEN p_new_max WHEN p_exhaust THEN try_number ELSE max_tries END,
    scheduled_at = CASE WHEN p_clear THEN NULL ELSE scheduled_at END,
    queued_at = CASE WHEN p_clear THEN NULL ELSE queued_at END,
    started_at = CASE WHEN p_clear THEN NULL ELSE started_at END,
    last_heartbeat_at = CASE WHEN p_clear THEN NULL ELSE last_heartbeat_at END,
    ended_at = CASE WHEN p_clear THEN NULL WHEN terminal THEN at_ ELSE ended_at END,
    exit_code = CASE WHEN p_clear THEN NULL ELSE exit_code END,
    execution_id = CASE WHEN p_clear THEN NULL ELSE execution_id END,
    note = coalesce(p_note, '')
    WHERE run_uid = p_uid AND task_id = p_task AND state = p_from AND try_number = p_try;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO task_history (run_uid, task_id, try_number, from_state, to_state, at, source, term, note)
    VALUES (p_uid, p_task, p_try, p_from, p_to, at_, 'operator', NULL, coalesce(p_note, ''));
  PERFORM publish('t:' || enc(p_dag) || ':' || enc(p_run) || ':' || enc(p_task));
  RETURN true;
END $$;

-- `runs clear`: the listed instances back to none (store.h ClearRequest).
CREATE FUNCTION clear_tasks(p_dag text, p_run text, p_tasks text[], p_retries integer[], p_failed_only boolean,
                            p_note text, p_at bigint, OUT run_state text, OUT changed text[])
  LANGUAGE plpgsql AS $$
DECLARE
  r record;
  ti record;
  missing text;
  retries_ integer;
  started boolean;
BEGIN
  changed := '{}';
  SELECT * INTO r FROM operator_run(p_dag, p_run);
  IF r.state_ = 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('run "%s" of dag "%s" is queued: it has no task instances to clear yet', p_run, p_dag);
  END IF;
  SELECT x.t INTO missing FROM unnest(p_tasks) AS x(t)
    WHERE NOT EXISTS (SELECT 1 FROM task_instances i WHERE i.run_uid = r.uid_ AND i.task_id = x.t) LIMIT 1;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002',
      MESSAGE = format('run "%s" of dag "%s" has no task "%s"', p_run, p_dag, missing);
  END IF;
  FOR ti IN SELECT task_id, state, try_number, max_tries, started_at FROM task_instances
            WHERE run_uid = r.uid_ AND task_id = ANY (p_tasks) ORDER BY seq FOR UPDATE LOOP
    CONTINUE WHEN ti.state = 'none';
    CONTINUE WHEN p_failed_only AND ti.state NOT IN ('failed', 'upstream_failed');
    -- The retries of the task's last listing (a task listed twice keeps the later one).
    SELECT x.retries INTO retries_ FROM unnest(p_tasks, p_retries) WITH ORDINALITY AS x(task_id, retries, ord)
      WHERE x.task_id = ti.task_id ORDER BY x.ord DESC LIMIT 1;
    started := ti.started_at IS NOT NULL;
    IF operator_move(r.uid_, p_dag, p_run, ti.task_id, ti.state, ti.try_number, 'none', p_at, p_note, false, true,
                     CASE WHEN started THEN ti.try_number + 1 ELSE ti.try_number END,
                     CASE WHEN started THEN ti.try_number + greatest(coalesce(retries_, 0), 0) + 1
                          ELSE ti.max_tries END) THEN
      changed := changed || ti.task_id;
    END IF;
  END LOOP;
  run_state := r.state_;
  IF cardinality(changed) > 0 THEN
    UPDATE runs SET state = 'running', ended_at = NULL, started_at = us_ts(p_at) WHERE uid = r.uid_;
    run_state := 'running';
    PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
  END IF;
END $$;

-- `tasks mark`: one instance to success, failed or skipped, keeping its try (store.h MarkTaskRequest).
CREATE FUNCTION mark_task(p_dag text, p_run text, p_task text, p_to text, p_note text, p_at bigint,
                          OUT run_state text, OUT changed text[])
  LANGUAGE plpgsql AS $$
DECLARE
  r record;
  ti record;
BEGIN
  changed := '{}';
  IF p_to NOT IN ('success', 'failed', 'skipped') THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005',
      MESSAGE = format('a task can be marked success, failed or skipped, not %s', p_to);
  END IF;
  SELECT * INTO r FROM operator_run(p_dag, p_run);
  IF r.state_ = 'queued' THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('run "%s" of dag "%s" is queued: it has no task instances yet', p_run, p_dag);
  END IF;
  SELECT task_id, state, try_number INTO ti FROM task_instances
    WHERE run_uid = r.uid_ AND task_id = p_task FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002',
      MESSAGE = format('run "%s" of dag "%s" has no task "%s"', p_run, p_dag, p_task);
  END IF;
  IF ti.state = p_to THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('task "%s" of run "%s" of dag "%s" is already %s', p_task, p_run, p_dag, p_to);
  END IF;
  IF operator_move(r.uid_, p_dag, p_run, p_task, ti.state, ti.try_number, p_to, p_at, p_note, p_to = 'failed',
                   false, NULL, NULL) THEN
    changed := changed || p_task;
  END IF;
  run_state := r.state_;
  -- A finished run returns to running so that it finalizes again.
  IF r.state_ IN ('success', 'failed') THEN
    UPDATE runs SET state = 'running', ended_at = NULL WHERE uid = r.uid_;
    run_state := 'running';
  END IF;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
END $$;

-- `runs mark`: every unfinished instance, then the run, to success or failed (store.h MarkRunRequest).
CREATE FUNCTION mark_run(p_dag text, p_run text, p_to text, p_note text, p_at bigint,
                         OUT run_state text, OUT changed text[])
  LANGUAGE plpgsql AS $$
DECLARE
  r record;
  ti record;
BEGIN
  changed := '{}';
  IF p_to NOT IN ('success', 'failed') THEN
    RAISE EXCEPTION USING ERRCODE = 'LF005', MESSAGE = format('a run can be marked success or failed, not %s', p_to);
  END IF;
  SELECT * INTO r FROM operator_run(p_dag, p_run);
  IF r.state_ = p_to THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003', MESSAGE = format('run "%s" of dag "%s" is already %s', p_run, p_dag, p_to);
  END IF;
  FOR ti IN SELECT task_id, state, try_number FROM task_instances
            WHERE run_uid = r.uid_ AND state IN ('none', 'scheduled', 'queued', 'running', 'up_for_retry')
            ORDER BY seq FOR UPDATE LOOP
    IF operator_move(r.uid_, p_dag, p_run, ti.task_id, ti.state, ti.try_number, p_to, p_at, p_note,
                     p_to = 'failed', false, NULL, NULL) THEN
      changed := changed || ti.task_id;
    END IF;
  END LOOP;
  UPDATE runs SET state = p_to, started_at = coalesce(started_at, us_ts(p_at)), ended_at = us_ts(p_at),
    note = coalesce(p_note, '')
    WHERE uid = r.uid_;
  run_state := p_to;
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
END $$;

-- `runs cancel`: a queued or running run ends failed (store.h CancelRunRequest).
CREATE FUNCTION cancel_run(p_dag text, p_run text, p_note text, p_at bigint, OUT run_state text, OUT changed text[])
  LANGUAGE plpgsql AS $$
DECLARE
  r record;
  ti record;
  to_ text;
BEGIN
  changed := '{}';
  SELECT * INTO r FROM operator_run(p_dag, p_run);
  IF r.state_ NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('run "%s" of dag "%s" already finished (%s)', p_run, p_dag, r.state_);
  END IF;
  FOR ti IN SELECT task_id, state, try_number FROM task_instances
            WHERE run_uid = r.uid_ AND state IN ('none', 'scheduled', 'queued', 'running', 'up_for_retry')
            ORDER BY seq FOR UPDATE LOOP
    -- What had started fails with its retries exhausted; what had not is skipped.
    to_ := CASE WHEN ti.state IN ('queued', 'running') THEN 'failed' ELSE 'skipped' END;
    IF operator_move(r.uid_, p_dag, p_run, ti.task_id, ti.state, ti.try_number, to_, p_at, p_note, to_ = 'failed',
                     false, NULL, NULL) THEN
      changed := changed || ti.task_id;
    END IF;
  END LOOP;
  UPDATE runs SET state = 'failed', ended_at = us_ts(p_at), note = coalesce(p_note, '') WHERE uid = r.uid_;
  run_state := 'failed';
  PERFORM publish('r:' || enc(p_dag) || ':' || enc(p_run));
END $$;

-- `dags delete`: the DAG with every version, run, instance and history row (the foreign keys
-- cascade). The DAG's row is locked FOR UPDATE first, so no run of it can be created meanwhile; its
-- runs are then locked, so none can become active between the check and the delete. runs_uid_seq
-- is left alone: the deleted runs' uids are never issued again.
CREATE FUNCTION delete_dag(p_dag text) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  active record;
BEGIN
  PERFORM 1 FROM dags WHERE dag_id = p_dag FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF002', MESSAGE = format('dag "%s" does not exist', p_dag);
  END IF;
  PERFORM 1 FROM runs WHERE dag_id = p_dag FOR UPDATE;
  SELECT run_id, state INTO active FROM runs WHERE dag_id = p_dag AND state IN ('queued', 'running')
    ORDER BY queued_at, uid LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LF003',
      MESSAGE = format('dag "%s" has a %s run "%s": finish or cancel it first', p_dag, active.state, active.run_id);
  END IF;
  DELETE FROM dags WHERE dag_id = p_dag;
  PERFORM publish('d:' || enc(p_dag));
END $$;
