-- 006: per-day statistics with quantile sketches of the cold starts (issue 17: "exact where cheap,
-- sketches where not"), so that a window's init percentiles and per-package self times merge a
-- few rows per day instead of reading every cold start.
--
-- * function_day_sketches: one row per function, UTC day and deployment (code_id, else
--   'version:' || function_version, else '' for records without an identity) with the day's
--   counts (exact), sums (exact: averages and init cost) and DDSketches (backend/src/sketch.h,
--   1 % relative error) of the on-demand init durations (init_sketch) and of each package's self
--   time (modules: the encoding of backend/src/day_sketches.h). Only complete cold-start rows
--   (execution_duration_ms set) are counted: a complete row never changes again (writer.c's
--   ON CONFLICT updates incomplete rows only), so each is counted once and with its final values.
-- * function_day_sketch_pending: the complete cold-start rows not counted yet. Written in the
--   ingest's own statement by the triggers below (rows really inserted complete, and rows an
--   update completed: "complete": false, then true), so a replay (skipped by ON CONFLICT) is never
--   queued twice. `coldstartd` folds the queue into function_day_sketches every few seconds
--   (csa_day_sketches_fold, one folder at a time). Readers (queries.c) take whole days from the
--   sketches plus the pending and the incomplete rows of those days (exact), and the partial days
--   at a window's ends from the rows; all in one snapshot, so figures never count a row twice.
-- * Existing rows: queued here, folded by `coldstartd serve` (in the background, a batch every
--   second) or at once by `coldstartd maintain`; reads are exact (and slower) until then.

CREATE TABLE function_day_sketches (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    day DATE NOT NULL,                         -- the UTC day
    deployment VARCHAR(80) NOT NULL,           -- '' for records without code_id or function_version
    cold_starts BIGINT NOT NULL,               -- on-demand cold starts (start_kind 'cold' or absent)
    proactive_starts BIGINT NOT NULL,
    provisioned_starts BIGINT NOT NULL,
    other_starts BIGINT NOT NULL,              -- cold-start rows of any other start_kind
    first_cold_at TIMESTAMP WITH TIME ZONE NOT NULL, -- the day's earliest cold-start row, any kind
    init_sketch BYTEA NOT NULL,                -- on-demand init durations (ms) with its count and sum
    init_gb_s_x86_64 DOUBLE PRECISION NOT NULL, -- sum of init seconds x memory GB, on-demand, by architecture
    init_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_x86_64 DOUBLE PRECISION NOT NULL, -- the same for proactive inits
    proactive_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    module_rows BIGINT NOT NULL,               -- on-demand cold starts with module timings and an init duration
    module_rows_ms DOUBLE PRECISION NOT NULL,  -- their module self times, summed
    modules BYTEA NOT NULL,                    -- per package: samples, sum, GB-seconds, sketch of self ms
    PRIMARY KEY (function_id, day, deployment)
);

CREATE TABLE function_day_sketch_pending (
    function_id UUID NOT NULL,
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    id UUID NOT NULL,                          -- with timestamp: the invocations row
    PRIMARY KEY (function_id, "timestamp", id)
);

-- Cold-start rows still waiting for their completion: read exactly (a few; a record whose
-- completion never came stays here).
CREATE INDEX idx_invocations_cold_incomplete ON invocations (function_id, "timestamp")
    WHERE cold_start AND execution_duration_ms IS NULL;

CREATE FUNCTION csa_queue_sketches_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO function_day_sketch_pending (function_id, "timestamp", id)
    SELECT function_id, "timestamp", id FROM inserted WHERE cold_start AND execution_duration_ms IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION csa_queue_sketches_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO function_day_sketch_pending (function_id, "timestamp", id)
    SELECT n.function_id, n."timestamp", n.id
    FROM updated_new n JOIN updated_old o ON o.id = n.id AND o."timestamp" = n."timestamp"
    WHERE n.cold_start AND n.execution_duration_ms IS NOT NULL AND o.execution_duration_ms IS NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- Statement level with transition tables, like the rollups' trigger (002): only rows really
-- inserted or updated are seen; rows csa_ensure_partitions moves are not queued again.
CREATE TRIGGER invocations_queue_sketches_inserted AFTER INSERT ON invocations
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION csa_queue_sketches_inserted();
CREATE TRIGGER invocations_queue_sketches_completed AFTER UPDATE ON invocations
REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
FOR EACH STATEMENT EXECUTE FUNCTION csa_queue_sketches_completed();

-- Existing complete cold starts: queued once, here.
INSERT INTO function_day_sketch_pending (function_id, "timestamp", id)
SELECT function_id, "timestamp", id FROM invocations WHERE cold_start AND execution_duration_ms IS NOT NULL;

-- Retention drops the sketches of the dropped months too.
CREATE OR REPLACE FUNCTION csa_drop_partitions_before(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    part record;
    lo timestamptz;
    hi timestamptz;
    dropped int := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'invocations'::regclass AND c.relname ~ '^invocations_y[0-9]{4}m[0-9]{2}$'
    LOOP
        lo := to_date(substr(part.relname, 14, 4) || substr(part.relname, 19, 2), 'YYYYMM')::timestamp AT TIME ZONE 'UTC';
        hi := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        IF hi <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            -- the partition's own range: rows of older hours may still sit in the default partition
            DELETE FROM function_hourly WHERE hour >= lo AND hour < hi;
            DELETE FROM function_hourly_delta WHERE hour >= lo AND hour < hi;
            DELETE FROM function_day_sketches
            WHERE day >= (lo AT TIME ZONE 'UTC')::date AND day < (hi AT TIME ZONE 'UTC')::date;
            DELETE FROM function_day_sketch_pending WHERE "timestamp" >= lo AND "timestamp" < hi;
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
