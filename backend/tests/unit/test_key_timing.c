/*
 * Timing of API key checks: the time csa_keycache_authenticate() takes must not depend on how much
 * of a wrong key matches the real one. Two wrong keys are checked many times, interleaved:
 *   (a) shares no character with the real key after the fixed "csa_" prefix,
 *   (b) is the real key with its last character changed.
 * Their median times must agree within a generous margin (the machine may be loaded), both on the
 * cached path (the answer for a key hash is remembered for KEY_CACHE_TTL) and on the database
 * path (KEY_CACHE_TTL 0: every check is a query by the key's SHA-256).
 *
 * It holds by construction: a presented key is never compared with a stored key. It is checked for
 * format (length and alphabet, the same work for every well-formed key), hashed with SHA-256
 * (fixed-length input, constant work) and looked up by that hash; the hash of (b) shares no more
 * with the real key's hash than the hash of (a) does.
 *
 * Needs a PostgreSQL: CSA_TEST_DATABASE_URL (an admin URL, as for the integration tests). A scratch
 * database is created, migrated with backend/migrations and dropped. Skipped without it.
 */
#include "db.h"
#include "keys.h"
#include "migrate.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char admin_url[1024], db_url[1024], db_name[64], real_key[CSA_KEY_LEN + 1];

/* url with its database (the path) replaced by name */
static void with_database(const char *url, const char *name, char *out, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *path = scheme ? strchr(scheme + 3, '/') : NULL;
    const char *query = path ? strchr(path, '?') : NULL;
    int n = path ? (int)(path - url) : (int)strlen(url);
    int w = snprintf(out, size, "%.*s/%s%s", n, url, name, query ? query : "");
    cr_assert(w > 0 && (size_t)w < size, "URL too long");
}

static void exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static int set_up(void)
{
    const char *url = getenv("CSA_TEST_DATABASE_URL");
    if (!url || !*url)
        return 0;
    snprintf(admin_url, sizeof admin_url, "%s", url);
    snprintf(db_name, sizeof db_name, "csa_unit_keytiming_%ld", (long)getpid());
    with_database(admin_url, db_name, db_url, sizeof db_url);
    char err[512], sql[256];
    PGconn *admin = csa_db_connect(admin_url, err, sizeof err);
    cr_assert(admin, "admin connection: %s", err);
    exec_ok(admin, "SET client_min_messages = warning");
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db_name);
    exec_ok(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db_name);
    exec_ok(admin, sql);
    PQfinish(admin);

    PGconn *conn = csa_db_connect(db_url, err, sizeof err);
    cr_assert(conn, "connection: %s", err);
    /* backend/migrations, found from this file's path (CMake compiles it by its absolute path) */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    cr_assert(slash, "__FILE__ is not a path: %s", __FILE__);
    snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../../migrations");
    cr_assert(csa_migrate(conn, dir, err, sizeof err) >= 0, "migrate %s: %s", dir, err);
    PGresult *res = PQexec(conn, "INSERT INTO projects (name, slug) VALUES ('Timing', 'timing') RETURNING id::text");
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    char project_id[CSA_UUID_LEN + 1];
    snprintf(project_id, sizeof project_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = csa_key_insert(conn, project_id, "timing", CSA_SCOPE_INGEST, real_key);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(conn);
    return 1;
}

