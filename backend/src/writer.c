/* writer.c: see writer.h. */
#include "writer.h"

#include "db.h"
#include "log.h"
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The group's rows, expanded from the one jsonb parameter (the normalised records of validate.h),
 * one per (project, function, invocation_id, timestamp): of copies in one group, a complete one. */
#define ROWS_CTE \
    "WITH rows AS (" \
    "  SELECT DISTINCT ON (project_id, function_name, invocation_id, \"timestamp\") *" \
    "  FROM jsonb_to_recordset($1::jsonb) AS r(" \
    "    project_id uuid, function_name text, invocation_id text, request_id text," \
    "    \"timestamp\" timestamptz, cold_start boolean, init_duration_ms int," \
    "    execution_duration_ms int, billed_duration_ms int, memory_used_mb int," \
    "    memory_allocated_mb int, module_timings jsonb, runtime_version text, architecture text," \
    "    region text, init_type text, start_kind text, sdk_version text, sdk_overhead_ms float8," \
    "    module_tree jsonb, module_source text, function_version text, code_id text)" \
    "  ORDER BY project_id, function_name, invocation_id, \"timestamp\", execution_duration_ms IS NULL"

/* The invocation columns every insert writes, and the same values read from `rows r`. */
#define INSERT_COLUMNS \
    " INSERT INTO invocations AS i (project_id, function_id, invocation_id, request_id, \"timestamp\"," \
    "   cold_start, init_duration_ms, execution_duration_ms, billed_duration_ms, memory_used_mb," \
    "   memory_allocated_mb, module_timings, runtime_version, architecture, init_type, start_kind," \
    "   module_tree, sdk_version, sdk_overhead_ms, module_source, function_version, code_id)"

#define ROW_VALUES \
    "   r.invocation_id, r.request_id, r.\"timestamp\", r.cold_start," \
    "   r.init_duration_ms, r.execution_duration_ms, r.billed_duration_ms, r.memory_used_mb," \
    "   r.memory_allocated_mb, r.module_timings, r.runtime_version, r.architecture, r.init_type," \
    "   r.start_kind, r.module_tree, r.sdk_version, r.sdk_overhead_ms, r.module_source, r.function_version," \
    "   r.code_id"

/* A stored (function, invocation_id, timestamp) again: a retry is skipped, except that a complete
 * copy fills in a row stored incomplete ("complete": false: the cold-start record an SDK hands off
 * when the invocation starts): its execution figures, the module tree with the package versions
 * an SDK reads after init, and the platform's init figures an extension may only have by then.
 * Only rows really inserted are counted in the rollups (the statement trigger of migrations/002
 * sees inserted rows only). */
#define ON_CONFLICT \
    " ON CONFLICT (function_id, invocation_id, \"timestamp\") DO UPDATE SET" \
    "   execution_duration_ms = EXCLUDED.execution_duration_ms," \
    "   billed_duration_ms = coalesce(EXCLUDED.billed_duration_ms, i.billed_duration_ms)," \
    "   memory_used_mb = coalesce(EXCLUDED.memory_used_mb, i.memory_used_mb)," \
    "   init_duration_ms = coalesce(EXCLUDED.init_duration_ms, i.init_duration_ms)," \
    "   init_type = coalesce(EXCLUDED.init_type, i.init_type)," \
    "   memory_allocated_mb = coalesce(EXCLUDED.memory_allocated_mb, i.memory_allocated_mb)," \
    "   request_id = coalesce(i.request_id, EXCLUDED.request_id)," \
    "   module_timings = coalesce(i.module_timings, EXCLUDED.module_timings)," \
    "   module_tree = coalesce(EXCLUDED.module_tree, i.module_tree)," \
    "   module_source = coalesce(i.module_source, EXCLUDED.module_source)," \
    "   sdk_overhead_ms = coalesce(i.sdk_overhead_ms, EXCLUDED.sdk_overhead_ms)," \
    "   function_version = coalesce(i.function_version, EXCLUDED.function_version)," \
    "   code_id = coalesce(i.code_id, EXCLUDED.code_id)" \
    " WHERE i.execution_duration_ms IS NULL AND EXCLUDED.execution_duration_ms IS NOT NULL"

/*
 * The deployments of the group's functions (migrations/004): one row per function and deployment
 * (code_id, else 'version:' || function_version), from complete records only (the early copy of a
 * cold-start record has no code_id yet). A deployment already stored whose times would move by
 * less than a minute is left alone before the insert is tried, so that its row lock is rarely
 * taken: last_seen_at is exact to within a minute, first_seen_at exact. `functions` names where
 * the function rows come from: the `fn` CTE of this statement, or the table.
 */
