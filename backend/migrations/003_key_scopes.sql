-- 003: API key scopes (issue 19).
--
-- A key may do only what its scopes allow (keys.h):
--   ingest  send records (POST /api/v1/ingest, /ingest/batch, /ingest/firehose): the scope of
--           the key that goes into a function's environment
--   read    the read API (GET /api/v1/functions, /functions/{id})
--   admin   manage the project's keys (GET/POST/DELETE /api/v1/api-keys)
-- A call outside its key's scopes is 403 FORBIDDEN.
--
-- Every key that exists when this migration runs keeps working exactly as it did: it gets all
-- three scopes. Rotate such keys (create an ingest-only key for the functions, revoke the old
-- one) to benefit from scopes.
--
-- The column's default stays "all three" so that a replica still running the previous binary
-- during a rolling upgrade (it inserts keys without naming scopes) behaves as it did. This binary
-- always names the scopes of a key it creates.

ALTER TABLE api_keys ADD COLUMN scopes TEXT[] NOT NULL DEFAULT '{ingest,read,admin}';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known
    CHECK (scopes <@ '{ingest,read,admin}'::text[] AND cardinality(scopes) >= 1);