static void tear_down(void)
{
    if (!db_name[0])
        return;
    char err[512], sql[256];
    PGconn *admin = csa_db_connect(admin_url, err, sizeof err);
    if (!admin)
        return;
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Times `rounds` checks of each wrong key, interleaved (ab, ba, ab, ...), after one untimed check
 * of each; writes the medians in nanoseconds. Every check must refuse the key. */
static void time_checks(csa_keycache *cache, csa_db_pool *pool, const char *a, const char *b, int rounds,
                        double *median_a, double *median_b)
{
    double *ta = calloc((size_t)rounds, sizeof *ta), *tb = calloc((size_t)rounds, sizeof *tb);
    cr_assert(ta && tb);
    csa_key_identity who;
    cr_assert_eq(csa_keycache_authenticate(cache, pool, a, &who), CSA_ERR_AUTH);
    cr_assert_eq(csa_keycache_authenticate(cache, pool, b, &who), CSA_ERR_AUTH);
    for (int i = 0; i < rounds; i++) {
        for (int j = 0; j < 2; j++) {
            int first_a = (i + j) % 2 == 0;
            const char *key = first_a ? a : b;
            double t0 = now_ns();
            csa_status st = csa_keycache_authenticate(cache, pool, key, &who);
            double dt = now_ns() - t0;
            cr_assert_eq(st, CSA_ERR_AUTH, "a wrong key was accepted (or the database failed: %d)", st);
            (first_a ? ta : tb)[i] = dt;
        }
    }
    *median_a = median(ta, rounds);
    *median_b = median(tb, rounds);
    free(ta);
    free(tb);
}

/* (a): no character in common with the real key after "csa_"; (b): all but the last. */
static void wrong_keys(char a[CSA_KEY_LEN + 1], char b[CSA_KEY_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    memcpy(a, real_key, CSA_KEY_LEN + 1);
    memcpy(b, real_key, CSA_KEY_LEN + 1);
    for (int i = 4; i < CSA_KEY_LEN; i++) {
        const char *p = strchr(alphabet, real_key[i]);
        a[i] = alphabet[(p - alphabet + 1 + i) % 62];
        cr_assert_neq(a[i], real_key[i]);
    }
    const char *p = strchr(alphabet, real_key[CSA_KEY_LEN - 1]);
    b[CSA_KEY_LEN - 1] = alphabet[(p - alphabet + 1) % 62];
    cr_assert(csa_key_well_formed(a) && csa_key_well_formed(b));
    cr_assert_str_neq(b, real_key);
    cr_assert(strncmp(b, real_key, CSA_KEY_LEN - 1) == 0);
}

TestSuite(key_timing, .init = (void (*)(void))csa_keys_init, .fini = tear_down, .timeout = 240);

Test(key_timing, cached_checks_take_as_long_for_a_near_miss_as_for_a_far_miss)
{
    if (!set_up())
        cr_skip_test("CSA_TEST_DATABASE_URL is not set");
    csa_db_pool *pool = csa_db_pool_create(db_url, 2);
    csa_keycache *cache = csa_keycache_create(3600, 1024);
    csa_key_identity who;
    char a[CSA_KEY_LEN + 1], b[CSA_KEY_LEN + 1];
    cr_assert_eq(csa_keycache_authenticate(cache, pool, real_key, &who), CSA_OK, "the real key");
    cr_assert_eq(who.scopes, CSA_SCOPE_INGEST);
    wrong_keys(a, b);
    double ma, mb;
    time_checks(cache, pool, a, b, 100000, &ma, &mb);
    double diff = ma > mb ? ma - mb : mb - ma, bigger = ma > mb ? ma : mb;
    cr_log_info("cached: median %.0f ns (no character in common), %.0f ns (all but the last)", ma, mb);
    fprintf(stderr, "# key timing, cached: median %.0f ns (no character in common), %.0f ns (all but the last)\n", ma, mb);
    cr_expect(diff <= 0.25 * bigger + 100, "medians differ: %.0f ns vs %.0f ns", ma, mb);
    csa_keycache_destroy(cache);
    csa_db_pool_destroy(pool);
}

Test(key_timing, database_checks_take_as_long_for_a_near_miss_as_for_a_far_miss)
{
    if (!set_up())
        cr_skip_test("CSA_TEST_DATABASE_URL is not set");
    csa_db_pool *pool = csa_db_pool_create(db_url, 2);
    csa_keycache *cache = csa_keycache_create(0, 1024); /* TTL 0: every check asks the database */
    char a[CSA_KEY_LEN + 1], b[CSA_KEY_LEN + 1];
    wrong_keys(a, b);
    double ma, mb;
    time_checks(cache, pool, a, b, 2000, &ma, &mb);
    double diff = ma > mb ? ma - mb : mb - ma, bigger = ma > mb ? ma : mb;
    fprintf(stderr, "# key timing, database: median %.0f ns (no character in common), %.0f ns (all but the last)\n", ma, mb);
    cr_expect(diff <= 0.25 * bigger + 20000, "medians differ: %.0f ns vs %.0f ns", ma, mb);
    csa_keycache_destroy(cache);
    csa_db_pool_destroy(pool);
}