#define DEPLOYMENTS_CTE(functions) \
    ", seen AS (" \
    "  SELECT project_id, function_name, coalesce(code_id, 'version:' || function_version) AS deployment," \
    "         max(code_id) AS code_id, max(function_version) AS function_version," \
    "         min(\"timestamp\") AS first_at, max(\"timestamp\") AS last_at" \
    "  FROM rows WHERE execution_duration_ms IS NOT NULL AND coalesce(code_id, function_version) IS NOT NULL" \
    "  GROUP BY 1, 2, 3" \
    "), deployments AS (" \
    "  INSERT INTO function_deployments AS d (function_id, project_id, deployment, code_id, function_version," \
    "    first_seen_at, last_seen_at)" \
    "  SELECT f.id, s.project_id, s.deployment, s.code_id, s.function_version, s.first_at, s.last_at" \
    "  FROM seen s JOIN " functions " f ON f.project_id = s.project_id AND f.function_name = s.function_name" \
    "  WHERE NOT EXISTS (SELECT 1 FROM function_deployments x WHERE x.function_id = f.id" \
    "    AND x.deployment = s.deployment AND x.first_seen_at <= s.first_at" \
    "    AND x.last_seen_at >= s.last_at - interval '1 minute')" \
    "  ORDER BY 1, 3" \
    "  ON CONFLICT (function_id, deployment) DO UPDATE SET" \
    "    first_seen_at = least(d.first_seen_at, EXCLUDED.first_seen_at)," \
    "    last_seen_at = greatest(d.last_seen_at, EXCLUDED.last_seen_at)," \
    "    code_id = coalesce(d.code_id, EXCLUDED.code_id)," \
    "    function_version = CASE WHEN EXCLUDED.last_seen_at >= d.last_seen_at" \
    "      THEN coalesce(EXCLUDED.function_version, d.function_version) ELSE d.function_version END" \
    ")"

/*
 * One statement stores a whole group: the rows arrive as one jsonb parameter, the function rows
 * are upserted once per function per group (not per record: a per-record update serialises all
 * ingest of a function on its row lock), and duplicates of an already stored
 * (function, invocation_id, timestamp) are skipped (ON_CONFLICT), which makes retries idempotent.
 */
/* clang-format off */
static const char *const INSERT_SQL =
    ROWS_CTE
    "), latest AS ("
    "  SELECT DISTINCT ON (project_id, function_name) project_id, function_name, runtime_version,"
    "         region, memory_allocated_mb"
    "  FROM rows ORDER BY project_id, function_name, \"timestamp\" DESC"
    "), fn AS ("
    "  INSERT INTO functions AS f (project_id, function_name, runtime, region, memory_allocated_mb)"
    "  SELECT project_id, function_name, runtime_version, region, memory_allocated_mb FROM latest"
    "  ORDER BY project_id, function_name"
    "  ON CONFLICT (project_id, function_name) DO UPDATE SET last_seen_at = now(),"
    "    runtime = COALESCE(EXCLUDED.runtime, f.runtime),"
    "    region = COALESCE(EXCLUDED.region, f.region),"
    "    memory_allocated_mb = COALESCE(EXCLUDED.memory_allocated_mb, f.memory_allocated_mb)"
    "  RETURNING f.id, f.project_id, f.function_name"
    ")"
    DEPLOYMENTS_CTE("fn")
    INSERT_COLUMNS
    " SELECT r.project_id, fn.id," ROW_VALUES
    " FROM rows r JOIN fn ON fn.project_id = r.project_id AND fn.function_name = r.function_name"
    ON_CONFLICT;

/* The same insert for a group whose functions this writer touched less than a second ago: their
 * rows are only looked up, not updated (last_seen_at is kept to within a second). */
static const char *const INSERT_KNOWN_SQL =
    ROWS_CTE
    ")"
    DEPLOYMENTS_CTE("functions")
    INSERT_COLUMNS
    " SELECT r.project_id, f.id," ROW_VALUES
    " FROM rows r JOIN functions f ON f.project_id = r.project_id AND f.function_name = r.function_name"
    ON_CONFLICT;
/* clang-format on */

#define TOUCH_CACHE_SIZE 1024              /* functions remembered per writer thread; cleared when full */
#define TOUCH_SLOTS (2 * TOUCH_CACHE_SIZE) /* open addressing, never more than half full */
#define TOUCH_INTERVAL_S 1.0

