-- 014: the leader's liveness record — written every tick, read by `leoflow status`, /status and a
-- replica deciding whether the leader is alive — is committed without waiting for its WAL flush
-- (synchronous_commit off for that one transaction). It is the one write of a tick where nothing
-- changed, so with the flush on the tick's path an idle tick was as slow as the disk's fsync (~0.3 ms
-- on this project's CI VM, several ms on many cloud disks, ~8 ms on a spinning one). Other sessions see
-- the row as soon as it commits, as before; what a server crash can lose is the last fraction of a
-- second of these records, which the next tick writes again. Everything else the scheduler writes
-- (terms, runs, task states, reports) still waits for its flush.
--
-- 002's record_liveness with the setting added; set_config(..., true) lasts until the transaction
-- ends, so it reaches the commit (a function's SET clause would be undone when the function returns).

CREATE OR REPLACE FUNCTION record_liveness(p_term bigint, p_holder text, p_record_term bigint, p_last_tick bigint,
                                           p_queue_depth bigint, p_active_runs bigint) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM check_term(p_term);
  PERFORM set_config('synchronous_commit', 'off', true);
  INSERT INTO liveness (holder, term, last_tick, queue_depth, active_runs)
    VALUES (p_holder, p_record_term, us_ts(p_last_tick), p_queue_depth, p_active_runs)
    ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, term = excluded.term,
      last_tick = excluded.last_tick, queue_depth = excluded.queue_depth, active_runs = excluded.active_runs;
END $$;
