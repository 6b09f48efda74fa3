-- grafana-role.sql: the read-only PostgreSQL role Grafana's datasource logs in as.
--
-- Run by deploy/grafana-role.sh after `coldstartd migrate` (the tables must exist), by the
-- `grafana-role` one-shot service of both Compose files, and by tests/grafana/run.sh. Safe to run
-- again: it creates the role when missing, otherwise resets its password and attributes, and
-- re-issues the grants (run it after a migration that adds a table the dashboards need).
--
-- Input, read from the environment with psql 15's \getenv so that the password never appears on
-- a command line or in the repository:
--   GRAFANA_DB_USER      role name, e.g. csa_grafana
--   GRAFANA_DB_PASSWORD  its password
--
-- What the role may do: connect to this database and SELECT from projects, functions and
-- invocations (through the partitioned parent; PostgreSQL checks privileges on the parent only),
-- the hourly invocation counts (function_hourly, function_hourly_delta: migrations/002) and the
-- deployments (function_deployments: migrations/004) and the package rollups (package_hourly,
-- package_daily: migrations/007, read by csa_slowest_packages()), and what csa_cold_starts() reads
-- (function_hour_sketches: migrations/008, per function and hour; function_day_sketch_pending:
-- migrations/006, the cold starts waiting for the fold), what csa_cold_start_pieces() reads for the
-- init, start-kind and cost panels (function_init_hourly: migrations/010, and its 6-hour blocks
-- function_init_6h: migrations/013), and what csa_exec_times()
-- reads (the execution-time rollups function_exec_hourly, function_exec_daily, function_exec_delta:
-- migrations/012), and the per-function package rollups
-- (function_package_hourly, function_package_daily: migrations/011, read by csa_module_breakdown()
-- and csa_function_packages()).
-- Nothing else: not api_keys (key hashes), not schema_migrations, no writes, no DDL. Grafana runs
-- whatever SQL a dashboard editor types, so the privileges are the real boundary;
-- default_transaction_read_only and statement_timeout only make mistakes cheaper.
\set ON_ERROR_STOP on
\getenv grafana_user GRAFANA_DB_USER
\getenv grafana_password GRAFANA_DB_PASSWORD

SELECT format('CREATE ROLE %I LOGIN', :'grafana_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'grafana_user')
\gexec

ALTER ROLE :"grafana_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    INHERIT CONNECTION LIMIT 20 PASSWORD :'grafana_password';
ALTER ROLE :"grafana_user" SET default_transaction_read_only = on;
ALTER ROLE :"grafana_user" SET statement_timeout = '30s';
-- No JIT compilation: the dashboards' statements read a few thousand pre-aggregated rows, but their
-- cost estimates cross jit_above_cost, and compiling took longer than running (0.6 s of 0.65 s
-- over 30 days at 10,000,000 invocations; BENCHMARKS.md, Grafana panels).
ALTER ROLE :"grafana_user" SET jit = off;

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'grafana_user')
\gexec
GRANT USAGE ON SCHEMA public TO :"grafana_user";

-- Start from nothing on this schema's tables, then grant exactly what the dashboards read.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"grafana_user";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"grafana_user";
GRANT SELECT ON TABLE projects, functions, invocations, function_hourly, function_hourly_delta, function_deployments,
    package_hourly, package_daily, function_hour_sketches, function_day_sketch_pending, function_init_hourly,
    function_init_6h,
    function_exec_hourly, function_exec_daily, function_exec_delta,
    function_package_hourly, function_package_daily
    TO :"grafana_user";
