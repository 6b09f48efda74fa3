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

static const char *const SCOPE_NAMES[] = {"ingest", "read", "admin"}; /* bit i = 1u << i */

unsigned csa_scope_from_name(const char *name)
{
    for (unsigned i = 0; i < 3; i++)
        if (name && strcmp(name, SCOPE_NAMES[i]) == 0)
            return 1u << i;
    return 0;
}

void csa_scopes_format(unsigned scopes, const char *sep, char *out, size_t size)
{
    size_t k = 0;
    if (size == 0)
        return;
    out[0] = '\0';
    for (unsigned i = 0; i < 3; i++) {
        if (!(scopes & (1u << i)))
            continue;
        int n = snprintf(out + k, size - k, "%s%s", k ? sep : "", SCOPE_NAMES[i]);
        if (n < 0 || (size_t)n >= size - k)
            return;
        k += (size_t)n;
    }
}

unsigned csa_scopes_parse_pg(const char *text)
{
    unsigned bits = 0;
    char name[16];
    size_t n = 0;
    for (const char *p = text ? text : "";; p++) {
        if (*p == '{' || *p == '"')
            continue;
        if (*p == ',' || *p == '}' || *p == '\0') {
            name[n] = '\0';
            bits |= csa_scope_from_name(name);
            n = 0;
            if (*p == '\0')
                break;
        } else if (n + 1 < sizeof name) {
            name[n++] = *p;
        }
    }
    return bits;
}

