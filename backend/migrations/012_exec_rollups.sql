-- 012: per-hour and per-day execution-time statistics by start class, so that the dashboard's
-- "Cold start vs warm execution time" panel reads a few rows per day instead of every invocation
-- of the range (issue 17: 9.3 s over 30 days at 10,000,000 invocations before;
-- docs/internals/exec-rollups.md).
--
-- * Start class (csa_exec_start_class): 'warm' (cold_start false), 'cold' (start_kind 'cold' or
--   none), 'proactive', 'provisioned', 'other' (any other start_kind of a cold-start row).
-- * function_exec_hourly / function_exec_daily: one row per project, function, UTC hour (day) and
--   start class: the rows (invocations, incomplete ones included), the rows with an execution time
--   (timed), their exact sum, min and max, and a sparse DDSketch of the execution times (keys:
--   bucket indexes ceil(ln(ms) / ln(1.01 / 0.99)), ascending; counts: their counts, summing to
--   timed; key -2147483648: values under 0.001 ms; migrations/007's csa_buckets_merge and
--   csa_buckets_quantile read them: 1 % relative error). function_id is the nil UUID
--   (00000000-0000-0000-0000-000000000000) in the project's total rows: the sum of its functions'
--   rows, which a reader of all the project's functions takes instead of one row per function.
--   The daily rows hold the same figures as their 24 hourly rows.
-- * function_exec_delta: what ingest adds, per function, hour and class, appended by statement
--   triggers with transition tables (like function_hourly_delta, migrations/002: concurrent
--   writers never wait on each other's counters): the rows really inserted (invocations, and the
--   execution times of the complete ones), and the execution times of the rows an update completed
--   (a record handed off with execution_duration_ms NULL, then its complete copy: invocations 0,
--   so the row is counted once, its time once, with its final value). A replay that ON CONFLICT
--   skips is in neither transition table. csa_fold_rollups (restated below) folds the deltas into
--   the hourly and daily rows, function and project, in one transaction, every few seconds.
-- * csa_exec_times(project, functions, t0, t1) answers the panel: whole days from the daily rows,
--   whole hours from the hourly rows, the deltas not folded yet, and the partial hours at the
--   range's ends from the invocations themselves; one statement, one snapshot: exact counts and
--   averages, p95 within 1 %.
-- * Existing rows are counted here, once.

CREATE TABLE function_exec_hourly (
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    function_id UUID NOT NULL,                -- the nil UUID: the whole project
    hour TIMESTAMP WITH TIME ZONE NOT NULL,   -- start of the UTC hour (csa_hour)
    start_class TEXT NOT NULL,                -- csa_exec_start_class
    invocations BIGINT NOT NULL,              -- rows, complete or not
    timed BIGINT NOT NULL,                    -- rows with an execution time
    sum_ms BIGINT NOT NULL,                   -- their execution times: sum, min, max (NULL when none)
    min_ms INT,
    max_ms INT,
    keys INT[] NOT NULL,                      -- DDSketch buckets of the execution times, ascending
    counts BIGINT[] NOT NULL,                 -- their counts (sum = timed)
    PRIMARY KEY (project_id, function_id, hour, start_class)
);

CREATE TABLE function_exec_daily (
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    function_id UUID NOT NULL,
    day DATE NOT NULL,                        -- the UTC day
    start_class TEXT NOT NULL,
    invocations BIGINT NOT NULL,
    timed BIGINT NOT NULL,
    sum_ms BIGINT NOT NULL,
    min_ms INT,
    max_ms INT,
    keys INT[] NOT NULL,
    counts BIGINT[] NOT NULL,
    PRIMARY KEY (project_id, function_id, day, start_class)
);

CREATE TABLE function_exec_delta (
    project_id UUID NOT NULL,
    function_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,
    start_class TEXT NOT NULL,
    invocations BIGINT NOT NULL,
    timed BIGINT NOT NULL,
    sum_ms BIGINT NOT NULL,
    min_ms INT,
    max_ms INT,
    keys INT[] NOT NULL,                      -- here one bucket per timed row, in no order (grouped when read)
    counts BIGINT[] NOT NULL                  -- and a 1 for each
);
CREATE INDEX idx_function_exec_delta ON function_exec_delta (function_id, hour);

