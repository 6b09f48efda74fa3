/*
 * keys.h: API keys. A key is "csa_" + 32 characters from [A-Za-z0-9] drawn from libsodium's
 * CSPRNG. Only its SHA-256 (hex) and its first 8 characters are stored; the key is shown once.
 *
 * The key cache maps a key's hash to its project for KEY_CACHE_TTL seconds (negative answers
 * too, so a flood of bad keys cannot reach the database), so revocation takes effect within the
 * TTL. last_used_at is written at most once a minute per key.
 */
#ifndef CSA_KEYS_H
#define CSA_KEYS_H

#include "db.h"
#include "error.h"

#include <stddef.h>

#define CSA_KEY_LEN 36      /* "csa_" + 32 */
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

typedef struct csa_keycache csa_keycache;

csa_keycache *csa_keycache_create(int ttl_seconds, int capacity);
void csa_keycache_destroy(csa_keycache *cache);

/*
 * Authenticates `key` (may be NULL). On success writes the project id (36 chars + NUL) and the
 * key's hash (the identity rate limits count against) and returns CSA_OK. Returns CSA_ERR_AUTH for a missing, malformed, unknown or inactive key, and
 * CSA_ERR_UNAVAILABLE when the database is needed and cannot answer. Thread-safe.
 */
csa_status csa_keycache_authenticate(csa_keycache *cache, csa_db_pool *pool, const char *key,
                                     char project_id[CSA_UUID_LEN + 1], char key_hash[CSA_HASH_HEX_LEN + 1]);

/*
 * The same in parts, so that an event loop never waits on the database:
 * csa_keycache_check answers from the cache alone (no I/O): CSA_OK (project id set),
 * CSA_ERR_AUTH (missing, malformed, or known unknown/inactive), or CSA_ERR_NOT_FOUND when the key
 * is not cached: then csa_keycache_fetch (blocking, on another thread) looks its hash up and caches
 * the answer. When touch_key_id comes back non-empty, the key's last_used_at is due:
 * csa_keycache_touch (blocking, best effort) writes it.
 */
csa_status csa_keycache_check(csa_keycache *cache, const char *key, char project_id[CSA_UUID_LEN + 1],
                              char key_hash[CSA_HASH_HEX_LEN + 1], char touch_key_id[CSA_UUID_LEN + 1]);
csa_status csa_keycache_fetch(csa_keycache *cache, csa_db_pool *pool, const char key_hash[CSA_HASH_HEX_LEN + 1],
                              char project_id[CSA_UUID_LEN + 1]);
void csa_keycache_touch(csa_db_pool *pool, const char *key_id);

/* Creates a key for project_id: generates it into key_out and inserts its hash and prefix.
 * Returns the INSERT's result, success or not (caller checks PQresultStatus == PGRES_TUPLES_OK and
 * PQclear()s it): one row of id and created_at (RFC 3339, UTC). On failure key_out is wiped. */
PGresult *csa_key_insert(PGconn *conn, const char *project_id, const char *name, char key_out[CSA_KEY_LEN + 1]);

#endif
