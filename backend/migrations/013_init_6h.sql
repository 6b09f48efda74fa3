-- 013: function_init_hourly in 6-hour blocks (issue 17: every dashboard panel under 1 s over 30
-- days at 10,000,000 invocations). "Init p50 by deployment" takes a median per interval and
-- deployment; over 30 days its interval is 6 hours (100 points), and merging 720 hours of buckets
-- per function and deployment took 0.9 s of CPU at 10M. The same figures per 6-hour block make it
-- six times fewer pieces.
--
-- * function_init_6h: function_init_hourly's columns, one row per function, UTC 6-hour block
--   (hour = 00:00, 06:00, 12:00 or 18:00 UTC) and deployment: the sums of the block's hours, their
--   buckets merged. Written by the fold in the statement that writes function_init_hourly, from
--   the same rows (backend/src/day_sketches.c); filled here from function_init_hourly, which holds
--   exactly the folded cold starts (the queued ones are counted by the fold when it takes them).
-- * csa_cold_start_pieces(functions, t0, t1, blocks): as the three-argument form (migration 010),
--   and with blocks true the whole 6-hour blocks inside [t0, t1] come from function_init_6h, the
--   whole hours around them from function_init_hourly. For a panel whose interval is a multiple of
--   6 hours (blocks nest in it: both are aligned to the epoch, which is aligned to UTC days).

CREATE TABLE function_init_6h (
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    hour TIMESTAMP WITH TIME ZONE NOT NULL,    -- start of the UTC 6-hour block (csa_hour6)
    deployment VARCHAR(80) NOT NULL,
    cold_starts BIGINT NOT NULL,
    proactive_starts BIGINT NOT NULL,
    provisioned_starts BIGINT NOT NULL,
    other_starts BIGINT NOT NULL,
    init_n BIGINT NOT NULL,
    init_sum DOUBLE PRECISION NOT NULL,
    init_min DOUBLE PRECISION,
    init_max DOUBLE PRECISION,
    init_keys INT[] NOT NULL,
    init_counts BIGINT[] NOT NULL,
    init_gb_s_x86_64 DOUBLE PRECISION NOT NULL,
    init_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_x86_64 DOUBLE PRECISION NOT NULL,
    proactive_gb_s_arm64 DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function_id, hour, deployment)
);

