-- 011: per-function, per-package rollups of the on-demand cold starts' module self times, so that
-- the dashboard's "Module timing breakdown" and "Init cost by package" panels (which respect the
-- function filter, unlike the per-project rollups of 007) read a few rows per function, day and
-- package instead of every cold start's module_timings (issue 17: 14 to 18 s over 30 days at
-- 1,000,000 invocations before; docs/internals/package-rollups.md).
--
-- * function_package_hourly / function_package_daily: one row per function, UTC hour (day) and
--   package, with the cold starts that timed it, the exact sum, min and max of its self time, its
--   self time x memory in GB-seconds per architecture (sums: the price variables apply when the
--   panel runs; memory as everywhere: the row's, else the function's, else 128 MB) and a sparse
--   DDSketch of the self times (keys, counts: the buckets of package_hourly's, migration 007, but
--   appended by each fold rather than merged, so a key may repeat and they are in no order: the
--   readers merge the rows of the pairs they pick; a merge per upserted row cost most of the
--   fold's time). The daily rows are kept as long as the invocations; the hourly rows only for
--   the recent hours (csa_function_package_hours_from(): today and the two UTC days before it),
--   where the ends of the usual ranges ("last 24 hours", "last 2 days") fall: kept for 30 days
--   they would be about one row per cold start and package (about 240 bytes each: 1.7 GB for
--   the 7 million of 30 days at 10,000,000 invocations, and most of the fold's time).
-- * Counted by the day-sketch fold (backend/src/package_rollups.c) in the same transaction and
--   from the same queued rows as the day and hour sketches and the project rollups: on-demand cold
--   starts whose row is complete, each exactly once.
-- * csa_function_packages(functions, from, to) and csa_module_breakdown(functions, from, to,
--   limit) answer the panels: every UTC hour that overlaps the range counts whole, and at an end
--   of the range older than the hourly rows every UTC day that overlaps it.
-- * Existing data: the complete cold starts already folded are counted here in SQL (as 007 and
--   010 do); the queued ones are counted by the fold when it takes them.

CREATE TABLE function_package_hourly (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,   -- start of the UTC hour
    package TEXT NOT NULL,
    cold_starts BIGINT NOT NULL,              -- on-demand cold starts that timed the package
    sum_ms DOUBLE PRECISION NOT NULL,         -- their self times: sum, min, max
    min_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    gb_s_x86_64 DOUBLE PRECISION NOT NULL,    -- sum of self seconds x memory GB, x86_64 rows
    gb_s_arm64 DOUBLE PRECISION NOT NULL,     -- the same, arm64 rows
    keys INT[] NOT NULL,                      -- DDSketch buckets, in no order, may repeat (the fold appends)
    counts BIGINT[] NOT NULL,                 -- their counts (a key's count: the sum of its entries)
    -- the narrow columns in the key's index: a range's totals are an index-only scan, the
    -- sketches (most of a row) are read for the top pairs only
    PRIMARY KEY (function_id, hour, package) INCLUDE (cold_starts, sum_ms, gb_s_x86_64, gb_s_arm64)
);
CREATE INDEX idx_function_package_hourly_pair ON function_package_hourly (function_id, package, hour);
CREATE INDEX idx_function_package_hourly_hour ON function_package_hourly (hour); -- the fold's expiry

CREATE TABLE function_package_daily (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    day DATE NOT NULL,                        -- the UTC day
    package TEXT NOT NULL,
    cold_starts BIGINT NOT NULL,
    sum_ms DOUBLE PRECISION NOT NULL,
    min_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    gb_s_x86_64 DOUBLE PRECISION NOT NULL,
    gb_s_arm64 DOUBLE PRECISION NOT NULL,
    keys INT[] NOT NULL,
    counts BIGINT[] NOT NULL,
    PRIMARY KEY (function_id, day, package) INCLUDE (cold_starts, sum_ms, gb_s_x86_64, gb_s_arm64)
);
CREATE INDEX idx_function_package_daily_pair ON function_package_daily (function_id, package, day);

-- The first hour function_package_hourly holds: the start of the UTC day two days before today.
-- The fold writes the hours from there on and deletes the older ones; readers take hours from
-- there on only, so a range reads the same whether or not the fold has deleted them yet.
CREATE FUNCTION csa_function_package_hours_from() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_bin('1 day', now(), TIMESTAMPTZ '2000-01-01 00:00:00+00') - interval '2 days'
$$;

-- What the rollups read for [t0, t1]: every UTC hour that overlaps it counts whole, and an end
-- older than the hourly rows (csa_function_package_hours_from) extends to its whole UTC day.
-- Whole days [d0, d1) from function_package_daily; the hours before them [h0, h1) and after them
-- [h2, h3) from function_package_hourly (all of the range in the first when it holds no whole
-- day). No row when t0 > t1.
CREATE FUNCTION csa_function_package_window(t0 timestamptz, t1 timestamptz,
    OUT d0 date, OUT d1 date, OUT h0 timestamptz, OUT h1 timestamptz, OUT h2 timestamptz, OUT h3 timestamptz)
RETURNS SETOF record LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH h AS (
        SELECT csa_hour(t0) AS a, csa_hour(t1) + interval '1 hour' AS z,
               date_bin('1 day', csa_hour(t0), TIMESTAMPTZ '2000-01-01 00:00:00+00') AS a_day,
               date_bin('1 day', csa_hour(t1), TIMESTAMPTZ '2000-01-01 00:00:00+00') AS z_day,
               csa_function_package_hours_from() AS c
        WHERE t0 <= t1
    ), x AS (
        -- an end in a day before the hourly rows: that whole day
        SELECT CASE WHEN a_day < c THEN a_day ELSE a END AS a,
               CASE WHEN z_day < c THEN z_day + interval '1 day' ELSE z END AS z
        FROM h
    ), r AS (
        SELECT a, z,
               CASE WHEN date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') = a THEN a
                    ELSE date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 day' END AS da,
               date_bin('1 day', z, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS dz
        FROM x
    )
    SELECT (da AT TIME ZONE 'UTC')::date,
           CASE WHEN da < dz THEN (dz AT TIME ZONE 'UTC')::date ELSE (da AT TIME ZONE 'UTC')::date END,
           a, CASE WHEN da < dz THEN da ELSE z END, CASE WHEN da < dz THEN dz ELSE z END, z
    FROM r
$$;

-- The narrow figures of the given functions over [t0, t1] (csa_function_package_window), one row
-- per stored row (the callers group): index-only scans of the keys.
CREATE FUNCTION csa_function_package_rows(fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS TABLE (function_id uuid, package text, cold_starts bigint, sum_ms float8, gb_s_x86_64 float8, gb_s_arm64 float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH w AS MATERIALIZED (SELECT * FROM csa_function_package_window(t0, t1))
    SELECT d.function_id, d.package, d.cold_starts, d.sum_ms, d.gb_s_x86_64, d.gb_s_arm64
    FROM function_package_daily d, w
    WHERE d.function_id = ANY (fns) AND d.day >= w.d0 AND d.day < w.d1
    UNION ALL
    SELECT h.function_id, h.package, h.cold_starts, h.sum_ms, h.gb_s_x86_64, h.gb_s_arm64
    FROM function_package_hourly h, w
    WHERE h.function_id = ANY (fns) AND h.hour >= w.h0 AND h.hour < w.h1
    UNION ALL
    SELECT h.function_id, h.package, h.cold_starts, h.sum_ms, h.gb_s_x86_64, h.gb_s_arm64
    FROM function_package_hourly h, w
    WHERE h.function_id = ANY (fns) AND h.hour >= w.h2 AND h.hour < w.h3
$$;

-- Per package over the given functions and [t0, t1] (csa_function_package_window): the functions
-- that timed it, its cold starts, its self time and its GB-seconds per architecture (the init cost
-- is gb_s_x86_64 x the x86_64 price + gb_s_arm64 x the arm64 price).
CREATE FUNCTION csa_function_packages(fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS TABLE (package text, functions bigint, cold_starts bigint, sum_ms float8, gb_s_x86_64 float8, gb_s_arm64 float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.package, count(DISTINCT r.function_id), sum(r.cold_starts)::bigint, sum(r.sum_ms), sum(r.gb_s_x86_64),
           sum(r.gb_s_arm64)
    FROM csa_function_package_rows(fns, t0, t1) r
    GROUP BY r.package
$$;

-- The (function, package) pairs with the highest average self time over [t0, t1]
-- (csa_function_package_window): the top `lim` by average from the counts and sums alone, then,
-- for those only, their rows' sketches merged (p95). Ordered by average (descending), function,
-- package.
CREATE FUNCTION csa_module_breakdown(fns uuid[], t0 timestamptz, t1 timestamptz, lim int DEFAULT 100)
RETURNS TABLE (function_id uuid, package text, cold_starts bigint, avg_self numeric, p95_self float8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH w AS MATERIALIZED (
        SELECT * FROM csa_function_package_window(t0, t1)
    ), totals AS (
        SELECT r.function_id, r.package, sum(r.cold_starts) AS n, sum(r.sum_ms) AS ms
        FROM csa_function_package_rows(fns, t0, t1) r
        GROUP BY r.function_id, r.package
    ), top AS MATERIALIZED (
        SELECT t.function_id, t.package, t.n, t.ms FROM totals t WHERE t.n > 0
        ORDER BY t.ms / t.n DESC, t.function_id, t.package LIMIT lim
    ), picked AS MATERIALIZED (
        SELECT top.function_id, top.package, s.min_ms, s.max_ms, s.keys, s.counts
        FROM top, w, LATERAL (
            SELECT d.min_ms, d.max_ms, d.keys, d.counts FROM function_package_daily d
            WHERE d.function_id = top.function_id AND d.package = top.package AND d.day >= w.d0 AND d.day < w.d1
            UNION ALL
            SELECT h.min_ms, h.max_ms, h.keys, h.counts FROM function_package_hourly h
            WHERE h.function_id = top.function_id AND h.package = top.package AND h.hour >= w.h0 AND h.hour < w.h1
            UNION ALL
            SELECT h.min_ms, h.max_ms, h.keys, h.counts FROM function_package_hourly h
            WHERE h.function_id = top.function_id AND h.package = top.package AND h.hour >= w.h2 AND h.hour < w.h3
        ) s
    ), buckets AS (
        SELECT p.function_id, p.package, u.k, sum(u.c)::bigint AS c
        FROM picked p CROSS JOIN LATERAL unnest(p.keys, p.counts) u(k, c)
        GROUP BY p.function_id, p.package, u.k
    ), merged AS MATERIALIZED (
        -- materialized: the planner's estimate of one top row made it merge every pair's buckets
        -- once per top row (7 s at 10,000,000 invocations over 30 days)
        SELECT b.function_id, b.package, array_agg(b.k ORDER BY b.k) AS keys, array_agg(b.c ORDER BY b.k) AS counts
        FROM buckets b GROUP BY b.function_id, b.package
    ), extremes AS MATERIALIZED (
        SELECT p.function_id, p.package, min(p.min_ms) AS min_ms, max(p.max_ms) AS max_ms
        FROM picked p GROUP BY p.function_id, p.package
    )
    SELECT top.function_id, top.package, top.n::bigint, round((top.ms / top.n)::numeric, 1),
           csa_buckets_quantile(m.keys, m.counts, e.min_ms, e.max_ms, 0.95)
    FROM top JOIN merged m USING (function_id, package) JOIN extremes e USING (function_id, package)
    ORDER BY top.ms / top.n DESC, top.function_id, top.package
$$;

-- Existing data: the complete on-demand cold starts already folded (not queued any more) are
-- counted here, in SQL, as migration 007 did for the project rollups (days for all, hours from
-- csa_function_package_hours_from() on); the queued ones are counted by the fold when it takes
-- them. Nothing else is emptied or queued again, so every other table the fold feeds keeps
-- counting each cold start once.
CREATE FUNCTION csa_function_package_backfill(since timestamptz, hourly boolean)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$
    WITH cold AS (
        SELECT i.function_id, %s AS slot, m.key AS package, m.value::float8 AS ms,
               coalesce(i.memory_allocated_mb, f.memory_allocated_mb, 128) / 1024.0 AS gb, i.architecture = 'arm64' AS arm
        FROM invocations i
        JOIN functions f ON f.id = i.function_id
        CROSS JOIN LATERAL jsonb_each_text(i.module_timings) m
        WHERE i."timestamp" >= $1
          AND i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold' AND i.execution_duration_ms IS NOT NULL
          AND jsonb_typeof(i.module_timings) = 'object' AND jsonb_typeof(i.module_timings -> m.key) = 'number'
          AND NOT EXISTS (SELECT 1 FROM function_day_sketch_pending p
                          WHERE p.function_id = i.function_id AND p."timestamp" = i."timestamp" AND p.id = i.id)
    ), keyed AS MATERIALIZED (
        SELECT function_id, slot, package, ms, gb, arm, csa_bucket_key(ms) AS k FROM cold
    ), b AS (
        SELECT function_id, slot, package, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
        FROM (SELECT function_id, slot, package, k, count(*) AS c FROM keyed GROUP BY 1, 2, 3, 4) x
        GROUP BY 1, 2, 3
    ), s AS (
        SELECT function_id, slot, package, count(*) AS n, sum(ms) AS ms, min(ms) AS mn, max(ms) AS mx,
               coalesce(sum(ms / 1000 * gb) FILTER (WHERE NOT coalesce(arm, false)), 0) AS g0,
               coalesce(sum(ms / 1000 * gb) FILTER (WHERE arm), 0) AS g1
        FROM keyed GROUP BY 1, 2, 3
    )
    INSERT INTO %I (function_id, %I, package, cold_starts, sum_ms, min_ms, max_ms, gb_s_x86_64, gb_s_arm64, keys, counts)
    SELECT s.function_id, s.slot, s.package, s.n, s.ms, s.mn, s.mx, s.g0, s.g1, b.keys, b.counts
    FROM s JOIN b USING (function_id, slot, package)
    $q$,
    CASE WHEN hourly THEN 'csa_hour(i."timestamp")' ELSE '(i."timestamp" AT TIME ZONE ''UTC'')::date' END,
    CASE WHEN hourly THEN 'function_package_hourly' ELSE 'function_package_daily' END,
    CASE WHEN hourly THEN 'hour' ELSE 'day' END) USING since;
END $fn$;
SELECT csa_function_package_backfill('-infinity', false);
SELECT csa_function_package_backfill(csa_function_package_hours_from(), true);
DROP FUNCTION csa_function_package_backfill(timestamptz, boolean);

-- Retention empties these tables for the months it drops (migration 010's list).
INSERT INTO csa_retained_tables (relname, slot, is_date) VALUES
    ('function_package_hourly', 'hour', false),
    ('function_package_daily', 'day', true);
