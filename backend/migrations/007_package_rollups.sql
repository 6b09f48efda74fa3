-- 007: per-project, per-package rollups of the on-demand cold starts' module self times, so that
-- the dashboard's "Slowest packages across all functions" panel reads a few rows per day and
-- package instead of every cold start's module_timings (issue 17: 8.5 s over 30 days at 1,000,000
-- invocations before; docs/internals/package-rollups.md).
--
-- * package_hourly / package_daily: one row per project, UTC hour (day) and package (a key of
--   module_timings: an npm package or a `./` path of a function's own files) with the cold starts
--   that timed it, the exact sum, min and max of its self time, a sparse DDSketch of the self times
--   (keys: bucket indexes, counts: their counts; the buckets of backend/src/sketch.h, gamma =
--   1.01 / 0.99, 1 % relative error; key -2147483648 is the zero bucket: values under 0.001 ms,
--   answering 0) and the functions that timed it in that hour (day). The daily rows hold the same
--   figures as their 24 hourly rows: a window reads whole days from package_daily and the hours
--   at its ends from package_hourly.
-- * Counted by coldstartd's day-sketch fold (backend/src/package_rollups.c), in the transaction
--   that folds function_day_sketches, from the same queue rows: on-demand cold starts
--   (start_kind 'cold' or absent) whose row is complete (execution_duration_ms set), each exactly
--   once (migration 006's queue; a replay is never queued twice).
-- * csa_slowest_packages(project, from, to, limit) answers the panel.
-- * Existing rows: the complete cold starts already folded into the day sketches (not queued any
--   more) are counted here, in SQL; those still queued are counted by the fold.

CREATE TABLE package_hourly (
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,   -- start of the UTC hour (csa_hour)
    package TEXT NOT NULL,
    cold_starts BIGINT NOT NULL,              -- on-demand cold starts that timed the package
    sum_ms DOUBLE PRECISION NOT NULL,         -- their self times: sum, min, max
    min_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    keys INT[] NOT NULL,                      -- DDSketch buckets, ascending
    counts BIGINT[] NOT NULL,                 -- their counts (sum = cold_starts)
    functions UUID[] NOT NULL,                -- the functions that timed it, ascending, distinct
    PRIMARY KEY (project_id, hour, package)
);

CREATE TABLE package_daily (
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    day DATE NOT NULL,                        -- the UTC day
    package TEXT NOT NULL,
    cold_starts BIGINT NOT NULL,
    sum_ms DOUBLE PRECISION NOT NULL,
    min_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    keys INT[] NOT NULL,
    counts BIGINT[] NOT NULL,
    functions UUID[] NOT NULL,
    PRIMARY KEY (project_id, day, package)
);

-- Two sparse bucket lists added together (the merge of two sketches is the sketch of the union).
CREATE FUNCTION csa_buckets_merge(k1 int[], c1 bigint[], k2 int[], c2 bigint[], OUT keys int[], OUT counts bigint[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(k ORDER BY k), '{}'), coalesce(array_agg(c ORDER BY k), '{}')
    FROM (SELECT k, sum(c)::bigint AS c
          FROM (SELECT * FROM unnest(k1, c1) UNION ALL SELECT * FROM unnest(k2, c2)) u(k, c)
          GROUP BY k) s
$$;

-- The q-quantile of merged buckets (ascending keys) as backend/src/sketch.c answers it:
-- percentile_cont's interpolation between the ranks floor/ceil(q (n - 1)), each rank's value the
-- value of its bucket (2 gamma^k / (gamma + 1), within 1 % of every value in it; 0 for the zero
-- bucket), the lowest rank the exact min, the highest the exact max, all clamped to [min, max].
CREATE FUNCTION csa_buckets_quantile(keys int[], counts bigint[], min_ms float8, max_ms float8, q float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH b AS (
        SELECT k, sum(c) OVER (ORDER BY o) AS upto FROM unnest(keys, counts) WITH ORDINALITY u(k, c, o)
    ), r AS (
        SELECT n, pos, floor(pos) AS lo, ceil(pos) AS hi
        FROM (SELECT sum(c) AS n, q * (sum(c) - 1) AS pos FROM unnest(counts) c) x WHERE n > 0
    ), v AS (
        SELECT x.rank, CASE
            WHEN x.rank = 0 THEN min_ms
            WHEN x.rank >= r.n - 1 THEN max_ms
            ELSE least(greatest(
                (SELECT CASE WHEN b.k = -2147483648 THEN 0
                             ELSE 2 * exp(b.k * ln(1.01::float8 / 0.99)) / (1.01::float8 / 0.99 + 1) END
                 FROM b WHERE b.upto > x.rank ORDER BY b.upto LIMIT 1), min_ms), max_ms)
            END AS value
        FROM r CROSS JOIN LATERAL (VALUES (r.lo), (r.hi)) x(rank)
    )
    SELECT lo.value + (hi.value - lo.value) * (r.pos - r.lo)
    FROM r JOIN v lo ON lo.rank = r.lo JOIN v hi ON hi.rank = r.hi
    LIMIT 1
$$;

-- The slowest packages of a project over [t0, t1]: every UTC hour that overlaps the range counts
-- whole (whole UTC days from package_daily, the other hours from package_hourly). The top `lim` by
-- average self time first (from the counts and sums alone), then, for those only, the merged
-- sketch's p95 and the distinct functions. Ordered by average self time (descending), package.
CREATE FUNCTION csa_slowest_packages(project uuid, t0 timestamptz, t1 timestamptz, lim int DEFAULT 25)
RETURNS TABLE (package text, functions bigint, cold_starts bigint, avg_self numeric, p95_self float8, total_self numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH r AS (
        SELECT a, z,
               CASE WHEN date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') = a THEN a
                    ELSE date_bin('1 day', a, TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 day' END AS da,
               date_bin('1 day', z, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS dz
        FROM (SELECT csa_hour(t0) AS a, csa_hour(t1) + interval '1 hour' AS z WHERE t0 <= t1) x
    ), days AS (
        SELECT (da AT TIME ZONE 'UTC')::date AS d0, (dz AT TIME ZONE 'UTC')::date AS d1 FROM r WHERE da < dz
    ), w AS (
        -- the hours outside the whole days: [h0, h1) before them and [h2, h3) after them (all of
        -- [a, z) in the first when the range holds no whole day)
        SELECT a AS h0, CASE WHEN da < dz THEN da ELSE z END AS h1, CASE WHEN da < dz THEN dz ELSE z END AS h2, z AS h3 FROM r
    ), totals AS (
        SELECT s.package, sum(s.cold_starts) AS n, sum(s.sum_ms) AS ms
        FROM (
            SELECT d.package, d.cold_starts, d.sum_ms FROM package_daily d, days
            WHERE d.project_id = project AND d.day >= days.d0 AND d.day < days.d1
            UNION ALL
            SELECT h.package, h.cold_starts, h.sum_ms FROM package_hourly h, w
            WHERE h.project_id = project AND h.hour >= w.h0 AND h.hour < w.h1
            UNION ALL
            SELECT h.package, h.cold_starts, h.sum_ms FROM package_hourly h, w
            WHERE h.project_id = project AND h.hour >= w.h2 AND h.hour < w.h3
        ) s
        GROUP BY s.package
    ), top AS (
        SELECT t.package, t.n, t.ms FROM totals t WHERE t.n > 0 ORDER BY t.ms / t.n DESC, t.package LIMIT lim
    ), picked AS (
        SELECT d.package, d.min_ms, d.max_ms, d.keys, d.counts, d.functions FROM package_daily d, days
        WHERE d.project_id = project AND d.day >= days.d0 AND d.day < days.d1
          AND d.package IN (SELECT top.package FROM top)
        UNION ALL
        SELECT h.package, h.min_ms, h.max_ms, h.keys, h.counts, h.functions FROM package_hourly h, w
        WHERE h.project_id = project AND h.hour >= w.h0 AND h.hour < w.h1
          AND h.package IN (SELECT top.package FROM top)
        UNION ALL
        SELECT h.package, h.min_ms, h.max_ms, h.keys, h.counts, h.functions FROM package_hourly h, w
        WHERE h.project_id = project AND h.hour >= w.h2 AND h.hour < w.h3
          AND h.package IN (SELECT top.package FROM top)
    ), buckets AS (
        SELECT p.package, u.k, sum(u.c)::bigint AS c
        FROM picked p CROSS JOIN LATERAL unnest(p.keys, p.counts) u(k, c)
        GROUP BY p.package, u.k
    ), merged AS (
        SELECT b.package, array_agg(b.k ORDER BY b.k) AS keys, array_agg(b.c ORDER BY b.k) AS counts
        FROM buckets b GROUP BY b.package
    ), extremes AS (
        SELECT p.package, min(p.min_ms) AS min_ms, max(p.max_ms) AS max_ms FROM picked p GROUP BY p.package
    ), fns AS (
        SELECT p.package, count(DISTINCT f) AS functions
        FROM picked p CROSS JOIN LATERAL unnest(p.functions) f GROUP BY p.package
    )
    SELECT top.package, fns.functions, top.n::bigint,
           round((top.ms / top.n)::numeric, 1),
           csa_buckets_quantile(m.keys, m.counts, e.min_ms, e.max_ms, 0.95),
           round(top.ms::numeric)
    FROM top JOIN merged m USING (package) JOIN extremes e USING (package) JOIN fns USING (package)
    ORDER BY top.ms / top.n DESC, top.package
$$;

-- Existing cold starts already folded into the day sketches (the queued ones are counted when
-- the fold takes them): their package self times, per hour, then the days from the hours.
WITH cold AS (
    SELECT i.project_id, i.function_id, csa_hour(i."timestamp") AS hour, m.key AS package, m.value::float8 AS ms
    FROM invocations i
    CROSS JOIN LATERAL jsonb_each_text(i.module_timings) m
    WHERE i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold' AND i.execution_duration_ms IS NOT NULL
      AND jsonb_typeof(i.module_timings) = 'object' AND jsonb_typeof(i.module_timings -> m.key) = 'number'
      AND NOT EXISTS (SELECT 1 FROM function_day_sketch_pending p
                      WHERE p.function_id = i.function_id AND p."timestamp" = i."timestamp" AND p.id = i.id)
), keyed AS (
    SELECT project_id, function_id, hour, package, ms,
           CASE WHEN ms < 0.001 THEN -2147483648 ELSE ceil(ln(ms) / ln(1.01::float8 / 0.99))::int END AS k
    FROM cold
), b AS (
    SELECT project_id, hour, package, k, count(*) AS c FROM keyed GROUP BY 1, 2, 3, 4
), s AS (
    SELECT project_id, hour, package, count(*) AS n, sum(ms) AS ms, min(ms) AS mn, max(ms) AS mx,
           array_agg(DISTINCT function_id ORDER BY function_id) AS fns
    FROM keyed GROUP BY 1, 2, 3
)
INSERT INTO package_hourly (project_id, hour, package, cold_starts, sum_ms, min_ms, max_ms, keys, counts, functions)
SELECT s.project_id, s.hour, s.package, s.n, s.ms, s.mn, s.mx, bb.keys, bb.counts, s.fns
FROM s JOIN (SELECT project_id, hour, package, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
             FROM b GROUP BY 1, 2, 3) bb USING (project_id, hour, package);

WITH b AS (
    SELECT h.project_id, (h.hour AT TIME ZONE 'UTC')::date AS day, h.package, u.k, sum(u.c)::bigint AS c
    FROM package_hourly h CROSS JOIN LATERAL unnest(h.keys, h.counts) u(k, c) GROUP BY 1, 2, 3, 4
), s AS (
    SELECT h.project_id, (h.hour AT TIME ZONE 'UTC')::date AS day, h.package, sum(h.cold_starts) AS n, sum(h.sum_ms) AS ms,
           min(h.min_ms) AS mn, max(h.max_ms) AS mx
    FROM package_hourly h GROUP BY 1, 2, 3
), f AS (
    SELECT h.project_id, (h.hour AT TIME ZONE 'UTC')::date AS day, h.package, array_agg(DISTINCT u ORDER BY u) AS fns
    FROM package_hourly h CROSS JOIN LATERAL unnest(h.functions) u GROUP BY 1, 2, 3
)
INSERT INTO package_daily (project_id, day, package, cold_starts, sum_ms, min_ms, max_ms, keys, counts, functions)
SELECT s.project_id, s.day, s.package, s.n, s.ms, s.mn, s.mx, bb.keys, bb.counts, f.fns
FROM s JOIN f USING (project_id, day, package)
JOIN (SELECT project_id, day, package, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
      FROM b GROUP BY 1, 2, 3) bb USING (project_id, day, package);

-- Retention of these tables: csa_drop_partitions_before as migration 008 restates it (007 and 008
-- ship together; one restatement instead of two).
