-- 014: the day and hour sketches' package blobs (function_day_sketches.modules,
-- function_hour_sketches.modules, migrations 006 and 008) compressed with LZ4 instead of
-- PostgreSQL's default pglz (issue 17: "10x the traffic costs at most 1.5x").
--
-- The function detail reads every whole day's and hour's blob of its window (30 days at
-- 10,000,000 invocations: about 1.3 MB, 2.3 times the 1,000,000 figure): decompressing them was
-- about 2 ms of every 3 that PostgreSQL spent handing them over with pglz, under 1 with LZ4
-- (BENCHMARKS.md, "Read API latency with hour sketches"). LZ4 keeps them about 1.3 times larger
-- than pglz does, still a third smaller than uncompressed.
--
-- * Only where the server was built with LZ4 (default_toast_compression accepts 'lz4': Debian's
--   and the PGDG packages are); elsewhere this migration changes nothing.
-- * A column's compression applies to the values written from then on: the rows already stored
--   are rewritten once here (`modules || ''`: a new value, compressed again), which leaves their
--   old versions to VACUUM.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE function_day_sketches ALTER COLUMN modules SET COMPRESSION lz4;
        ALTER TABLE function_hour_sketches ALTER COLUMN modules SET COMPRESSION lz4;
        UPDATE function_day_sketches SET modules = modules || ''::bytea;
        UPDATE function_hour_sketches SET modules = modules || ''::bytea;
    END IF;
END
$$;