CREATE FUNCTION csa_hour6(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('6 hours', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');

-- Some rows of function_init_hourly summed per 6-hour block: counts, sums and GB-seconds added,
-- min and max kept, the buckets merged.
CREATE FUNCTION csa_init_6h_of(r function_init_hourly[])
RETURNS SETOF function_init_6h LANGUAGE sql IMMUTABLE AS $$
    WITH h AS (SELECT * FROM unnest(r)),
    k AS (
        SELECT h.function_id, csa_hour6(h.hour) AS hour, h.deployment, u.k, sum(u.c)::bigint AS c
        FROM h CROSS JOIN LATERAL unnest(h.init_keys, h.init_counts) u(k, c)
        GROUP BY 1, 2, 3, 4
    ), kk AS (
        SELECT function_id, hour, deployment, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
        FROM k GROUP BY 1, 2, 3
    ), s AS (
        SELECT function_id, project_id, csa_hour6(hour) AS hour, deployment, sum(cold_starts)::bigint AS cold_starts,
               sum(proactive_starts)::bigint AS proactive_starts, sum(provisioned_starts)::bigint AS provisioned_starts,
               sum(other_starts)::bigint AS other_starts, sum(init_n)::bigint AS init_n, sum(init_sum) AS init_sum,
               min(init_min) AS init_min, max(init_max) AS init_max, sum(init_gb_s_x86_64) AS init_gb_s_x86_64,
               sum(init_gb_s_arm64) AS init_gb_s_arm64, sum(proactive_gb_s_x86_64) AS proactive_gb_s_x86_64,
               sum(proactive_gb_s_arm64) AS proactive_gb_s_arm64
        FROM h GROUP BY 1, 2, 3, 4
    )
    SELECT s.function_id, s.project_id, s.hour, s.deployment, s.cold_starts, s.proactive_starts, s.provisioned_starts,
           s.other_starts, s.init_n, s.init_sum, s.init_min, s.init_max, coalesce(kk.keys, '{}'), coalesce(kk.counts, '{}'),
           s.init_gb_s_x86_64, s.init_gb_s_arm64, s.proactive_gb_s_x86_64, s.proactive_gb_s_arm64
    FROM s LEFT JOIN kk USING (function_id, hour, deployment)
$$;

INSERT INTO function_init_6h
SELECT s.* FROM functions f
CROSS JOIN LATERAL csa_init_6h_of(ARRAY(SELECT h FROM function_init_hourly h WHERE h.function_id = f.id)) s;

INSERT INTO csa_retained_tables (relname, slot, is_date) VALUES ('function_init_6h', 'hour', false);

-- The cold starts of some functions over [t0, t1] as pieces (migration 010's csa_cold_start_pieces),
-- with blocks: the whole 6-hour blocks from function_init_6h, the whole hours before and after them
-- from function_init_hourly (two index ranges), the rows as before.
CREATE FUNCTION csa_cold_start_pieces(fns uuid[], t0 timestamptz, t1 timestamptz, blocks boolean)
RETURNS TABLE (function_id uuid, deployment text, at timestamptz, cold_starts bigint, proactive_starts bigint,
               provisioned_starts bigint, other_starts bigint, init_n bigint, init_sum float8, init_min float8,
               init_max float8, init_keys int[], init_counts bigint[], init_gb_s_x86_64 float8,
               init_gb_s_arm64 float8, proactive_gb_s_x86_64 float8, proactive_gb_s_arm64 float8)
LANGUAGE sql STABLE AS $$
    WITH h AS NOT MATERIALIZED ( -- inlined where used: its bounds become index conditions
        SELECT CASE WHEN csa_hour(t0) < t0 THEN csa_hour(t0) + interval '1 hour' ELSE csa_hour(t0) END AS a,
               csa_hour(t1) AS z
    ), q AS NOT MATERIALIZED ( -- the whole blocks [qa, qz) inside the whole hours [a, z)
        SELECT h.a, h.z, CASE WHEN csa_hour6(h.a) < h.a THEN csa_hour6(h.a) + interval '6 hours' ELSE csa_hour6(h.a) END AS qa,
               csa_hour6(h.z) AS qz
        FROM h
    ), b AS NOT MATERIALIZED ( -- hours [a, ha) and [hz, z) from the hours, [qa, qz) from the blocks
        SELECT q.a, q.z, CASE WHEN blocks AND q.qa < q.qz THEN q.qa ELSE q.z END AS ha,
               CASE WHEN blocks AND q.qa < q.qz THEN q.qz ELSE q.z END AS hz,
               CASE WHEN blocks AND q.qa < q.qz THEN q.qa ELSE q.z END AS qa,
               CASE WHEN blocks AND q.qa < q.qz THEN q.qz ELSE q.z END AS qz
        FROM q
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
    WHERE h.function_id = ANY (fns) AND h.hour >= b.a AND h.hour < b.ha
    UNION ALL -- the hours after the blocks, as their own index range
    SELECT h.function_id, h.deployment::text, h.hour, h.cold_starts, h.proactive_starts, h.provisioned_starts,
           h.other_starts, h.init_n, h.init_sum, h.init_min, h.init_max, h.init_keys, h.init_counts,
           h.init_gb_s_x86_64, h.init_gb_s_arm64, h.proactive_gb_s_x86_64, h.proactive_gb_s_arm64
    FROM function_init_hourly h, b
    WHERE h.function_id = ANY (fns) AND h.hour >= b.hz AND h.hour < b.z
    UNION ALL
    SELECT h.function_id, h.deployment::text, h.hour, h.cold_starts, h.proactive_starts, h.provisioned_starts,
           h.other_starts, h.init_n, h.init_sum, h.init_min, h.init_max, h.init_keys, h.init_counts,
           h.init_gb_s_x86_64, h.init_gb_s_arm64, h.proactive_gb_s_x86_64, h.proactive_gb_s_arm64
    FROM function_init_6h h, b
    WHERE h.function_id = ANY (fns) AND h.hour >= b.qa AND h.hour < b.qz
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

CREATE OR REPLACE FUNCTION csa_cold_start_pieces(fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS TABLE (function_id uuid, deployment text, at timestamptz, cold_starts bigint, proactive_starts bigint,
               provisioned_starts bigint, other_starts bigint, init_n bigint, init_sum float8, init_min float8,
               init_max float8, init_keys int[], init_counts bigint[], init_gb_s_x86_64 float8,
               init_gb_s_arm64 float8, proactive_gb_s_x86_64 float8, proactive_gb_s_arm64 float8)
LANGUAGE sql STABLE AS $$
    SELECT * FROM csa_cold_start_pieces(fns, t0, t1, false)
$$;
