-- 009: the on-demand cold starts of a time range, counted without reading every cold start of it
-- (issue 17: every dashboard panel under 1 s over 30 days at 10,000,000 invocations; the "Cold
-- starts" and "Cold start rate" panels read every invocation or cold-start row of the range).
--
-- Exact, in one statement (one snapshot): the whole UTC hours of [t0, t1] from the hour sketches
-- (function_hour_sketches.cold_starts: folded complete rows of start_kind 'cold' or none,
-- migrations/008), plus, inside those hours, the complete rows still queued for the fold and the
-- incomplete ones (never folded until completed; a partial index), plus the partial hours at the
-- ends from the rows. A complete cold-start row is either folded or queued (006's triggers queue
-- it in the statement that completes it), so none is counted twice or missed. t1 is inclusive,
-- like Grafana's $__timeFilter (BETWEEN).
CREATE FUNCTION csa_cold_starts(fns uuid[], t0 timestamptz, t1 timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    WITH b AS NOT MATERIALIZED (
        SELECT CASE WHEN csa_hour(t0) < t0 THEN csa_hour(t0) + interval '1 hour' ELSE csa_hour(t0) END AS a,
               csa_hour(t1) AS z
    )
    SELECT (SELECT coalesce(sum(h.cold_starts), 0) FROM function_hour_sketches h, b
             WHERE h.function_id = ANY (fns) AND h.hour >= b.a AND h.hour < b.z)
         + (SELECT count(*) FROM function_day_sketch_pending p
             JOIN invocations i ON i.id = p.id AND i."timestamp" = p."timestamp", b
             WHERE p.function_id = ANY (fns) AND p."timestamp" >= b.a AND p."timestamp" < b.z
               AND i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')
         + (SELECT count(*) FROM invocations i, b
             WHERE i.function_id = ANY (fns) AND i."timestamp" >= b.a AND i."timestamp" < b.z
               AND i.cold_start AND i.execution_duration_ms IS NULL AND coalesce(i.start_kind, 'cold') = 'cold')
         -- the partial hours as two index ranges (one OR would read the whole range)
         + (SELECT count(*) FROM invocations i, b
             WHERE i.function_id = ANY (fns) AND i."timestamp" >= t0 AND i."timestamp" <= t1
               AND i."timestamp" < b.a AND i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')
         + (SELECT count(*) FROM invocations i, b
             WHERE i.function_id = ANY (fns) AND i."timestamp" >= greatest(b.z, b.a) AND i."timestamp" <= t1
               AND i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')
$$;