struct csa_writer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    csa_write_item *head, *tail; /* FIFO of submitted items */
    int queued_rows;             /* rows in the FIFO */
    int inflight_rows;           /* rows taken by writer threads, not yet reported */
    size_t held_bytes;           /* `bytes` of the items queued or being written */
    int max_rows, max_queued;
    size_t max_bytes; /* bound on held_bytes */
    int stopping;
    int nthreads;
    pthread_t *threads;
    char *url;
};

/* A function this writer upserted recently: "project_id/function_name" (NULL: empty slot) and when. */
typedef struct touched {
    char *key;
    double at;
} touched;

typedef struct writer_thread {
    csa_writer *w;
    PGconn *conn;
    time_t last_connect_failure;
    touched touched[TOUCH_SLOTS]; /* hash table, looked up once per row of every group */
    int ntouched;
} writer_thread;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void forget_touched(writer_thread *t)
{
    for (int i = 0; i < TOUCH_SLOTS; i++) {
        free(t->touched[i].key);
        t->touched[i].key = NULL;
    }
    t->ntouched = 0;
}

/* The slot holding key, or the empty one where it belongs (FNV-1a, linear probing). */
static touched *touched_slot(writer_thread *t, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    size_t i = (size_t)h & (TOUCH_SLOTS - 1);
    while (t->touched[i].key && strcmp(t->touched[i].key, key) != 0)
        i = (i + 1) & (TOUCH_SLOTS - 1);
    return &t->touched[i];
}

static touched *find_touched(writer_thread *t, const char *key)
{
    touched *e = touched_slot(t, key);
    return e->key ? e : NULL;
}

static void function_key(json_t *row, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", json_string_value(json_object_get(row, "project_id")),
             json_string_value(json_object_get(row, "function_name")));
}

/* 1 if every function of the group was upserted by this thread less than a second ago. */
static int all_recently_touched(writer_thread *t, json_t *rows, double now)
{
    size_t i;
    json_t *row;
    char key[1200];
    json_array_foreach(rows, i, row) {
        function_key(row, key, sizeof key);
        touched *e = find_touched(t, key);
        if (!e || now - e->at >= TOUCH_INTERVAL_S)
            return 0;
    }
    return 1;
}

/* Records that the group's functions were upserted now (after a successful commit). */
static void remember_touched(writer_thread *t, json_t *rows, double now)
{
    size_t i;
    json_t *row;
    char key[1200];
    json_array_foreach(rows, i, row) {
        function_key(row, key, sizeof key);
        touched *e = touched_slot(t, key);
        if (!e->key) {
            if (t->ntouched == TOUCH_CACHE_SIZE) {
                forget_touched(t);
                e = touched_slot(t, key);
            }
            if (!(e->key = strdup(key)))
                continue;
            t->ntouched++;
        }
        e->at = now;
    }
}

/* Runs one group; returns CSA_OK or the failure for all of it, and sets *statement_fault when
 * the statement itself (not the connection) failed. */
static csa_status write_group(writer_thread *t, json_t *rows, int *statement_fault)
{
    *statement_fault = 0;
    if (t->conn && !csa_db_alive(t->conn)) {
        PQfinish(t->conn);
        t->conn = NULL;
    }
    if (!t->conn) {
        char err[256];
        t->conn = csa_db_connect(t->w->url, err, sizeof err);
        if (!t->conn) {
            time_t now = time(NULL);
            if (now != t->last_connect_failure)
                csa_logf(CSA_LOG_WARN, "writer: database connection failed: %s", err);
            t->last_connect_failure = now;
            return CSA_ERR_UNAVAILABLE;
        }
        csa_logf(CSA_LOG_INFO, "writer: connected to the database");
    }
    char *payload = json_dumps(rows, JSON_COMPACT);
    if (!payload)
        return CSA_ERR_INTERNAL;
    const char *params[1] = {payload};
    csa_status status = CSA_OK;
    double now = mono_now();
    int touch = !all_recently_touched(t, rows, now);
    for (int attempt = 0; attempt < 3; attempt++) {
        PGresult *res = csa_db_exec(t->conn, touch ? INSERT_SQL : INSERT_KNOWN_SQL, 1, params);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            status = CSA_OK;
            if (touch)
                remember_touched(t, rows, now);
            break;
        }
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int retry = csa_db_is_conflict(res);
        if (csa_db_is_unavailable(t->conn, res)) {
            csa_logf(CSA_LOG_WARN, "writer: database unavailable (%s)", state ? state : "connection lost");
            status = CSA_ERR_UNAVAILABLE;
            if (PQstatus(t->conn) != CONNECTION_OK) {
                PQfinish(t->conn);
                t->conn = NULL;
            }
            PQclear(res);
            break;
        }
        if (!retry) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
            msg[strcspn(msg, "\n")] = '\0';
            csa_logf(CSA_LOG_ERROR, "writer: insert failed: %s (SQLSTATE %s)", msg, state ? state : "?");
            *statement_fault = 1;
            status = CSA_ERR_INTERNAL;
            PQclear(res);
            break;
        }
        PQclear(res);
        status = CSA_ERR_UNAVAILABLE;
    }
    free(payload);
    return status;
}

