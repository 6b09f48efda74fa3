-- 002: records handed off early, where module data came from, and hourly rollups.
--
-- * An SDK hands the cold-start record off at the start of the first invocation ("complete":
--   false, without execution_duration_ms / billed_duration_ms / memory_used_mb) and sends the full
--   record at its end; the full copy fills the missing fields of the stored row (writer.c). A row
--   whose completion never came (the function died mid-invocation) keeps them NULL.
-- * module_source says how module timings were taken: 'hooks' (require/import hooks),
--   'esbuild-plugin' (a bundle built with our plugin), 'bundled-no-plugin' (a bundle without it:
--   no per-package split).
-- * function_hourly holds invocation counts per function and UTC hour, so that counting a
--   window's invocations reads at most one row per hour instead of every invocation. Rows that
--   are really inserted into `invocations` (not duplicates, not completions) are counted by a
--   statement trigger into function_hourly_delta (append-only, so concurrent writers never wait on
--   each other's counters); `coldstartd` folds the deltas into function_hourly every few seconds
--   (csa_fold_rollups). Readers add both tables (and count the partial hours at a window's
--   ends from the rows themselves): the counts are exact at every moment.

ALTER TABLE invocations ALTER COLUMN execution_duration_ms DROP NOT NULL;
ALTER TABLE invocations ADD COLUMN module_source VARCHAR(30);

CREATE TABLE function_hourly (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,   -- start of the UTC hour
    invocations BIGINT NOT NULL,
    cold_starts BIGINT NOT NULL,              -- rows with cold_start true (any start_kind)
    PRIMARY KEY (function_id, hour)
);
CREATE INDEX idx_function_hourly_project_hour ON function_hourly(project_id, hour);

CREATE TABLE function_hourly_delta (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,
    invocations BIGINT NOT NULL,
    cold_starts BIGINT NOT NULL
);
CREATE INDEX idx_function_hourly_delta ON function_hourly_delta(function_id, hour);

-- The hour an invocation belongs to (independent of the session's TimeZone).
CREATE FUNCTION csa_hour(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');

CREATE FUNCTION csa_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO function_hourly_delta (function_id, project_id, hour, invocations, cold_starts)
    SELECT function_id, project_id, csa_hour("timestamp"), count(*), count(*) FILTER (WHERE cold_start)
    FROM inserted GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

-- Statement level with a transition table: only rows actually inserted are in `inserted` (not the
-- ones ON CONFLICT skipped or updated). Rows that csa_ensure_partitions moves from the default
-- partition into a new one are inserted into the partition directly and not counted again.
CREATE TRIGGER invocations_count_inserted AFTER INSERT ON invocations
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION csa_count_inserted();

-- Folds the deltas into function_hourly; one caller at a time (others return 0 at once).
-- Returns the number of delta rows folded.
CREATE FUNCTION csa_fold_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7305719026342123) THEN
        RETURN 0;
    END IF;
    WITH d AS (DELETE FROM function_hourly_delta RETURNING *),
    s AS (SELECT function_id, project_id, hour, sum(invocations) AS inv, sum(cold_starts) AS cold, count(*) AS rows
          FROM d GROUP BY 1, 2, 3),
    up AS (
        INSERT INTO function_hourly AS h (function_id, project_id, hour, invocations, cold_starts)
        SELECT function_id, project_id, hour, inv, cold FROM s ORDER BY function_id, hour
        ON CONFLICT (function_id, hour) DO UPDATE
            SET invocations = h.invocations + EXCLUDED.invocations, cold_starts = h.cold_starts + EXCLUDED.cold_starts)
    SELECT coalesce(sum(rows), 0) INTO n FROM s;
    RETURN n;
END $$;

-- Existing rows are counted once, here.
INSERT INTO function_hourly (function_id, project_id, hour, invocations, cold_starts)
SELECT function_id, project_id, csa_hour("timestamp"), count(*), count(*) FILTER (WHERE cold_start)
FROM invocations GROUP BY 1, 2, 3;

-- Retention drops the rollups of the dropped months too.
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
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
