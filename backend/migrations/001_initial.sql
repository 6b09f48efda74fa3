-- 001_initial: the spec's four tables (projects, api_keys, functions, invocations).
--
-- Changes from the spec's schema, and why:
--  * invocations.project_id: every invocation carries its project so that the table can later be
--    distributed by project (Citus) and so tenant filters need no join.
--  * invocations is partitioned by month on timestamp (declarative partitioning); its primary key
--    is (id, timestamp) because a partitioned table's keys must include the partition key.
--    Rows outside every monthly partition land in invocations_default. csa_ensure_partitions()
--    (below) creates the coming months' partitions and is called by `coldstartd migrate`,
--    `coldstartd maintain` and hourly by the server; csa_drop_partitions_before() applies retention.
--  * UNIQUE (function_id, invocation_id, timestamp): makes ingest idempotent. A retried send carries
--    the same invocation_id and timestamp and is ignored by ON CONFLICT DO NOTHING.
--  * functions.region is filled from the payload's optional "region".
--  * Optional payload additions (DESIGN.md) get their own columns: init_type, start_kind,
--    module_tree, sdk_version, sdk_overhead_ms.
--  * api_keys.key_hash is the hex SHA-256 of the key and UNIQUE (the spec's plain index becomes a
--    unique one: two keys with one hash would make authentication ambiguous).
--  * idx_invocations_project_timestamp and the partial idx_invocations_function_cold and
--    idx_invocations_project_cold serve the per-project dashboards and the cold-start breakdowns.
--  * The spec's idx_invocations_cold_start (a boolean, true for a few percent of rows) is replaced
--    by the partial idx_invocations_function_cold: no query reads all cold starts of all
--    functions, and every index costs each of the many ingest writes.
--  * The spec's idx_invocations_function_id is covered by idx_invocations_function_timestamp
--    (same leading column) and is not created.
-- gen_random_uuid() is built into PostgreSQL 13+, so no extension is needed.

CREATE TABLE projects (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    slug VARCHAR(100) UNIQUE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key_hash VARCHAR(255) NOT NULL,      -- hex SHA-256 of the whole key; the key itself is never stored
    key_prefix VARCHAR(10) NOT NULL,     -- first 8 characters ("csa_" + 4), for identification
    name VARCHAR(255),
    is_active BOOLEAN DEFAULT true,
    last_used_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE UNIQUE INDEX idx_api_keys_key_hash ON api_keys(key_hash);
CREATE INDEX idx_api_keys_project_id ON api_keys(project_id);
CREATE INDEX idx_api_keys_key_prefix ON api_keys(key_prefix);

CREATE TABLE functions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    function_name VARCHAR(255) NOT NULL,
    runtime VARCHAR(50),
    region VARCHAR(50),
    memory_allocated_mb INTEGER,
    first_seen_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_seen_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(project_id, function_name)
);

CREATE INDEX idx_functions_project_id ON functions(project_id);

CREATE TABLE invocations (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions(id) ON DELETE CASCADE,

    -- Invocation identifiers
    invocation_id VARCHAR(255) NOT NULL,
    request_id VARCHAR(255),

    -- Timing data
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    cold_start BOOLEAN NOT NULL,
    init_duration_ms INTEGER,
    execution_duration_ms INTEGER NOT NULL,
    billed_duration_ms INTEGER,

    -- Memory data
    memory_used_mb INTEGER,
    memory_allocated_mb INTEGER,

    -- Module timings: package or file -> self milliseconds
    module_timings JSONB,

    -- Additional context
    runtime_version VARCHAR(50),
    architecture VARCHAR(20),            -- x86_64 or arm64

    -- Optional payload additions (DESIGN.md)
    init_type VARCHAR(50),               -- on-demand, provisioned-concurrency, snap-start, ...
    start_kind VARCHAR(20),              -- cold, warm, proactive, provisioned
    module_tree JSONB,                   -- package-level tree with self and inclusive times
    sdk_version VARCHAR(50),
    sdk_overhead_ms DOUBLE PRECISION,

    -- Metadata
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    PRIMARY KEY (id, timestamp),
    UNIQUE (function_id, invocation_id, timestamp)
) PARTITION BY RANGE (timestamp);

CREATE TABLE invocations_default PARTITION OF invocations DEFAULT;

CREATE INDEX idx_invocations_timestamp ON invocations(timestamp);
CREATE INDEX idx_invocations_function_timestamp ON invocations(function_id, timestamp DESC);
CREATE INDEX idx_invocations_project_timestamp ON invocations(project_id, timestamp DESC);
-- Cold starts are a few percent of invocations and what every breakdown reads.
CREATE INDEX idx_invocations_function_cold ON invocations(function_id, timestamp DESC) WHERE cold_start;
CREATE INDEX idx_invocations_project_cold ON invocations(project_id, timestamp DESC) WHERE cold_start;

-- Monthly partitions: invocations_yYYYYmMM holds [first of the month, first of the next) in UTC.
-- Creates the partitions from `months_back` months ago to `months_ahead` months ahead that do not
-- exist yet. Rows of such a month already sitting in the default partition are moved into the new
-- partition in the same transaction, so creating a partition late never fails or loses rows.
-- Returns the number of partitions created.
CREATE FUNCTION csa_ensure_partitions(months_back int DEFAULT 1, months_ahead int DEFAULT 2)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m date;
    lo timestamptz;
    hi timestamptz;
    part text;
    created int := 0;
BEGIN
    FOR i IN -months_back .. months_ahead LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        part := format('invocations_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := (m::timestamp AT TIME ZONE 'UTC');
        hi := ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('CREATE TABLE %I (LIKE invocations INCLUDING DEFAULTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM invocations_default WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
        EXECUTE format('ALTER TABLE invocations ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- Retention: drops the monthly partitions that end before `cutoff`. Returns how many.
CREATE FUNCTION csa_drop_partitions_before(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped int := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'invocations'::regclass AND c.relname ~ '^invocations_y[0-9]{4}m[0-9]{2}$'
    LOOP
        IF (to_date(substr(part.relname, 14, 4) || substr(part.relname, 19, 2), 'YYYYMM') + interval '1 month')
               ::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

SELECT csa_ensure_partitions(1, 2);