static void *writer_main(void *arg)
{
    writer_thread *t = arg;
    csa_writer *w = t->w;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->head && w->stopping) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        /* take whole items while they fit in max_rows (always at least one) */
        csa_write_item *group = NULL, **link = &group;
        int rows = 0;
        while (w->head) {
            int n = (int)json_array_size(w->head->rows);
            if (group && rows + n > w->max_rows)
                break;
            csa_write_item *it = w->head;
            w->head = it->next;
            if (!w->head)
                w->tail = NULL;
            it->next = NULL;
            *link = it;
            link = &it->next;
            rows += n;
        }
        w->queued_rows -= rows;
        w->inflight_rows += rows;
        size_t bytes = 0;
        for (csa_write_item *it = group; it; it = it->next)
            bytes += it->bytes;
        pthread_mutex_unlock(&w->lock);

        json_t *all = json_array();
        for (csa_write_item *it = group; it; it = it->next)
            json_array_extend(all, it->rows);
        int fault = 0;
        csa_status status = write_group(t, all, &fault);
        json_decref(all);
        csa_metrics_group(rows, status == CSA_OK);
        if (status != CSA_OK)
            csa_metrics_db_error();
        if (fault && group->next) {
            /* one request's rows broke the statement: store each request alone, so the others
             * keep their data */
            for (csa_write_item *it = group; it; it = it->next)
                it->status = write_group(t, it->rows, &fault);
        } else {
            for (csa_write_item *it = group; it; it = it->next)
                it->status = status;
        }
        pthread_mutex_lock(&w->lock);
        w->inflight_rows -= rows;
        w->held_bytes -= bytes;
        pthread_mutex_unlock(&w->lock);
        for (csa_write_item *it = group, *next; it; it = next) {
            next = it->next;
            it->next = NULL;
            it->done(it);
        }
    }
    if (t->conn)
        PQfinish(t->conn);
    forget_touched(t);
    free(t);
    return NULL;
}

csa_writer *csa_writer_start(const char *url, int threads, int max_rows, int max_queued, size_t max_bytes)
{
    csa_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->max_rows = max_rows;
    w->max_queued = max_queued;
    w->max_bytes = max_bytes;
    w->url = strdup(url);
    w->threads = calloc((size_t)threads, sizeof *w->threads);
    for (int i = 0; i < threads; i++) {
        writer_thread *t = calloc(1, sizeof *t);
        t->w = w;
        if (pthread_create(&w->threads[i], NULL, writer_main, t) != 0) {
            free(t);
            break;
        }
        w->nthreads++;
    }
    if (w->nthreads == 0) {
        csa_writer_stop(w);
        return NULL;
    }
    return w;
}

int csa_writer_submit(csa_writer *w, csa_write_item *item)
{
    int n = (int)json_array_size(item->rows);
    pthread_mutex_lock(&w->lock);
    if (w->stopping || (w->queued_rows > 0 && w->queued_rows + n > w->max_queued) ||
        (w->held_bytes > 0 && w->held_bytes + item->bytes > w->max_bytes)) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    item->next = NULL;
    if (w->tail)
        w->tail->next = item;
    else
        w->head = item;
    w->tail = item;
    w->queued_rows += n;
    w->held_bytes += item->bytes;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int csa_writer_pending(csa_writer *w)
{
    pthread_mutex_lock(&w->lock);
    int n = w->queued_rows + w->inflight_rows;
    pthread_mutex_unlock(&w->lock);
    return n;
}

size_t csa_writer_pending_bytes(csa_writer *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->held_bytes;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void csa_writer_stop(csa_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w->threads);
    free(w->url);
    free(w);
}