CREATE FUNCTION csa_exec_start_class(cold_start boolean, start_kind text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN NOT cold_start THEN 'warm'
            WHEN coalesce(start_kind, 'cold') = 'cold' THEN 'cold'
            WHEN start_kind = 'proactive' THEN 'proactive'
            WHEN start_kind = 'provisioned' THEN 'provisioned'
            ELSE 'other' END;

-- The value a bucket answers (csa_buckets_quantile's): within 1 % of every value in it. Buckets
-- are migration 010's csa_bucket_key. (csa_exec_*: this migration's own names.)
CREATE FUNCTION csa_exec_bucket_value(k int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN k = -2147483648 THEN 0 ELSE 2 * exp(k * ln(1.01::float8 / 0.99)) / (1.01::float8 / 0.99 + 1) END;

CREATE FUNCTION csa_exec_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- one entry per timed row in keys/counts (the fold and the readers group them): one grouping
    -- here, on the ingest path
    INSERT INTO function_exec_delta (project_id, function_id, hour, start_class, invocations, timed, sum_ms,
                                     min_ms, max_ms, keys, counts)
    SELECT project_id, function_id, csa_hour("timestamp"), csa_exec_start_class(cold_start, start_kind), count(*),
           count(execution_duration_ms), coalesce(sum(execution_duration_ms), 0), min(execution_duration_ms),
           max(execution_duration_ms),
           coalesce(array_agg(csa_bucket_key(execution_duration_ms)) FILTER (WHERE execution_duration_ms IS NOT NULL), '{}'),
           coalesce(array_agg(1::bigint) FILTER (WHERE execution_duration_ms IS NOT NULL), '{}')
    FROM inserted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

-- Rows an update completed (execution_duration_ms NULL before, set after): their time only. Every
-- ingest statement fires it (INSERT ... ON CONFLICT DO UPDATE), nearly always with no row.
CREATE FUNCTION csa_exec_count_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM updated_new) THEN
        RETURN NULL;
    END IF;
    INSERT INTO function_exec_delta (project_id, function_id, hour, start_class, invocations, timed, sum_ms,
                                     min_ms, max_ms, keys, counts)
    SELECT n.project_id, n.function_id, csa_hour(n."timestamp"), csa_exec_start_class(n.cold_start, n.start_kind), 0,
           count(*), sum(n.execution_duration_ms), min(n.execution_duration_ms), max(n.execution_duration_ms),
           array_agg(csa_bucket_key(n.execution_duration_ms)), array_agg(1::bigint)
    FROM updated_new n JOIN updated_old o ON o.id = n.id AND o."timestamp" = n."timestamp"
    WHERE n.execution_duration_ms IS NOT NULL AND o.execution_duration_ms IS NULL
    GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

-- Statement level with transition tables (as migrations/002 and 006): only rows really inserted
-- or updated are seen; rows csa_ensure_partitions moves are not counted again.
CREATE TRIGGER invocations_exec_count_inserted AFTER INSERT ON invocations
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION csa_exec_count_inserted();
CREATE TRIGGER invocations_exec_count_completed AFTER UPDATE ON invocations
REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
FOR EACH STATEMENT EXECUTE FUNCTION csa_exec_count_completed();

-- Folds the invocation deltas (migrations/002) and the execution-time deltas into their rollups;
-- one caller at a time (others return 0 at once). Returns the number of delta rows folded.
CREATE OR REPLACE FUNCTION csa_fold_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    e bigint;
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

    -- each delta row counts in four rollup rows: its function's and its project's (nil UUID),
    -- each in its hour and its day
    WITH d AS (DELETE FROM function_exec_delta RETURNING *),
    x AS (
        SELECT d.project_id, f.fid, g.hourly, CASE WHEN g.hourly THEN d.hour ELSE date_bin('1 day', d.hour, TIMESTAMPTZ '2000-01-01 00:00:00+00') END AS slot,
               d.start_class, d.invocations, d.timed, d.sum_ms, d.min_ms, d.max_ms, d.keys, d.counts
        FROM d CROSS JOIN (VALUES (true), (false)) g(hourly)
        CROSS JOIN LATERAL (VALUES (d.function_id), ('00000000-0000-0000-0000-000000000000'::uuid)) f(fid)
    ), s AS (
        SELECT project_id, fid, hourly, slot, start_class, sum(invocations) AS inv, sum(timed) AS timed,
               sum(sum_ms) AS sum_ms, min(min_ms) AS min_ms, max(max_ms) AS max_ms
        FROM x GROUP BY 1, 2, 3, 4, 5
    ), b AS (
        SELECT project_id, fid, hourly, slot, start_class, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
        FROM (SELECT x.project_id, x.fid, x.hourly, x.slot, x.start_class, u.k, sum(u.c)::bigint AS c
              FROM x CROSS JOIN LATERAL unnest(x.keys, x.counts) u(k, c) GROUP BY 1, 2, 3, 4, 5, 6) bk
        GROUP BY 1, 2, 3, 4, 5
    ), m AS (
        SELECT s.*, coalesce(b.keys, '{}') AS keys, coalesce(b.counts, '{}') AS counts
        FROM s LEFT JOIN b USING (project_id, fid, hourly, slot, start_class)
    ), uh AS (
        INSERT INTO function_exec_hourly AS h (project_id, function_id, hour, start_class, invocations, timed, sum_ms,
                                               min_ms, max_ms, keys, counts)
        SELECT project_id, fid, slot, start_class, inv, timed, sum_ms, min_ms, max_ms, keys, counts
        FROM m WHERE hourly ORDER BY 1, 2, 3, 4
        ON CONFLICT (project_id, function_id, hour, start_class) DO UPDATE
            SET invocations = h.invocations + EXCLUDED.invocations, timed = h.timed + EXCLUDED.timed,
                sum_ms = h.sum_ms + EXCLUDED.sum_ms, min_ms = least(h.min_ms, EXCLUDED.min_ms),
                max_ms = greatest(h.max_ms, EXCLUDED.max_ms),
                (keys, counts) = (SELECT mg.keys, mg.counts FROM csa_buckets_merge(h.keys, h.counts, EXCLUDED.keys, EXCLUDED.counts) mg)
    ), ud AS (
        INSERT INTO function_exec_daily AS h (project_id, function_id, day, start_class, invocations, timed, sum_ms,
                                              min_ms, max_ms, keys, counts)
        SELECT project_id, fid, (slot AT TIME ZONE 'UTC')::date, start_class, inv, timed, sum_ms, min_ms, max_ms, keys, counts
        FROM m WHERE NOT hourly ORDER BY 1, 2, 3, 4
        ON CONFLICT (project_id, function_id, day, start_class) DO UPDATE
            SET invocations = h.invocations + EXCLUDED.invocations, timed = h.timed + EXCLUDED.timed,
                sum_ms = h.sum_ms + EXCLUDED.sum_ms, min_ms = least(h.min_ms, EXCLUDED.min_ms),
                max_ms = greatest(h.max_ms, EXCLUDED.max_ms),
                (keys, counts) = (SELECT mg.keys, mg.counts FROM csa_buckets_merge(h.keys, h.counts, EXCLUDED.keys, EXCLUDED.counts) mg)
    )
    SELECT count(*) INTO e FROM d;
    RETURN n + e;
END $$;

-- The panel's figures per start class over [t0, t1] (t1 inclusive, like Grafana's $__timeFilter)
-- for the functions `fns` of `project` (others are ignored): rows, rows with an execution time,
-- the average and the p95 (from the merged sketch: within 1 %) of their execution times.
-- The rollups read: all of the project's functions, its total rows (nil UUID); more than half of
-- them, the total rows minus the rows of the others (counts, sums and bucket counts subtract
-- exactly; min and max do not, so p95's clamp then uses the outermost buckets' values, within 1 %);
-- else the selected functions' rows. So a read costs at most about half the functions' rows.
CREATE FUNCTION csa_exec_times(project uuid, fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS TABLE (start_class text, invocations bigint, timed bigint, avg_ms numeric, p95_ms float8)
LANGUAGE sql STABLE AS $$
    WITH s AS MATERIALIZED (
        SELECT coalesce(array_agg(id) FILTER (WHERE sel), '{}') AS ids, count(*) FILTER (WHERE sel) AS n,
               coalesce(array_agg(id) FILTER (WHERE NOT sel), '{}') AS others, count(*) AS total
        FROM (SELECT id, coalesce(id = ANY (fns), false) AS sel FROM functions WHERE project_id = project) x
    ), f AS MATERIALIZED (
        SELECT ids,
               CASE WHEN n = 0 THEN '{}'::uuid[]
                    WHEN 2 * n > total THEN ARRAY['00000000-0000-0000-0000-000000000000'::uuid] || others
                    ELSE ids END AS rollup_ids,
               CASE WHEN n > 0 AND 2 * n > total THEN others ELSE '{}'::uuid[] END AS minus_ids
        FROM s
    ), b AS NOT MATERIALIZED (
        -- [a, z): the whole hours; [da, dz): the whole days among them (none when da >= dz)
        SELECT a, z, CASE WHEN date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') = a THEN a
                          ELSE date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 day' END AS da,
               date_bin('1 day', z, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS dz
        FROM (SELECT CASE WHEN csa_hour(t0) < t0 THEN csa_hour(t0) + interval '1 hour' ELSE csa_hour(t0) END AS a,
                     csa_hour(t1) AS z) x
    ), w AS NOT MATERIALIZED (
        -- the hours outside the whole days: [h0, h1) before them, [h2, h3) after them
        SELECT a, z, (da AT TIME ZONE 'UTC')::date AS d0, (dz AT TIME ZONE 'UTC')::date AS d1,
               a AS h0, CASE WHEN da < dz THEN da ELSE greatest(a, z) END AS h1,
               CASE WHEN da < dz THEN dz ELSE greatest(a, z) END AS h2, greatest(a, z) AS h3
        FROM b
    ), rolled AS (
        SELECT d.function_id, d.start_class, d.invocations, d.timed, d.sum_ms, d.min_ms, d.max_ms, d.keys, d.counts
        FROM function_exec_daily d, w, f
        WHERE d.project_id = project AND d.function_id = ANY (f.rollup_ids) AND d.day >= w.d0 AND d.day < w.d1
        UNION ALL
        SELECT h.function_id, h.start_class, h.invocations, h.timed, h.sum_ms, h.min_ms, h.max_ms, h.keys, h.counts
        FROM function_exec_hourly h, w, f
        WHERE h.project_id = project AND h.function_id = ANY (f.rollup_ids) AND h.hour >= w.h0 AND h.hour < w.h1
        UNION ALL
        SELECT h.function_id, h.start_class, h.invocations, h.timed, h.sum_ms, h.min_ms, h.max_ms, h.keys, h.counts
        FROM function_exec_hourly h, w, f
        WHERE h.project_id = project AND h.function_id = ANY (f.rollup_ids) AND h.hour >= w.h2 AND h.hour < w.h3
        UNION ALL
        SELECT d.function_id, d.start_class, d.invocations, d.timed, d.sum_ms, d.min_ms, d.max_ms, d.keys, d.counts
        FROM function_exec_delta d, w, f
        WHERE d.function_id = ANY (f.ids) AND d.hour >= w.a AND d.hour < w.z
    ), signed AS (
        SELECT r.*, CASE WHEN r.function_id = ANY (f.minus_ids) THEN -1 ELSE 1 END AS sg FROM rolled r, f
    ), raw AS (
        -- the partial hours at the ends, from the rows, as two index ranges
        SELECT csa_exec_start_class(i.cold_start, i.start_kind) AS start_class, i.execution_duration_ms AS ms
        FROM invocations i, w, f
        WHERE i.project_id = project AND i.function_id = ANY (f.ids) AND i."timestamp" >= t0 AND i."timestamp" <= t1
          AND i."timestamp" < w.a
        UNION ALL
        SELECT csa_exec_start_class(i.cold_start, i.start_kind), i.execution_duration_ms
        FROM invocations i, w, f
        WHERE i.project_id = project AND i.function_id = ANY (f.ids) AND i."timestamp" >= greatest(w.a, w.z)
          AND i."timestamp" >= t0 AND i."timestamp" <= t1
    ), stats AS (
        SELECT u.start_class, sum(u.n)::bigint AS n, sum(u.t)::bigint AS t, sum(u.ms) AS ms, min(u.mn) AS mn, max(u.mx) AS mx
        FROM (SELECT r.start_class, r.sg * r.invocations AS n, r.sg * r.timed AS t, r.sg * r.sum_ms AS ms, r.min_ms AS mn,
                     r.max_ms AS mx
              FROM signed r
              UNION ALL
              SELECT raw.start_class, count(*), count(raw.ms), coalesce(sum(raw.ms), 0), min(raw.ms), max(raw.ms) FROM raw
              GROUP BY raw.start_class) u
        GROUP BY u.start_class
    ), buckets AS (
        SELECT u.start_class, u.k, sum(u.c)::bigint AS c
        FROM (SELECT r.start_class, x.k, r.sg * x.c AS c FROM signed r CROSS JOIN LATERAL unnest(r.keys, r.counts) x(k, c)
              UNION ALL
              SELECT raw.start_class, csa_bucket_key(raw.ms), 1 FROM raw WHERE raw.ms IS NOT NULL) u
        GROUP BY u.start_class, u.k
        HAVING sum(u.c) > 0
    ), merged AS (
        SELECT bk.start_class, array_agg(bk.k ORDER BY bk.k) AS keys, array_agg(bk.c ORDER BY bk.k) AS counts
        FROM buckets bk GROUP BY bk.start_class
    ), ends AS (
        -- min and max: exact, or (total minus others) the values of the outermost buckets
        SELECT m.start_class, m.keys, m.counts,
               CASE WHEN cardinality(f.minus_ids) = 0 THEN st.mn ELSE csa_exec_bucket_value(m.keys[1]) END AS mn,
               CASE WHEN cardinality(f.minus_ids) = 0 THEN st.mx ELSE csa_exec_bucket_value(m.keys[cardinality(m.keys)]) END AS mx
        FROM merged m JOIN stats st USING (start_class), f
    )
    SELECT st.start_class, st.n, st.t, round(st.ms::numeric / NULLIF(st.t, 0), 1),
           csa_buckets_quantile(e.keys, e.counts, e.mn, e.mx, 0.95)
    FROM stats st LEFT JOIN ends e USING (start_class)
    WHERE st.n > 0
$$;

-- Existing rows, counted once: per function and hour, then the project's totals, then the days.
SET LOCAL work_mem = '256MB';
WITH k AS (
    SELECT project_id, function_id, csa_hour("timestamp") AS hour, csa_exec_start_class(cold_start, start_kind) AS cls,
           csa_bucket_key(execution_duration_ms) AS k, count(*) AS n, count(execution_duration_ms) AS t,
           sum(execution_duration_ms) AS s, min(execution_duration_ms) AS mn, max(execution_duration_ms) AS mx
    FROM invocations GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO function_exec_hourly (project_id, function_id, hour, start_class, invocations, timed, sum_ms, min_ms, max_ms, keys, counts)
SELECT project_id, function_id, hour, cls, sum(n), sum(t), coalesce(sum(s), 0), min(mn), max(mx),
       coalesce(array_agg(k ORDER BY k) FILTER (WHERE t > 0), '{}'), coalesce(array_agg(t ORDER BY k) FILTER (WHERE t > 0), '{}')
FROM k GROUP BY 1, 2, 3, 4;

WITH s AS (
    SELECT project_id, hour, start_class, sum(invocations) AS n, sum(timed) AS t, sum(sum_ms) AS ms,
           min(min_ms) AS mn, max(max_ms) AS mx
    FROM function_exec_hourly GROUP BY 1, 2, 3
), b AS (
    SELECT project_id, hour, start_class, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
    FROM (SELECT h.project_id, h.hour, h.start_class, u.k, sum(u.c)::bigint AS c
          FROM function_exec_hourly h CROSS JOIN LATERAL unnest(h.keys, h.counts) u(k, c) GROUP BY 1, 2, 3, 4) x
    GROUP BY 1, 2, 3
)
INSERT INTO function_exec_hourly (project_id, function_id, hour, start_class, invocations, timed, sum_ms, min_ms, max_ms, keys, counts)
SELECT s.project_id, '00000000-0000-0000-0000-000000000000', s.hour, s.start_class, s.n, s.t, s.ms, s.mn, s.mx,
       coalesce(b.keys, '{}'), coalesce(b.counts, '{}')
FROM s LEFT JOIN b USING (project_id, hour, start_class);

WITH s AS (
    SELECT project_id, function_id, (hour AT TIME ZONE 'UTC')::date AS day, start_class, sum(invocations) AS n,
           sum(timed) AS t, sum(sum_ms) AS ms, min(min_ms) AS mn, max(max_ms) AS mx
    FROM function_exec_hourly GROUP BY 1, 2, 3, 4
), b AS (
    SELECT project_id, function_id, day, start_class, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
    FROM (SELECT h.project_id, h.function_id, (h.hour AT TIME ZONE 'UTC')::date AS day, h.start_class, u.k, sum(u.c)::bigint AS c
          FROM function_exec_hourly h CROSS JOIN LATERAL unnest(h.keys, h.counts) u(k, c) GROUP BY 1, 2, 3, 4, 5) x
    GROUP BY 1, 2, 3, 4
)
INSERT INTO function_exec_daily (project_id, function_id, day, start_class, invocations, timed, sum_ms, min_ms, max_ms, keys, counts)
SELECT s.project_id, s.function_id, s.day, s.start_class, s.n, s.t, s.ms, s.mn, s.mx, coalesce(b.keys, '{}'), coalesce(b.counts, '{}')
FROM s LEFT JOIN b USING (project_id, function_id, day, start_class);

-- Retention empties these tables for the months it drops (migration 010's list).
INSERT INTO csa_retained_tables (relname, slot, is_date) VALUES
    ('function_exec_hourly', 'hour', false),
    ('function_exec_daily', 'day', true),
    ('function_exec_delta', 'hour', false);
