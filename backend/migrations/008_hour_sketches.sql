-- 008: per-hour statistics of the cold starts, beside the per-day ones of 006 (issue 17: "10x the
-- traffic costs at most 1.5x"). With day sketches alone, a window's partial days at its ends and
-- the detail's timeline were read row by row: work that grew with the traffic.
--
-- * function_hour_sketches: one row per function and UTC hour (all deployments together: the
--   readers of hours are the function detail and its timeline), with the columns of
--   function_day_sketches (006): counts by kind, the earliest cold start, init GB-seconds by
--   architecture, the on-demand init durations' DDSketch, the module rows and their summed self
--   time, and the per-package blob (day_sketches.h's encoding). The fold (csa_day_sketches_fold)
--   writes the hours of a batch in the same transaction as its days, so a reader's snapshot sees
--   both tables hold the same rows.
-- * A reader takes whole days from function_day_sketches, the whole hours of the partial days from
--   function_hour_sketches, the partial hours at the window's very ends from the rows, and adds
--   the queued (function_day_sketch_pending) and incomplete rows of the days and hours it took
--   from sketches; one statement, one snapshot.
-- * Existing data: the day sketches are emptied and every complete cold start queued again, so
--   that the fold builds the days and the hours together (a row is counted in an hour exactly
--   when it is counted in its day). Until the backlog is folded (`coldstartd serve` in the
--   background, or `coldstartd maintain` at once), reads take those rows exactly, and slower.

CREATE TABLE function_hour_sketches (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,    -- start of the UTC hour
    cold_starts BIGINT NOT NULL,
    proactive_starts BIGINT NOT NULL,
    provisioned_starts BIGINT NOT NULL,
    other_starts BIGINT NOT NULL,
    first_cold_at TIMESTAMP WITH TIME ZONE NOT NULL,
    init_sketch BYTEA NOT NULL,
    init_gb_s_x86_64 DOUBLE PRECISION NOT NULL,
    init_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_x86_64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    module_rows BIGINT NOT NULL,
    module_rows_ms DOUBLE PRECISION NOT NULL,
    modules BYTEA NOT NULL,
    PRIMARY KEY (function_id, hour)
);

-- The newest module trees of a window (the detail) or of a deployment (the comparison's
-- versions): without these, a window whose cold starts carry no module tree (the Python SDK, the
-- extension, module_timings alone) was scanned to its end to find none.
CREATE INDEX idx_invocations_function_tree ON invocations (function_id, "timestamp" DESC)
    WHERE cold_start AND module_tree IS NOT NULL;
CREATE INDEX idx_invocations_deployment_tree
    ON invocations (function_id, (coalesce(code_id, 'version:' || function_version)), "timestamp" DESC)
    WHERE cold_start AND module_tree IS NOT NULL;

-- Existing data: rebuilt by the fold, days and hours together, and with them the package rollups
-- (migration 007), which the same fold feeds: kept, they would count every cold start twice.
DELETE FROM function_day_sketches;
DELETE FROM package_hourly;
DELETE FROM package_daily;
INSERT INTO function_day_sketch_pending (function_id, "timestamp", id)
SELECT function_id, "timestamp", id FROM invocations WHERE cold_start AND execution_duration_ms IS NOT NULL
ON CONFLICT DO NOTHING;

-- Retention drops the hours of the dropped months too (and, as 007's did, the package rollups).
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
            DELETE FROM function_hour_sketches WHERE hour >= lo AND hour < hi;
            DELETE FROM function_day_sketch_pending WHERE "timestamp" >= lo AND "timestamp" < hi;
            DELETE FROM package_hourly WHERE hour >= lo AND hour < hi;
            DELETE FROM package_daily
            WHERE day >= (lo AT TIME ZONE 'UTC')::date AND day < (hi AT TIME ZONE 'UTC')::date;
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
