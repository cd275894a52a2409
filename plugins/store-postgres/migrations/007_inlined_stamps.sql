-- 007: us_ts() and ts_us(), the conversions every stamp goes through, are inlined into the statements
-- that call them again (issue 14 §3).
--
-- 001 declared both IMMUTABLE over bodies that are only STABLE (extract(epoch FROM timestamptz) and
-- timestamptz + interval depend on the session's TimeZone for other fields). PostgreSQL inlines a SQL
-- function only when its body is no more volatile than the function says, so neither was inlined: each
-- call went through the SQL-function executor, ~1.9 µs instead of ~0.3 µs. load_runs converts 9 stamps
-- per task instance, so with 100,000 active runs of 10 tasks that was ~17 ms of a 128-run chunk's ~20 ms
-- on the server, and a new leader's load and every periodic reconcile read all 100,000 runs.
--
-- The same values from bodies that really are immutable: the epoch of an instant is the epoch of its
-- UTC wall-clock time, and the UTC wall-clock time of an epoch count is timestamp 'epoch' plus it.
-- timestamptz - timestamptz, extract(epoch FROM interval), timestamp + interval and AT TIME ZONE 'UTC'
-- on a timestamp are all immutable. Exact as before (no floating point on the microsecond count beyond
-- what 001 had), whatever the session's TimeZone; names and signatures unchanged, so every caller stays.

CREATE OR REPLACE FUNCTION us_ts(us bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (timestamp 'epoch' + us * interval '1 microsecond') AT TIME ZONE 'UTC' $$;

CREATE OR REPLACE FUNCTION ts_us(t timestamptz) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (extract(epoch FROM t - timestamptz 'epoch') * 1000000)::bigint $$;
