-- 001: the tables (README.md "Schema"). Applied inside the installation's schema (search_path), in
-- one transaction with the migration's row in schema_migrations.
--
-- Times are timestamptz (microseconds, what the SDK's Timestamp holds); the plugin passes them in and
-- out as integer microseconds since the epoch through us_ts()/ts_us(), which are exact.

CREATE FUNCTION us_ts(us bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$;

CREATE FUNCTION ts_us(t timestamptz) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

-- The fencing term (ARCHITECTURE §8.7): one row, raised by every claim; 0 = never claimed.
CREATE TABLE term (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  term       bigint NOT NULL,
  holder     text NOT NULL,
  claimed_at timestamptz
);
INSERT INTO term (term, holder) VALUES (0, '');

-- The leader's liveness record, for `leoflow status`.
CREATE TABLE liveness (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  holder      text NOT NULL,
  term        bigint NOT NULL,
  last_tick   timestamptz,
  queue_depth bigint NOT NULL,
  active_runs bigint NOT NULL
);

-- The legal moves (ARCHITECTURE §8.2), as data: every write path checks against them, and an operator
-- can read them. The plugin's tests compare them with the planning core's table.
CREATE TABLE task_moves (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO task_moves VALUES
  ('none', 'scheduled'), ('none', 'skipped'), ('none', 'upstream_failed'), ('none', 'failed'),
  ('scheduled', 'queued'), ('scheduled', 'failed'),
  ('queued', 'running'), ('queued', 'failed'), ('queued', 'up_for_retry'), ('queued', 'success'),
  ('queued', 'scheduled'),
  ('running', 'success'), ('running', 'failed'), ('running', 'up_for_retry'),
  ('up_for_retry', 'scheduled'), ('up_for_retry', 'queued'), ('up_for_retry', 'none'),
  ('up_for_retry', 'failed'),
  ('success', 'none'), ('failed', 'none'), ('failed', 'up_for_retry'), ('skipped', 'none'),
  ('upstream_failed', 'none');

CREATE TABLE run_moves (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO run_moves VALUES
  ('queued', 'running'), ('queued', 'failed'), ('queued', 'success'),
  ('running', 'success'), ('running', 'failed'),
  ('success', 'queued'), ('failed', 'queued');

CREATE TABLE dags (
  dag_id                 text PRIMARY KEY,
  version                integer NOT NULL,
  paused                 boolean NOT NULL DEFAULT false,
  schedule               text NOT NULL DEFAULT '',
  schedule_timezone      text NOT NULL DEFAULT '',
  start_date             timestamptz,
  end_date               timestamptz,
  catchup                boolean NOT NULL DEFAULT false,
  max_active_runs        integer NOT NULL DEFAULT 16,
  ever_run               boolean NOT NULL DEFAULT false,
  -- Latest logical date of the DAG's scheduled runs only (BEHAVIOUR §10 item 26).
  last_scheduled_logical timestamptz
);

CREATE TABLE dag_versions (
  dag_id     text NOT NULL REFERENCES dags ON DELETE CASCADE,
  version    integer NOT NULL,
  spec_json  text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dag_id, version)
);

CREATE TABLE runs (
  uid          bigserial PRIMARY KEY,  -- store-issued, never reused
  dag_id       text NOT NULL REFERENCES dags ON DELETE CASCADE,
  run_id       text NOT NULL,
  dag_version  integer NOT NULL,
  state        text NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
  trigger      text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
  logical_date timestamptz NOT NULL,
  queued_at    timestamptz,
  started_at   timestamptz,
  ended_at     timestamptz,
  conf         text NOT NULL DEFAULT '',
  note         text NOT NULL DEFAULT '',
  UNIQUE (dag_id, run_id)  -- run ids are unique per DAG (ARCHITECTURE §8.5)
);
-- Partial indexes: the scheduler's and the reapers' queries never scan finished history.
CREATE INDEX runs_active ON runs (queued_at, uid) WHERE state IN ('queued', 'running');
CREATE INDEX runs_finished ON runs (ended_at) WHERE state IN ('success', 'failed');
CREATE INDEX runs_by_logical ON runs (logical_date DESC, uid DESC);
CREATE INDEX runs_by_dag_logical ON runs (dag_id, logical_date DESC, uid DESC);
CREATE INDEX runs_by_run_id ON runs (run_id);

CREATE TABLE task_instances (
  run_uid           bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
  task_id           text NOT NULL,
  seq               integer NOT NULL,  -- materialization order: the DAG's task order
  state             text NOT NULL CHECK (state IN ('none', 'scheduled', 'queued', 'running', 'success',
                                                   'failed', 'skipped', 'upstream_failed', 'up_for_retry')),
  try_number        integer NOT NULL,
  max_tries         integer NOT NULL,
  scheduled_at      timestamptz,
  queued_at         timestamptz,
  started_at        timestamptz,
  ended_at          timestamptz,
  last_heartbeat_at timestamptz,
  exit_code         integer,
  note              text NOT NULL DEFAULT '',
  PRIMARY KEY (run_uid, task_id)
);
CREATE INDEX task_instances_queued ON task_instances (queued_at) WHERE state = 'queued';
CREATE INDEX task_instances_running ON task_instances (last_heartbeat_at) WHERE state = 'running';
CREATE INDEX task_instances_in_flight ON task_instances (run_uid)
  WHERE state IN ('scheduled', 'queued', 'running', 'up_for_retry');

-- One row per applied task state change, for an operator auditing a run. `try_number` is the attempt
-- the move was made on (a retry's up_for_retry → none row carries the try that failed); `source` says
-- who made it: scheduler (with its term), executor, reaper.
CREATE TABLE task_history (
  id         bigserial PRIMARY KEY,
  run_uid    bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
  task_id    text NOT NULL,
  try_number integer NOT NULL,
  from_state text NOT NULL,
  to_state   text NOT NULL,
  at         timestamptz NOT NULL,
  source     text NOT NULL,
  term       bigint,
  note       text NOT NULL DEFAULT ''
);
CREATE INDEX task_history_by_run ON task_history (run_uid, id);
