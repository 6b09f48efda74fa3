-- Realistic history for bench/queries.sh: :n invocations over :f functions and the last :days days.
-- Cold starts (5 %) carry module_timings with 20 to 200 modules: a few heavy packages (hundreds of
-- ms, log-normal) and a long tail of small ones; warm invocations carry none. Every function is
-- deployed four times over the period (code_id changes every :days / 4 days; the deployments list
-- and the comparison read them).
\set ON_ERROR_STOP on
SELECT csa_ensure_partitions(2, 1);
INSERT INTO functions (project_id, function_name, runtime, region, memory_allocated_mb)
SELECT p.id, 'fn-' || lpad(g::text, 3, '0'), 'nodejs20.x', 'us-east-1', 512
FROM projects p, generate_series(1, :f) g;

CREATE TEMP TABLE fn AS SELECT row_number() OVER (ORDER BY function_name) - 1 AS k, id, project_id FROM functions;
-- a pool of module names: 20 well-known heavy packages and 400 small ones
CREATE TEMP TABLE names AS
SELECT k, name FROM unnest(ARRAY['aws-sdk','@aws-sdk/client-s3','@aws-sdk/client-dynamodb','@smithy/core',
  'moment','lodash','@prisma/client','axios','express','serverless-http','firebase-admin','googleapis',
  'winston','dd-trace','@sentry/node','pg','mongoose','uuid','zod','./src/handler']) WITH ORDINALITY AS t(name, k)
UNION ALL SELECT 20 + g, 'pkg-' || g FROM generate_series(1, 400) g;

INSERT INTO invocations (project_id, function_id, invocation_id, request_id, "timestamp", cold_start,
    init_duration_ms, execution_duration_ms, billed_duration_ms, memory_used_mb, memory_allocated_mb,
    module_timings, runtime_version, architecture, start_kind, function_version, code_id)
SELECT fn.project_id, fn.id, 'inv-' || g, 'req-' || g,
       ts.t,
       cold, CASE WHEN cold THEN 300 + (random() * 2500)::int END,
       5 + (random() * 300)::int, 100, 80 + (random() * 100)::int, 512,
       CASE WHEN cold THEN (
         SELECT jsonb_object_agg(nm.name, round((CASE WHEN nm.k <= 20 THEN exp(3 + random() * 2.5) ELSE random() * 8 END)::numeric, 3))
         FROM names nm WHERE nm.k <= 20 + ((g / :f / 20) % 181)) END,
       'nodejs20.x', 'x86_64', CASE WHEN cold THEN 'cold' ELSE 'warm' END,
       '$LATEST', 'code-' || fn.k || '-' || floor(extract(epoch FROM now() - ts.t) / (:days * 86400 / 4.0))::int
FROM generate_series(1, :n) g
CROSS JOIN LATERAL (SELECT now() - (random() * :days * interval '1 day') + g * interval '0 s' AS t) ts
-- every function gets 5 % cold starts (g / :f picks the function's own sequence)
CROSS JOIN LATERAL (SELECT ((g / :f) % 20 = 0) AS cold) c
JOIN fn ON fn.k = g % :f;
-- the deployments, as the writer keeps them (writer.c)
INSERT INTO function_deployments (function_id, project_id, deployment, code_id, function_version, first_seen_at, last_seen_at)
SELECT function_id, project_id, code_id, code_id, max(function_version), min("timestamp"), max("timestamp")
FROM invocations GROUP BY 1, 2, 3;
ANALYZE invocations;
