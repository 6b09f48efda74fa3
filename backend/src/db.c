/* db.c: see db.h. */
#include "db.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

PGconn *csa_db_connect(const char *url, char *err, size_t err_size)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {url, "3", "coldstartd", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, err_size, "%s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int csa_db_is_unavailable(PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return 1;
    if (!res)
        return 1;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state)
        return PQresultStatus(res) == PGRES_FATAL_ERROR; /* client-side failure, e.g. lost socket */
    return strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 || strncmp(state, "53", 2) == 0 ||
           strcmp(state, "25006") == 0 /* read-only transaction: writes refused */;
}

csa_db_fault csa_db_classify(PGconn *conn, const PGresult *res)
{
    if (csa_db_is_unavailable(conn, res))
        return CSA_DB_FAULT_UNAVAILABLE;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state)
        return CSA_DB_FAULT_OTHER;
    if (strncmp(state, "40", 2) == 0 || strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
        return CSA_DB_FAULT_TRANSIENT;
    if (strcmp(state, "23505") == 0)
        return CSA_DB_FAULT_UNIQUE;
    if (strncmp(state, "22", 2) == 0)
        return CSA_DB_FAULT_BAD_INPUT;
    return CSA_DB_FAULT_OTHER;
}

int csa_db_is_conflict(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

csa_status csa_db_failure(PGconn *conn, const PGresult *res, const char *what, char *detail, size_t detail_size)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    msg[strcspn(msg, "\n")] = '\0';
    csa_db_fault fault = csa_db_classify(conn, res);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    csa_logf(fault == CSA_DB_FAULT_OTHER ? CSA_LOG_ERROR : CSA_LOG_WARN, "%s failed: %s (SQLSTATE %s)", what, msg,
             state ? state : "none");
    switch (fault) {
    case CSA_DB_FAULT_UNAVAILABLE:
        snprintf(detail, detail_size, "The database is unavailable; retry later.");
        return CSA_ERR_UNAVAILABLE;
    case CSA_DB_FAULT_TRANSIENT:
        snprintf(detail, detail_size, "The database is busy; retry later.");
        return CSA_ERR_UNAVAILABLE;
    default: snprintf(detail, detail_size, "The query failed."); return CSA_ERR_INTERNAL;
    }
}

int csa_db_alive(PGconn *conn)
{
    /* PQconsumeInput reads what the server sent while the connection sat idle without waiting:
     * a backend that was terminated (pg_terminate_backend, a restart) has sent its FATAL error and
     * closed the socket, which this notices, so the connection is replaced before a query fails */
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return 0;
    /* the first read takes the server's farewell message, the second meets the closed socket */
    for (int i = 0; i < 2; i++)
        if (PQconsumeInput(conn) != 1 || PQstatus(conn) != CONNECTION_OK)
            return 0;
    return 1;
}

PGresult *csa_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

/* Prepares `name` on this session; returns NULL, or the failed result.
 * Generic plans: partitions are pruned when the plan runs, so a query over the partitioned
 * table is planned once per connection instead of once per request (planning it costs more
 * than running it). Custom plans would win the planner's cost comparison and be re-planned on
 * every execution. The setting is per session; this pool's connections only run queries. */
static PGresult *prepare_generic(PGconn *conn, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQexec(conn, "SET plan_cache_mode = force_generic_plan");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return res;
    PQclear(res);
    res = PQprepare(conn, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return res;
    PQclear(res);
    return NULL;
}

/* Reads and frees every result left of the current query, so that the connection is idle again. */
static void drain(PGconn *conn)
{
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
}

PGresult *csa_db_exec_prepared(PGconn *conn, const char *name, const char *sql, int nparams, const char *const *params)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) /* a failed first use would abort the caller's transaction */
        return csa_db_exec(conn, sql, nparams, params);
    PGresult *res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state || strcmp(state, "26000") != 0) /* 26000: no such prepared statement (yet) */
        return res;
    PQclear(res);
    res = prepare_generic(conn, name, sql, nparams);
    return res ? res : PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
}

