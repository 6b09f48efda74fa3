-- 010: per-hour, per-deployment statistics of the cold starts that SQL can read (issue 17: every
-- dashboard panel under 1 s over 30 days at 10,000,000 invocations). The hour and day sketches of
-- 006/008 hold the init durations in backend/src/sketch.h's binary encoding, which only coldstartd
-- reads; the dashboards' init-duration, start-kind and cost panels read every cold start instead.
--
-- * function_init_hourly: one row per function, UTC hour and deployment (code_id, else
--   'version:' || function_version, else '' for records without an identity, as in 006) with the
--   hour's cold starts by kind, the on-demand init durations (count, exact sum, min and max, and a
--   sparse DDSketch: keys int[] / counts bigint[] in the buckets of migration 007, 1 % relative
--   error, read by csa_buckets_quantile) and the init GB-seconds by kind and architecture.
-- * Written by coldstartd's day-sketch fold (backend/src/day_sketches.c), in the statement that
--   takes a batch off the queue (function_day_sketch_pending), from the same rows: the complete
--   cold-start rows, each exactly once, in the transaction that folds the day and hour sketches.
-- * csa_cold_start_pieces(functions, t0, t1) cuts [t0, t1] into pieces that a panel aggregates
--   as it needs (by time bucket, function, deployment): the whole hours from this table, plus,
--   inside them, the queued and the incomplete cold-start rows, plus the partial hours at the
--   ends from the rows; one row per piece, exact, in one snapshot.
-- * Existing data: the complete cold starts already folded are counted here in SQL; the queued
--   ones are counted by the fold when it takes them.

CREATE TABLE function_init_hourly (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,    -- start of the UTC hour (csa_hour)
    deployment VARCHAR(80) NOT NULL,           -- '' for records without code_id or function_version
    cold_starts BIGINT NOT NULL,               -- on-demand (start_kind 'cold' or absent)
    proactive_starts BIGINT NOT NULL,
    provisioned_starts BIGINT NOT NULL,
    other_starts BIGINT NOT NULL,              -- cold-start rows of any other start_kind
    init_n BIGINT NOT NULL,                    -- on-demand cold starts with an init duration
    init_sum DOUBLE PRECISION NOT NULL,        -- their init durations (ms): sum, min, max
    init_min DOUBLE PRECISION,                 -- NULL when init_n = 0
    init_max DOUBLE PRECISION,
    init_keys INT[] NOT NULL,                  -- DDSketch buckets, ascending (migration 007)
    init_counts BIGINT[] NOT NULL,             -- their counts (sum = init_n)
    init_gb_s_x86_64 DOUBLE PRECISION NOT NULL, -- on-demand init seconds x memory GB, by architecture
    init_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_x86_64 DOUBLE PRECISION NOT NULL, -- the same for proactive inits
    proactive_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_id, hour, deployment)
);

-- The bucket of a value (backend/src/sketch.h: ceil(log(v) / log(gamma)), gamma = 1.01 / 0.99;
-- values under 0.001 in the zero bucket, key -2147483648), as migration 007's rollups.
CREATE FUNCTION csa_bucket_key(v float8) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN v < 0.001 THEN -2147483648 ELSE ceil(ln(v) / ln(1.01::float8 / 0.99))::int END;

