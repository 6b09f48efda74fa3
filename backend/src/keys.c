/* keys.c: see keys.h. */
#include "keys.h"

#include "log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int csa_keys_init(void) { return sodium_init() < 0 ? -1 : 0; }

void csa_key_generate(char out[CSA_KEY_LEN + 1])
{
    memcpy(out, "csa_", 4);
    for (int i = 4; i < CSA_KEY_LEN; i++)
        out[i] = ALPHABET[randombytes_uniform(sizeof ALPHABET - 1)]; /* uniform: no modulo bias */
    out[CSA_KEY_LEN] = '\0';
}

int csa_key_well_formed(const char *s)
{
    if (!s || strncmp(s, "csa_", 4) != 0 || strlen(s) != CSA_KEY_LEN)
        return 0;
    for (int i = 4; i < CSA_KEY_LEN; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void csa_key_hash(const char *key, char hex[CSA_HASH_HEX_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hex, CSA_HASH_HEX_LEN + 1, digest, sizeof digest);
}

PGresult *csa_key_insert(PGconn *conn, const char *project_id, const char *name, char key_out[CSA_KEY_LEN + 1])
{
    char hash[CSA_HASH_HEX_LEN + 1], prefix[CSA_KEY_PREFIX_LEN + 1];
    csa_key_generate(key_out);
    csa_key_hash(key_out, hash);
    memcpy(prefix, key_out, CSA_KEY_PREFIX_LEN);
    prefix[CSA_KEY_PREFIX_LEN] = '\0';
    const char *params[] = {project_id, hash, prefix, name};
    PGresult *res = csa_db_exec(conn,
                                "INSERT INTO api_keys (project_id, key_hash, key_prefix, name) VALUES ($1, $2, $3, $4)"
                                " RETURNING id::text,"
                                " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                                4, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        sodium_memzero(key_out, CSA_KEY_LEN + 1);
    return res;
}

/*
 * The cache: an open-addressing table keyed by the key's hash, under one mutex (lookups are a
 * few hundred nanoseconds; the database round trip on a miss happens outside the lock).
 * When full, the table is cleared: entries are cheap to refetch and the bound keeps memory flat
 * under a flood of random keys.
 */
typedef struct cache_entry {
    char hash[CSA_HASH_HEX_LEN + 1]; /* empty string = free slot */
    char project_id[CSA_UUID_LEN + 1];
    char key_id[CSA_UUID_LEN + 1];
    int valid;                       /* 0: known bad key (negative entry) */
    time_t fetched_at;               /* trusted until fetched_at + ttl */
    time_t last_used_written;        /* last time last_used_at was written */
} cache_entry;

struct csa_keycache {
    pthread_mutex_t lock;
    int ttl;
    int capacity; /* power of two */
    int used;
    cache_entry *entries;
};

csa_keycache *csa_keycache_create(int ttl_seconds, int capacity)
{
    csa_keycache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    int cap = 64;
    while (cap < capacity)
        cap <<= 1;
    c->entries = calloc((size_t)cap, sizeof *c->entries);
    if (!c->entries) {
        free(c);
        return NULL;
    }
    c->capacity = cap;
    c->ttl = ttl_seconds;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void csa_keycache_destroy(csa_keycache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->entries);
    free(c);
}

/* The hash is already uniformly distributed: its first 8 hex digits make a good slot number. */
static unsigned slot_of(const char *hash)
{
    unsigned v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 4) | (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return v;
}

/* Finds the entry for hash or the free slot where it would go. Caller holds the lock. */
static cache_entry *find_slot(csa_keycache *c, const char *hash)
{
    unsigned mask = (unsigned)c->capacity - 1;
    for (unsigned i = slot_of(hash) & mask;; i = (i + 1) & mask) {
        cache_entry *e = &c->entries[i];
        if (e->hash[0] == '\0' || strcmp(e->hash, hash) == 0)
            return e;
    }
}

static void store(csa_keycache *c, const char *hash, int valid, const char *project_id, const char *key_id,
                  time_t now, time_t last_used_written)
{
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find_slot(c, hash);
    if (e->hash[0] == '\0') {
        if (c->used + 1 > c->capacity / 2) {
            memset(c->entries, 0, sizeof *c->entries * (size_t)c->capacity);
            c->used = 0;
            e = find_slot(c, hash);
        }
        c->used++;
    }
    snprintf(e->hash, sizeof e->hash, "%s", hash);
    e->valid = valid;
    snprintf(e->project_id, sizeof e->project_id, "%s", project_id ? project_id : "");
    snprintf(e->key_id, sizeof e->key_id, "%s", key_id ? key_id : "");
    e->fetched_at = now;
    e->last_used_written = last_used_written;
    pthread_mutex_unlock(&c->lock);
}

csa_status csa_keycache_check(csa_keycache *c, const char *key, char project_id[CSA_UUID_LEN + 1],
                              char hash[CSA_HASH_HEX_LEN + 1], char touch_key_id[CSA_UUID_LEN + 1])
{
    touch_key_id[0] = '\0';
    if (!csa_key_well_formed(key))
        return CSA_ERR_AUTH;
    csa_key_hash(key, hash);
    time_t now = time(NULL);
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find_slot(c, hash);
    if (e->hash[0] == '\0' || now - e->fetched_at >= c->ttl) {
        pthread_mutex_unlock(&c->lock);
        return CSA_ERR_NOT_FOUND;
    }
    int valid = e->valid;
    if (valid) {
        memcpy(project_id, e->project_id, CSA_UUID_LEN + 1);
        if (now - e->last_used_written >= 60) {
            e->last_used_written = now; /* claim the write so only one thread does it */
            memcpy(touch_key_id, e->key_id, CSA_UUID_LEN + 1);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return valid ? CSA_OK : CSA_ERR_AUTH;
}

void csa_keycache_touch(csa_db_pool *pool, const char *key_id)
{
    PGconn *conn = csa_db_pool_acquire(pool, 100);
    if (!conn)
        return; /* best effort: last_used_at is a hint, written again within a minute */
    const char *params[] = {key_id};
    PGresult *res = csa_db_exec(conn, "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 1, params);
    int broken = csa_db_is_unavailable(conn, res) && PQresultStatus(res) != PGRES_COMMAND_OK;
    PQclear(res);
    csa_db_pool_release(pool, conn, broken);
}

csa_status csa_keycache_fetch(csa_keycache *c, csa_db_pool *pool, const char hash[CSA_HASH_HEX_LEN + 1],
                              char project_id[CSA_UUID_LEN + 1])
{
    time_t now = time(NULL);
    char key_id[CSA_UUID_LEN + 1] = "";
    PGconn *conn = csa_db_pool_acquire(pool, 2000);
    if (!conn)
        return CSA_ERR_UNAVAILABLE;
    const char *params[] = {hash};
    /* one round trip: look the key up and, at most once a minute, record its use */
    PGresult *res = csa_db_exec(conn,
                                "WITH k AS (SELECT id, project_id, last_used_at FROM api_keys "
                                "           WHERE key_hash = $1 AND is_active), "
                                "t AS (UPDATE api_keys a SET last_used_at = now() FROM k "
                                "      WHERE a.id = k.id AND (k.last_used_at IS NULL "
                                "            OR k.last_used_at < now() - interval '60 seconds') RETURNING a.id) "
                                "SELECT k.id::text, k.project_id::text FROM k",
                                1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int broken = csa_db_is_unavailable(conn, res);
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        msg[strcspn(msg, "\n")] = '\0';
        csa_logf(CSA_LOG_WARN, "key lookup failed: %s", msg);
        PQclear(res);
        csa_db_pool_release(pool, conn, broken);
        return CSA_ERR_UNAVAILABLE;
    }
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(key_id, sizeof key_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(project_id, CSA_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    csa_db_pool_release(pool, conn, 0);
    store(c, hash, found, found ? project_id : NULL, found ? key_id : NULL, now, now);
    return found ? CSA_OK : CSA_ERR_AUTH;
}

csa_status csa_keycache_authenticate(csa_keycache *c, csa_db_pool *pool, const char *key,
                                     char project_id[CSA_UUID_LEN + 1], char hash[CSA_HASH_HEX_LEN + 1])
{
    char touch[CSA_UUID_LEN + 1];
    csa_status st = csa_keycache_check(c, key, project_id, hash, touch);
    if (st == CSA_ERR_NOT_FOUND)
        return csa_keycache_fetch(c, pool, hash, project_id);
    if (touch[0])
        csa_keycache_touch(pool, touch);
    return st;
}