PGresult *csa_db_stream_prepared(PGconn *conn, const char *name, const char *sql, int nparams,
                                 const char *const *params, csa_db_row_fn row_fn, void *arg, int *stopped)
{
    *stopped = 0;
    /* inside a transaction (alerts.c compares in its own): not prepared, since a failed first use
     * would abort the caller's transaction */
    int plain = PQtransactionStatus(conn) != PQTRANS_IDLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        int sent = plain ? PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 1)
                         : PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL, 1);
        if (!sent || !PQsetSingleRowMode(conn)) {
            drain(conn);
            return NULL; /* the caller classifies the connection's state */
        }
        int resend = 0;
        PGresult *res;
        while (!resend && (res = PQgetResult(conn)) != NULL) {
            if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
                int stop = row_fn(res, arg);
                PQclear(res);
                if (stop) {
                    /* the rest is not wanted: cancel the statement (best effort) and discard it */
                    *stopped = 1;
                    PGcancel *cancel = PQgetCancel(conn);
                    if (cancel) {
                        char err[128];
                        PQcancel(cancel, err, sizeof err);
                        PQfreeCancel(cancel);
                    }
                    drain(conn);
                    return PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
                }
                continue;
            }
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (attempt == 0 && state && strcmp(state, "26000") == 0) { /* not prepared on this session yet */
                PQclear(res);
                drain(conn);
                PGresult *failed = prepare_generic(conn, name, sql, nparams);
                if (failed)
                    return failed;
                resend = 1;
                continue;
            }
            drain(conn); /* the final result: all rows read, or the error */
            return res;
        }
        if (!resend)
            break;
    }
    return NULL;
}

/* PostgreSQL's type OIDs of the numbers read in binary (pg_type.dat) */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701

/* a binary column's big-endian integer of n bytes (n: 2, 4, 8; the length is checked) */
static int binary_uint(const PGresult *res, int row, int col, int n, uint64_t *v)
{
    if (PQgetlength(res, row, col) != n)
        return -1;
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t u = 0;
    for (int k = 0; k < n; k++)
        u = u << 8 | p[k];
    *v = u;
    return 0;
}

double csa_db_double(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    if (PQfformat(res, col) == 0)
        return strtod(PQgetvalue(res, row, col), NULL);
    uint64_t u;
    switch (PQftype(res, col)) {
    case OID_FLOAT8: {
        if (binary_uint(res, row, col, 8, &u) < 0)
            return 0;
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    case OID_FLOAT4: {
        if (binary_uint(res, row, col, 4, &u) < 0)
            return 0;
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, sizeof f);
        return f;
    }
    default: return (double)csa_db_int64(res, row, col);
    }
}

long long csa_db_int64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    if (PQfformat(res, col) == 0)
        return strtoll(PQgetvalue(res, row, col), NULL, 10);
    uint64_t u;
    switch (PQftype(res, col)) {
    case OID_INT8: return binary_uint(res, row, col, 8, &u) < 0 ? 0 : (long long)(int64_t)u;
    case OID_INT4: return binary_uint(res, row, col, 4, &u) < 0 ? 0 : (long long)(int32_t)(uint32_t)u;
    case OID_INT2: return binary_uint(res, row, col, 2, &u) < 0 ? 0 : (long long)(int16_t)(uint16_t)u;
    case OID_FLOAT8:
    case OID_FLOAT4: return (long long)csa_db_double(res, row, col);
    default: return 0;
    }
}

int csa_db_bool(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    const char *v = PQgetvalue(res, row, col);
    if (PQfformat(res, col) == 0)
        return v[0] == 't';
    return PQftype(res, col) == OID_BOOL && PQgetlength(res, row, col) == 1 && v[0] == 1;
}

/*
 * The pool: a fixed array of slots guarded by one mutex. A slot is free or taken; a free slot may
 * hold an open connection or none (opened on the next acquire). Connections are opened outside
 * the lock so that an unreachable database never blocks other threads on the mutex.
 */
struct csa_db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *url;
    int size;
    PGconn **conns;           /* size slots; NULL = not connected */
    char *taken;              /* size flags */
    int statement_timeout_ms; /* set on each new connection; 0 = PostgreSQL's default */
};