-- The statistics of some cold-start rows (given by id and timestamp, the invocations key), one
-- row per function, hour and deployment: what the fold adds to function_init_hourly. The memory
-- and architecture fallbacks are the fold's (day_sketches.h, CSA_COLD_ROW_COLUMNS).
CREATE FUNCTION csa_init_hourly_of(ids uuid[], ts timestamptz[])
RETURNS SETOF function_init_hourly LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT i.function_id, i.project_id, csa_hour(i."timestamp") AS hour,
               coalesce(i.code_id, 'version:' || i.function_version, '') AS deployment,
               CASE WHEN coalesce(i.start_kind, 'cold') = 'cold' THEN 'c' WHEN i.start_kind = 'proactive' THEN 'p'
                    WHEN i.start_kind = 'provisioned' THEN 'v' ELSE 'o' END AS kind,
               i.init_duration_ms::float8 AS ms,
               (coalesce(i.init_duration_ms, 0) / 1000.0 * coalesce(i.memory_allocated_mb, f.memory_allocated_mb, 128) / 1024.0)::float8 AS gb_s,
               i.architecture IS NOT DISTINCT FROM 'arm64' AS arm
        FROM unnest(ids, ts) u(id, t)
        JOIN invocations i ON i.id = u.id AND i."timestamp" = u.t
        JOIN functions f ON f.id = i.function_id
        WHERE i.cold_start
    ), k AS ( -- one row per bucket of the on-demand init durations (k NULL: the rows without one)
        SELECT function_id, project_id, hour, deployment,
               CASE WHEN kind = 'c' AND ms IS NOT NULL THEN csa_bucket_key(ms) END AS k, count(*) AS n,
               count(*) FILTER (WHERE kind = 'c') AS cold, count(*) FILTER (WHERE kind = 'p') AS proactive,
               count(*) FILTER (WHERE kind = 'v') AS provisioned, count(*) FILTER (WHERE kind = 'o') AS other,
               count(ms) FILTER (WHERE kind = 'c') AS init_n, sum(ms) FILTER (WHERE kind = 'c') AS init_sum,
               min(ms) FILTER (WHERE kind = 'c') AS init_min, max(ms) FILTER (WHERE kind = 'c') AS init_max,
               sum(gb_s) FILTER (WHERE kind = 'c' AND NOT arm) AS c_x86, sum(gb_s) FILTER (WHERE kind = 'c' AND arm) AS c_arm,
               sum(gb_s) FILTER (WHERE kind = 'p' AND NOT arm) AS p_x86, sum(gb_s) FILTER (WHERE kind = 'p' AND arm) AS p_arm
        FROM r GROUP BY 1, 2, 3, 4, 5
    )
    SELECT function_id, project_id, hour, deployment::varchar(80), sum(cold)::bigint, sum(proactive)::bigint,
           sum(provisioned)::bigint, sum(other)::bigint, sum(init_n)::bigint, coalesce(sum(init_sum), 0),
           min(init_min), max(init_max),
           coalesce(array_agg(k ORDER BY k) FILTER (WHERE k IS NOT NULL), '{}'),
           coalesce(array_agg(n ORDER BY k) FILTER (WHERE k IS NOT NULL), '{}'),
           coalesce(sum(c_x86), 0), coalesce(sum(c_arm), 0), coalesce(sum(p_x86), 0), coalesce(sum(p_arm), 0)
    FROM k
    GROUP BY function_id, project_id, hour, deployment
$$;