PGresult *csa_key_insert(PGconn *conn, const char *project_id, const char *name, unsigned scopes,
                         char key_out[CSA_KEY_LEN + 1])
{
    char hash[CSA_HASH_HEX_LEN + 1], prefix[CSA_KEY_PREFIX_LEN + 1], names[40], array[48];
    csa_key_generate(key_out);
    csa_key_hash(key_out, hash);
    memcpy(prefix, key_out, CSA_KEY_PREFIX_LEN);
    prefix[CSA_KEY_PREFIX_LEN] = '\0';
    csa_scopes_format(scopes, ",", names, sizeof names);
    snprintf(array, sizeof array, "{%s}", names);
    const char *params[] = {project_id, hash, prefix, name, array};
    PGresult *res = csa_db_exec(conn,
                                "INSERT INTO api_keys (project_id, key_hash, key_prefix, name, scopes)"
                                " VALUES ($1, $2, $3, $4, $5::text[])"
                                " RETURNING id::text,"
                                " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                                5, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        sodium_memzero(key_out, CSA_KEY_LEN + 1);
    return res;
}

/*
 * The cache: two tables of fixed size under one mutex, one for known keys and one for unknown
 * (or inactive) keys, so that junk can never evict a valid key. Each table is a pool of entries
 * chained into hash buckets; when a table is full a CLOCK hand sweeps its pool, clearing each
 * entry's `referenced` bit (set on every hit) and evicting the first entry found without it
 * (expired entries go first regardless). Lookups are a few hundred nanoseconds; the database
 * round trip on a miss happens outside the lock.
 */
typedef struct cache_entry {
    char hash[CSA_HASH_HEX_LEN + 1]; /* empty string = free entry */
    char project_id[CSA_UUID_LEN + 1];
    char key_id[CSA_UUID_LEN + 1];
    unsigned scopes;          /* CSA_SCOPE_* bits */
    time_t fetched_at;        /* trusted until fetched_at + ttl */
    time_t last_used_written; /* last time last_used_at was written */
    int referenced;           /* CLOCK's second-chance bit */
    int next;                 /* next entry in the bucket, -1 = end */
} cache_entry;

typedef struct cache_table {
    cache_entry *entries; /* capacity entries */
    int *buckets;         /* capacity heads, -1 = empty; capacity is a power of two */
    int capacity;
    int used;      /* entries in use; the first `used` are never free until one is evicted */
    int hand;      /* CLOCK hand */
    int free_head; /* a free entry to reuse (-1: none besides those past `used`) */
} cache_table;

struct csa_keycache {
    pthread_mutex_t lock;
    int ttl;
    cache_table known;   /* valid keys */
    cache_table unknown; /* negative answers */
};

static int table_init(cache_table *t, int capacity)
{
    int cap = 64;
    while (cap < capacity)
        cap <<= 1;
    t->entries = calloc((size_t)cap, sizeof *t->entries);
    t->buckets = malloc((size_t)cap * sizeof *t->buckets);
    if (!t->entries || !t->buckets)
        return -1;
    for (int i = 0; i < cap; i++)
        t->buckets[i] = -1;
    t->capacity = cap;
    t->free_head = -1;
    return 0;
}

csa_keycache *csa_keycache_create(int ttl_seconds, int capacity)
{
    csa_keycache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (table_init(&c->known, capacity) < 0 || table_init(&c->unknown, capacity) < 0) {
        free(c->known.entries);
        free(c->known.buckets);
        free(c->unknown.entries);
        free(c->unknown.buckets);
        free(c);
        return NULL;
    }
    c->ttl = ttl_seconds;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void csa_keycache_destroy(csa_keycache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->known.entries);
    free(c->known.buckets);
    free(c->unknown.entries);
    free(c->unknown.buckets);
    free(c);
}

/* The hash is already uniformly distributed: its first 8 hex digits make a good bucket number. */
static unsigned slot_of(const char *hash)
{
    unsigned v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 4) | (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return v;
}

/* The entry for hash, or NULL. Caller holds the lock. */
static cache_entry *table_find(cache_table *t, const char *hash)
{
    for (int i = t->buckets[slot_of(hash) & (unsigned)(t->capacity - 1)]; i >= 0; i = t->entries[i].next)
        if (strcmp(t->entries[i].hash, hash) == 0)
            return &t->entries[i];
    return NULL;
}

/* Unlinks and frees entry index i. Caller holds the lock. */
static void table_remove(cache_table *t, int i)
{
    int *pp = &t->buckets[slot_of(t->entries[i].hash) & (unsigned)(t->capacity - 1)];
    while (*pp != i)
        pp = &t->entries[*pp].next;
    *pp = t->entries[i].next;
    memset(&t->entries[i], 0, sizeof t->entries[i]);
    t->entries[i].next = t->free_head;
    t->free_head = i;
    t->used--;
}

/* A free entry, evicting one by CLOCK when the table is full. Caller holds the lock. */
static int table_take(cache_table *t, time_t now, int ttl)
{
    if (t->free_head >= 0) {
        int i = t->free_head;
        t->free_head = t->entries[i].next;
        t->used++;
        return i;
    }
    if (t->used < t->capacity) /* never used yet: entries are handed out in order at first */
        return t->used++;
    for (;;) { /* at most two turns: the first clears every referenced bit */
        int i = t->hand;
        t->hand = (t->hand + 1) & (t->capacity - 1);
        cache_entry *e = &t->entries[i];
        if (e->referenced && now - e->fetched_at < ttl) {
            e->referenced = 0;
            continue;
        }
        table_remove(t, i);
        t->free_head = t->entries[i].next;
        t->used++;
        return i;
    }
}

static void store(csa_keycache *c, const char *hash, int valid, const csa_key_identity *who, const char *key_id,
                  time_t now)
{
    pthread_mutex_lock(&c->lock);
    cache_table *t = valid ? &c->known : &c->unknown, *other = valid ? &c->unknown : &c->known;
    cache_entry *stale = table_find(other, hash); /* a key that was revoked, or created since */
    if (stale)
        table_remove(other, (int)(stale - other->entries));
    cache_entry *e = table_find(t, hash);
    if (!e) {
        int i = table_take(t, now, c->ttl);
        e = &t->entries[i];
        memset(e, 0, sizeof *e);
        snprintf(e->hash, sizeof e->hash, "%s", hash);
        int *head = &t->buckets[slot_of(hash) & (unsigned)(t->capacity - 1)];
        e->next = *head;
        *head = i;
    }
    e->scopes = valid ? who->scopes : 0;
    snprintf(e->project_id, sizeof e->project_id, "%s", valid ? who->project_id : "");
    snprintf(e->key_id, sizeof e->key_id, "%s", key_id ? key_id : "");
    e->fetched_at = now;
    e->last_used_written = now;
    e->referenced = 0;
    pthread_mutex_unlock(&c->lock);
}

void csa__keycache_store(csa_keycache *c, const char *key_hash, int valid, const csa_key_identity *who,
                         const char *key_id, time_t now)
{
    store(c, key_hash, valid, who, key_id, now);
}

csa_status csa_keycache_check(csa_keycache *c, const char *key, csa_key_identity *who,
                              char touch_key_id[CSA_UUID_LEN + 1])
{
    touch_key_id[0] = '\0';
    who->key_hash[0] = '\0';
    who->stale = 0;
    if (!csa_key_well_formed(key))
        return CSA_ERR_AUTH;
    csa_key_hash(key, who->key_hash);
    time_t now = time(NULL);
    csa_status st = CSA_ERR_NOT_FOUND;
    pthread_mutex_lock(&c->lock);
    cache_entry *e = table_find(&c->known, who->key_hash);
    if (e && now - e->fetched_at < c->ttl) {
        e->referenced = 1;
        memcpy(who->project_id, e->project_id, CSA_UUID_LEN + 1);
        who->scopes = e->scopes;
        if (now - e->last_used_written >= 60) {
            e->last_used_written = now; /* claim the write so only one thread does it */
            memcpy(touch_key_id, e->key_id, CSA_UUID_LEN + 1);
        }
        st = CSA_OK;
    } else if (e) {
        who->stale = 1;
    } else {
        e = table_find(&c->unknown, who->key_hash);
        if (e && now - e->fetched_at < c->ttl) {
            e->referenced = 1;
            st = CSA_ERR_AUTH;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

void csa_keycache_counts(csa_keycache *c, int *known, int *unknown)
{
    pthread_mutex_lock(&c->lock);
    *known = c->known.used;
    *unknown = c->unknown.used;
    pthread_mutex_unlock(&c->lock);
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

csa_status csa_keycache_fetch(csa_keycache *c, csa_db_pool *pool, csa_key_identity *who)
{
    time_t now = time(NULL);
    char key_id[CSA_UUID_LEN + 1] = "";
    PGconn *conn = csa_db_pool_acquire(pool, 2000);
    if (!conn)
        return CSA_ERR_UNAVAILABLE;
    const char *params[] = {who->key_hash};
    /* one round trip: look the key up and, at most once a minute, record its use */
    PGresult *res = csa_db_exec(conn,
                                "WITH k AS (SELECT id, project_id, last_used_at, scopes FROM api_keys "
                                "           WHERE key_hash = $1 AND is_active), "
                                "t AS (UPDATE api_keys a SET last_used_at = now() FROM k "
                                "      WHERE a.id = k.id AND (k.last_used_at IS NULL "
                                "            OR k.last_used_at < now() - interval '60 seconds') RETURNING a.id) "
                                "SELECT k.id::text, k.project_id::text, k.scopes::text FROM k",
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
        snprintf(who->project_id, sizeof who->project_id, "%s", PQgetvalue(res, 0, 1));
        who->scopes = csa_scopes_parse_pg(PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    csa_db_pool_release(pool, conn, 0);
    store(c, who->key_hash, found, who, found ? key_id : NULL, now);
    return found ? CSA_OK : CSA_ERR_AUTH;
}

csa_status csa_keycache_authenticate(csa_keycache *c, csa_db_pool *pool, const char *key, csa_key_identity *who)
{
    char touch[CSA_UUID_LEN + 1];
    csa_status st = csa_keycache_check(c, key, who, touch);
    if (st == CSA_ERR_NOT_FOUND)
        return csa_keycache_fetch(c, pool, who);
    if (touch[0])
        csa_keycache_touch(pool, touch);
    return st;
}