void csa_db_pool_set_statement_timeout(csa_db_pool *pool, int ms) { pool->statement_timeout_ms = ms; }

csa_db_pool *csa_db_pool_create(const char *url, int size)
{
    csa_db_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->url = strdup(url);
    pool->size = size;
    pool->conns = calloc((size_t)size, sizeof *pool->conns);
    pool->taken = calloc((size_t)size, 1);
    if (!pool->url || !pool->conns || !pool->taken) {
        free(pool->url);
        free(pool->conns);
        free(pool->taken);
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->freed, NULL);
    return pool;
}

void csa_db_pool_destroy(csa_db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++)
        if (pool->conns[i])
            PQfinish(pool->conns[i]);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->freed);
    free(pool->url);
    free(pool->conns);
    free(pool->taken);
    free(pool);
}

PGconn *csa_db_pool_acquire(csa_db_pool *pool, int wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->lock);
    int slot = -1;
    for (;;) {
        /* prefer a free slot that is already connected */
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->taken[i] && pool->conns[i])
                slot = i;
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->taken[i])
                slot = i;
        if (slot >= 0)
            break;
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
    }
    pool->taken[slot] = 1;
    PGconn *conn = pool->conns[slot];
    pool->conns[slot] = NULL;
    pthread_mutex_unlock(&pool->lock);

    if (conn && !csa_db_alive(conn)) {
        PQfinish(conn);
        conn = NULL;
    }
    if (!conn) {
        char err[256];
        conn = csa_db_connect(pool->url, err, sizeof err);
        if (!conn) {
            csa_logf(CSA_LOG_WARN, "database connection failed: %s", err);
            pthread_mutex_lock(&pool->lock);
            pool->taken[slot] = 0;
            pthread_cond_signal(&pool->freed);
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        if (pool->statement_timeout_ms > 0) { /* a session setting: one round trip per connection */
            char sql[64];
            snprintf(sql, sizeof sql, "SET statement_timeout = %d", pool->statement_timeout_ms);
            PQclear(PQexec(conn, sql));
        }
    }
    /* remember the slot in the connection's user data is not possible with libpq: keep a mapping */
    pthread_mutex_lock(&pool->lock);
    pool->conns[slot] = conn; /* slot stays taken; conns[] records which connection it holds */
    pthread_mutex_unlock(&pool->lock);
    return conn;
}

void csa_db_pool_release(csa_db_pool *pool, PGconn *conn, int broken)
{
    if (!conn)
        return;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->size; i++) {
        if (pool->taken[i] && pool->conns[i] == conn) {
            pool->taken[i] = 0;
            if (broken || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
                PQfinish(conn);
                pool->conns[i] = NULL;
            }
            break;
        }
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

int csa_db_maintain(PGconn *conn, int retention_months, int *created, int *dropped, char *err, size_t err_size)
{
    char months[16];
    snprintf(months, sizeof months, "%d", retention_months);
    const char *params[] = {months};
    PGresult *res = csa_db_exec(
        conn,
        "WITH lock AS (SELECT pg_advisory_xact_lock(7305719026342122)),"
        " c AS (SELECT csa_ensure_partitions(1, 2) AS n FROM lock)"
        " SELECT c.n, CASE WHEN $1::int > 0"
        "   THEN csa_drop_partitions_before(now() - make_interval(months => $1::int)) ELSE 0 END"
        " FROM c",
        1, params);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        *created = atoi(PQgetvalue(res, 0, 0));
        *dropped = atoi(PQgetvalue(res, 0, 1));
    } else {
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    return ok ? 0 : -1;
}

long long csa_db_fold_rollups(PGconn *conn, char *err, size_t err_size)
{
    PGresult *res = csa_db_exec(conn, "SELECT csa_fold_rollups()", 0, NULL);
    long long n = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    } else {
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    return n;
}

int csa_db_pool_in_use(csa_db_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = 0;
    for (int i = 0; i < pool->size; i++)
        n += pool->taken[i] != 0;
    pthread_mutex_unlock(&pool->lock);
    return n;
}