-- The cold starts of some functions over [t0, t1] (t1 inclusive, like Grafana's $__timeFilter),
-- as pieces: the whole UTC hours from function_init_hourly (`at` = the hour), and one piece per
-- row (`at` = its timestamp) for the rows the hours do not hold: inside the whole hours the
-- complete rows still queued for the fold and the incomplete ones (never folded until completed),
-- and every row of the partial hours at the ends. A complete cold-start row is either folded or
-- queued (006's triggers queue it in the statement that completes it), so none is counted twice
-- or missed. Inlined into the caller's query (one SQL statement, STABLE).
CREATE FUNCTION csa_cold_start_pieces(fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS TABLE (function_id uuid, deployment text, at timestamptz, cold_starts bigint, proactive_starts bigint,
               provisioned_starts bigint, other_starts bigint, init_n bigint, init_sum float8, init_min float8,
               init_max float8, init_keys int[], init_counts bigint[], init_gb_s_x86_64 float8,
               init_gb_s_arm64 float8, proactive_gb_s_x86_64 float8, proactive_gb_s_arm64 float8)
LANGUAGE sql STABLE AS $$
    WITH b AS NOT MATERIALIZED ( -- inlined where used: its bounds become index conditions
        SELECT CASE WHEN csa_hour(t0) < t0 THEN csa_hour(t0) + interval '1 hour' ELSE csa_hour(t0) END AS a,
               csa_hour(t1) AS z
    ), rows AS (
        SELECT i.function_id, i."timestamp", i.code_id, i.function_version, i.start_kind, i.init_duration_ms,
               i.memory_allocated_mb, i.architecture
        FROM function_day_sketch_pending p
        JOIN invocations i ON i.id = p.id AND i."timestamp" = p."timestamp", b
        WHERE p.function_id = ANY (fns) AND p."timestamp" >= b.a AND p."timestamp" < b.z AND i.cold_start
        UNION ALL
        SELECT i.function_id, i."timestamp", i.code_id, i.function_version, i.start_kind, i.init_duration_ms,
               i.memory_allocated_mb, i.architecture
        FROM invocations i, b
        WHERE i.function_id = ANY (fns) AND i."timestamp" >= b.a AND i."timestamp" < b.z
          AND i.cold_start AND i.execution_duration_ms IS NULL
        UNION ALL -- the partial hours as two index ranges (one OR would read the whole range)
        SELECT i.function_id, i."timestamp", i.code_id, i.function_version, i.start_kind, i.init_duration_ms,
               i.memory_allocated_mb, i.architecture
        FROM invocations i, b
        WHERE i.function_id = ANY (fns) AND i."timestamp" >= t0 AND i."timestamp" <= t1 AND i."timestamp" < b.a
          AND i.cold_start
        UNION ALL
        SELECT i.function_id, i."timestamp", i.code_id, i.function_version, i.start_kind, i.init_duration_ms,
               i.memory_allocated_mb, i.architecture
        FROM invocations i, b
        WHERE i.function_id = ANY (fns) AND i."timestamp" >= greatest(b.z, b.a) AND i."timestamp" <= t1
          AND i.cold_start
    )
    SELECT h.function_id, h.deployment::text, h.hour, h.cold_starts, h.proactive_starts, h.provisioned_starts,
           h.other_starts, h.init_n, h.init_sum, h.init_min, h.init_max, h.init_keys, h.init_counts,
           h.init_gb_s_x86_64, h.init_gb_s_arm64, h.proactive_gb_s_x86_64, h.proactive_gb_s_arm64
    FROM function_init_hourly h, b
    WHERE h.function_id = ANY (fns) AND h.hour >= b.a AND h.hour < b.z
    UNION ALL
    SELECT r.function_id, coalesce(r.code_id, 'version:' || r.function_version, ''), r."timestamp",
           (k.kind = 'c')::int::bigint, (k.kind = 'p')::int::bigint, (k.kind = 'v')::int::bigint,
           (k.kind = 'o')::int::bigint, (k.kind = 'c' AND r.init_duration_ms IS NOT NULL)::int::bigint,
           CASE WHEN k.kind = 'c' THEN coalesce(r.init_duration_ms, 0)::float8 ELSE 0 END,
           CASE WHEN k.kind = 'c' THEN r.init_duration_ms::float8 END, CASE WHEN k.kind = 'c' THEN r.init_duration_ms::float8 END,
           CASE WHEN k.kind = 'c' AND r.init_duration_ms IS NOT NULL THEN ARRAY[csa_bucket_key(r.init_duration_ms)] ELSE '{}' END,
           CASE WHEN k.kind = 'c' AND r.init_duration_ms IS NOT NULL THEN ARRAY[1::bigint] ELSE '{}' END,
           CASE WHEN k.kind = 'c' AND r.architecture IS DISTINCT FROM 'arm64' THEN k.gb_s ELSE 0 END,
           CASE WHEN k.kind = 'c' AND r.architecture = 'arm64' THEN k.gb_s ELSE 0 END,
           CASE WHEN k.kind = 'p' AND r.architecture IS DISTINCT FROM 'arm64' THEN k.gb_s ELSE 0 END,
           CASE WHEN k.kind = 'p' AND r.architecture = 'arm64' THEN k.gb_s ELSE 0 END
    FROM rows r
    JOIN functions f ON f.id = r.function_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN coalesce(r.start_kind, 'cold') = 'cold' THEN 'c' WHEN r.start_kind = 'proactive' THEN 'p'
                    WHEN r.start_kind = 'provisioned' THEN 'v' ELSE 'o' END AS kind,
               (coalesce(r.init_duration_ms, 0) / 1000.0 * coalesce(r.memory_allocated_mb, f.memory_allocated_mb, 128) / 1024.0)::float8 AS gb_s
    ) k
$$;

-- The q-quantile of merged buckets exactly as migration 007's csa_buckets_quantile answers it, in
-- PL/pgSQL: one loop over the arrays instead of a query per call (about 100 us a call, 4 us here),
-- for panels that take a quantile per time bucket and series (tens of thousands of calls).
CREATE OR REPLACE FUNCTION csa_buckets_quantile(keys int[], counts bigint[], min_ms float8, max_ms float8, q float8)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    gamma CONSTANT float8 := 1.01::float8 / 0.99;
    n bigint := 0;
    upto bigint := 0;
    len int := coalesce(array_length(keys, 1), 0);
    pos float8;
    lo bigint;
    hi bigint;
    vlo float8;
    vhi float8;
    v float8;
BEGIN
    FOR i IN 1 .. len LOOP
        n := n + counts[i];
    END LOOP;
    IF n = 0 OR q IS NULL THEN
        RETURN NULL;
    END IF;
    pos := q * (n - 1);
    lo := floor(pos);
    hi := ceil(pos);
    FOR i IN 1 .. len LOOP
        upto := upto + counts[i];
        IF upto > lo THEN
            v := CASE WHEN keys[i] = -2147483648 THEN 0 ELSE 2 * gamma ^ keys[i] / (gamma + 1) END;
            IF vlo IS NULL THEN
                vlo := v;
            END IF;
            IF upto > hi THEN
                vhi := v;
                EXIT;
            END IF;
        END IF;
    END LOOP;
    vlo := CASE WHEN lo = 0 THEN min_ms WHEN lo >= n - 1 THEN max_ms ELSE least(greatest(vlo, min_ms), max_ms) END;
    vhi := CASE WHEN hi = 0 THEN min_ms WHEN hi >= n - 1 THEN max_ms ELSE least(greatest(vhi, min_ms), max_ms) END;
    RETURN vlo + (vhi - vlo) * (pos - lo);
END $$;

-- Existing complete cold starts already folded (the queued ones are counted when the fold takes them).
INSERT INTO function_init_hourly
SELECT s.* FROM (
    SELECT array_agg(i.id) AS ids, array_agg(i."timestamp") AS ts
    FROM invocations i
    WHERE i.cold_start AND i.execution_duration_ms IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM function_day_sketch_pending p
                      WHERE p.function_id = i.function_id AND p."timestamp" = i."timestamp" AND p.id = i.id)
) x CROSS JOIN LATERAL csa_init_hourly_of(x.ids, x.ts) s
WHERE x.ids IS NOT NULL;

-- Retention: the tables of per-hour or per-day figures that csa_drop_partitions_before empties for
-- the months whose invocation partitions it drops. Until now each migration that added one restated
-- the whole function; from here on a migration adds its table here.
CREATE TABLE csa_retained_tables (
    relname TEXT PRIMARY KEY,                 -- a table in the schema of the invocations
    slot TEXT NOT NULL,                       -- its column saying which hour or day a row is of
    is_date BOOLEAN NOT NULL                  -- slot is a DATE (a UTC day), else a TIMESTAMPTZ
);
INSERT INTO csa_retained_tables (relname, slot, is_date) VALUES
    ('function_hourly', 'hour', false),
    ('function_hourly_delta', 'hour', false),
    ('function_day_sketches', 'day', true),
    ('function_hour_sketches', 'hour', false),
    ('function_day_sketch_pending', 'timestamp', false),
    ('package_hourly', 'hour', false),
    ('package_daily', 'day', true),
    ('function_init_hourly', 'hour', false);

CREATE OR REPLACE FUNCTION csa_drop_partitions_before(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    part record;
    t record;
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
            FOR t IN SELECT relname, slot, is_date FROM csa_retained_tables ORDER BY relname LOOP
                IF t.is_date THEN
                    EXECUTE format('DELETE FROM %I WHERE %I >= $1 AND %I < $2', t.relname, t.slot, t.slot)
                    USING (lo AT TIME ZONE 'UTC')::date, (hi AT TIME ZONE 'UTC')::date;
                ELSE
                    EXECUTE format('DELETE FROM %I WHERE %I >= $1 AND %I < $2', t.relname, t.slot, t.slot)
                    USING lo, hi;
                END IF;
            END LOOP;
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
