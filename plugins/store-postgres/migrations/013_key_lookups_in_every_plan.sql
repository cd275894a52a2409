-- 013: the functions that read or write one task instance per call — the executors' reports, the
-- scheduler's moves, the lookups by task id — reach it by its primary key in every plan, whatever the
-- table was like when the plan was made.
--
-- A session plans a function's statement once and keeps the plan (after five calls, a generic plan,
-- when it costs no more than the custom ones). Made while task_instances is small, that plan can be a
-- sequential scan, cheaper than the index then; it stays cached when a run of thousands of instances
-- arrives, until autovacuum's next ANALYZE invalidates it, and meanwhile every call reads the whole
-- table. Seen in bench/e2e_bench.py's chain of 400 on a fresh database (LEOFLOW_BENCH_PGSS=1):
-- 400 sequential scans of 400 rows, one per claim; tests/integration/store_postgres
-- (AReportReadsOneInstanceWhateverTheTableWasWhenItsPlanWasMade) makes it happen on purpose.
--
-- enable_seqscan = off while these functions run (a function's SET clause, restored when it returns,
-- so it reaches the functions they call and nothing else) leaves the planner the index. Their every
-- lookup is by (run_uid, task_id) or by the runs' own keys, so no plan of theirs needs a scan. What
-- they write, refuse and publish is unchanged.

ALTER FUNCTION report_running(text, text, text, integer, bigint, text) SET enable_seqscan = off;
ALTER FUNCTION report_finished(text, text, text, integer, bigint, text, text, integer, text) SET enable_seqscan = off;
ALTER FUNCTION report_heartbeat(text, text, text, integer, bigint, text) SET enable_seqscan = off;
ALTER FUNCTION move_task(bigint, text, text, text, text, integer, text, bigint, text, boolean, boolean, integer, text,
                         bigint, text) SET enable_seqscan = off;
ALTER FUNCTION queue_ready_task(bigint, text, text, text, integer, bigint, text, text, bigint) SET enable_seqscan = off;
ALTER FUNCTION load_task_instances(text, text, text[]) SET enable_seqscan = off;
