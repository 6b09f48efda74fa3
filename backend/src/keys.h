/*
 * keys.h: API keys. A key is "csa_" + 32 characters from [A-Za-z0-9] drawn from libsodium's
 * CSPRNG. Only its SHA-256 (hex) and its first 8 characters are stored; the key is shown once.
 *
 * A key has scopes (migrations/003): ingest, read, admin, a bit set here. A key may create only
 * keys whose scopes it has itself.
 *
 * The key cache maps a key's hash to its project and scopes for KEY_CACHE_TTL seconds, so
 * revocation takes effect within the TTL. Known keys and unknown keys live in two tables of fixed
 * size, each evicting by CLOCK (second chance): a flood of random keys can only push out other
 * unknown keys, never a valid one. last_used_at is written at most once a minute per key.
 */
#ifndef CSA_KEYS_H
#define CSA_KEYS_H

#include "db.h"
#include "error.h"

#include <stddef.h>
#include <time.h>

#define CSA_KEY_LEN 36 /* "csa_" + 32 */
#define CSA_KEY_PREFIX_LEN 8
#define CSA_HASH_HEX_LEN 64
#define CSA_UUID_LEN 36

/* libsodium must be initialised once before keys are generated (sodium_init). Returns 0/-1. */
int csa_keys_init(void);

/* Writes a new key (CSA_KEY_LEN chars + NUL) into out. */
void csa_key_generate(char out[CSA_KEY_LEN + 1]);

/* 1 if s has the key format, else 0. */
int csa_key_well_formed(const char *s);

/* Writes the lowercase hex SHA-256 of key into hex (65 bytes). */
void csa_key_hash(const char *key, char hex[CSA_HASH_HEX_LEN + 1]);

/* Scopes, as bits. The names are the API's and the database's. */
#define CSA_SCOPE_INGEST 1u /* send records */
#define CSA_SCOPE_READ 2u   /* the read API */
#define CSA_SCOPE_ADMIN 4u  /* manage the project's keys */
#define CSA_SCOPES_ALL 7u

/* The bit of one scope name ("ingest", "read", "admin"), or 0 for anything else. */
unsigned csa_scope_from_name(const char *name);
/* The names of the scopes in bits, in the order ingest, read, admin, joined by sep, into out
 * (always NUL-terminated). "{" + csa_scopes_format(..., ",") + "}" is PostgreSQL's array form. */
void csa_scopes_format(unsigned scopes, const char *sep, char *out, size_t size);
/* Bits of a PostgreSQL text[] in its text form ("{ingest,read}"); unknown names are ignored. */
unsigned csa_scopes_parse_pg(const char *text);

/* Who a request's key is: what tenancy, rate limits and scope checks use. */
typedef struct csa_key_identity {
    char project_id[CSA_UUID_LEN + 1];
    char key_hash[CSA_HASH_HEX_LEN + 1]; /* the identity per-key rate limits count against */
    unsigned scopes;                     /* CSA_SCOPE_* bits */
    int stale; /* csa_keycache_check: not cached now, but valid when last looked up (its TTL ran
                  out): the lookup is due, and the per-address failure limit does not apply */
} csa_key_identity;

typedef struct csa_keycache csa_keycache;

/* A cache holding up to `capacity` known keys and as many unknown ones (rounded up to a power of
 * two, at least 64 each). Freed with csa_keycache_destroy. */
csa_keycache *csa_keycache_create(int ttl_seconds, int capacity);
void csa_keycache_destroy(csa_keycache *cache);

/*
 * Authenticates `key` (may be NULL). On success fills *who and returns CSA_OK. Returns
 * CSA_ERR_AUTH for a missing, malformed, unknown or inactive key, and CSA_ERR_UNAVAILABLE when the
 * database is needed and cannot answer. Thread-safe.
 */
csa_status csa_keycache_authenticate(csa_keycache *cache, csa_db_pool *pool, const char *key, csa_key_identity *who);

/*
 * The same in parts, so that an event loop never waits on the database:
 * csa_keycache_check answers from the cache alone (no I/O): CSA_OK (*who filled), CSA_ERR_AUTH
 * (missing, malformed, or known unknown/inactive), or CSA_ERR_NOT_FOUND when the key is not
 * cached (who->key_hash is set either way for a well-formed key): then csa_keycache_fetch
 * (blocking, on another thread) looks who->key_hash up, caches the answer and fills the rest.
 * When touch_key_id comes back non-empty, the key's last_used_at is due: csa_keycache_touch
 * (blocking, best effort) writes it.
 */
csa_status csa_keycache_check(csa_keycache *cache, const char *key, csa_key_identity *who,
                              char touch_key_id[CSA_UUID_LEN + 1]);
csa_status csa_keycache_fetch(csa_keycache *cache, csa_db_pool *pool, csa_key_identity *who);
void csa_keycache_touch(csa_db_pool *pool, const char *key_id);

/* Internal, for tests: caches the answer for key_hash as csa_keycache_fetch would (valid: *who's
 * project and scopes) at time now. */
void csa__keycache_store(csa_keycache *cache, const char *key_hash, int valid, const csa_key_identity *who,
                         const char *key_id, time_t now);

/* Entries held now: known and unknown keys (for tests and metrics). */
void csa_keycache_counts(csa_keycache *cache, int *known, int *unknown);

/* Creates a key with `scopes` (CSA_SCOPE_* bits, not 0) for project_id: generates it into key_out
 * and inserts its hash, prefix and scopes. Returns the INSERT's result, success or not (caller
 * checks PQresultStatus == PGRES_TUPLES_OK and PQclear()s it): one row of id and created_at
 * (RFC 3339, UTC). On failure key_out is wiped. */
PGresult *csa_key_insert(PGconn *conn, const char *project_id, const char *name, unsigned scopes,
                         char key_out[CSA_KEY_LEN + 1]);

#endif
