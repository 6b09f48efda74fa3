/* metrics.c: see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int status_codes[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503, 0};
#define NSTATUS (sizeof status_codes / sizeof status_codes[0]) /* last: any other status */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NLAT (sizeof latency_bounds / sizeof latency_bounds[0])
static const double group_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
#define NGROUP (sizeof group_bounds / sizeof group_bounds[0])

static struct {
    char route_name[CSA_METRICS_ROUTES][64];
    char route_method[CSA_METRICS_ROUTES][8];
    atomic_ullong requests[CSA_METRICS_ROUTES][NSTATUS];
    atomic_ullong latency[CSA_METRICS_ROUTES][NLAT + 1]; /* per bucket (not cumulative) */
    atomic_ullong latency_sum_us[CSA_METRICS_ROUTES];
    atomic_ullong rate_limited[2];
    atomic_ullong groups_ok, groups_failed, rows_written;
    atomic_ullong group_rows[NGROUP + 1];
    atomic_ullong group_rows_sum;
    atomic_ullong db_errors;
    atomic_llong connections;
    atomic_ullong firehose_deliveries, firehose_records, firehose_accepted, firehose_invalid, firehose_ignored;
} m;

void csa_metrics_set_route_name(int route, const char *name, const char *method)
{
    if (route < 0 || route >= CSA_METRICS_ROUTES)
        return;
    snprintf(m.route_name[route], sizeof m.route_name[route], "%s", name);
    snprintf(m.route_method[route], sizeof m.route_method[route], "%s", method);
}

void csa_metrics_request(int route, int status, double seconds)
{
    if (route < 0 || route >= CSA_METRICS_ROUTES)
        route = CSA_METRICS_ROUTES - 1;
    size_t s = NSTATUS - 1;
    for (size_t i = 0; i + 1 < NSTATUS; i++)
        if (status_codes[i] == status)
            s = i;
    atomic_fetch_add_explicit(&m.requests[route][s], 1, memory_order_relaxed);
    size_t b = NLAT;
    for (size_t i = 0; i < NLAT; i++)
        if (seconds <= latency_bounds[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m.latency[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.latency_sum_us[route], (unsigned long long)(seconds * 1e6), memory_order_relaxed);
}

void csa_metrics_rate_limited(int query_class)
{
    atomic_fetch_add_explicit(&m.rate_limited[query_class ? 1 : 0], 1, memory_order_relaxed);
}

void csa_metrics_group(int rows, int ok)
{
    atomic_fetch_add_explicit(ok ? &m.groups_ok : &m.groups_failed, 1, memory_order_relaxed);
    if (ok)
        atomic_fetch_add_explicit(&m.rows_written, (unsigned long long)rows, memory_order_relaxed);
    size_t b = NGROUP;
    for (size_t i = 0; i < NGROUP; i++)
        if (rows <= group_bounds[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m.group_rows[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.group_rows_sum, (unsigned long long)rows, memory_order_relaxed);
}

void csa_metrics_db_error(void) { atomic_fetch_add_explicit(&m.db_errors, 1, memory_order_relaxed); }

void csa_metrics_connections(int delta) { atomic_fetch_add_explicit(&m.connections, delta, memory_order_relaxed); }

void csa_metrics_firehose(size_t records, size_t accepted, size_t invalid, size_t ignored)
{
    atomic_fetch_add_explicit(&m.firehose_deliveries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.firehose_records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.firehose_accepted, accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.firehose_invalid, invalid, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.firehose_ignored, ignored, memory_order_relaxed);
}

/* A growable output buffer; on allocation failure it stops growing and the output is cut. */
typedef struct out {
    char *buf;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->buf && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 16384;
        while (cap < o->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b)
            return;
        o->buf = b;
        o->cap = cap;
    }
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

char *csa_metrics_render(int queue_rows, int pool_in_use, int pool_size)
{
    out o = {0};
    put(&o, "# HELP csa_http_requests_total HTTP requests by route and status.\n"
            "# TYPE csa_http_requests_total counter\n");
    for (int r = 0; r < CSA_METRICS_ROUTES; r++) {
        const char *name = r == CSA_METRICS_ROUTES - 1 ? "unmatched" : m.route_name[r];
        if (!*name)
            continue;
        for (size_t s = 0; s < NSTATUS; s++) {
            unsigned long long v = LOAD(m.requests[r][s]);
            if (!v)
                continue;
            if (status_codes[s])
                put(&o, "csa_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n", name,
                    m.route_method[r], status_codes[s], v);
            else
                put(&o, "csa_http_requests_total{route=\"%s\",method=\"%s\",status=\"other\"} %llu\n", name,
                    m.route_method[r], v);
        }
    }
    put(&o, "# HELP csa_http_request_duration_seconds Time from a complete request to its response.\n"
            "# TYPE csa_http_request_duration_seconds histogram\n");
    for (int r = 0; r < CSA_METRICS_ROUTES; r++) {
        const char *name = r == CSA_METRICS_ROUTES - 1 ? "unmatched" : m.route_name[r];
        if (!*name)
            continue;
        unsigned long long cum = 0;
        for (size_t b = 0; b < NLAT; b++) {
            cum += LOAD(m.latency[r][b]);
            put(&o, "csa_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n", name,
                m.route_method[r], latency_bounds[b], cum);
        }
        cum += LOAD(m.latency[r][NLAT]);
        put(&o, "csa_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n", name,
            m.route_method[r], cum);
        put(&o, "csa_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n", name, m.route_method[r],
            (double)LOAD(m.latency_sum_us[r]) / 1e6);
        put(&o, "csa_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n", name, m.route_method[r],
            cum);
    }
    put(&o,
        "# HELP csa_rate_limited_total Requests refused by the per-key rate limit.\n"
        "# TYPE csa_rate_limited_total counter\n"
        "csa_rate_limited_total{class=\"ingest\"} %llu\ncsa_rate_limited_total{class=\"query\"} %llu\n",
        LOAD(m.rate_limited[0]), LOAD(m.rate_limited[1]));
    put(&o,
        "# HELP csa_writer_queue_rows Rows waiting for or in a group commit.\n"
        "# TYPE csa_writer_queue_rows gauge\ncsa_writer_queue_rows %d\n"
        "# HELP csa_writer_groups_total Group-commit transactions by outcome.\n"
        "# TYPE csa_writer_groups_total counter\n"
        "csa_writer_groups_total{outcome=\"committed\"} %llu\ncsa_writer_groups_total{outcome=\"failed\"} %llu\n"
        "# HELP csa_rows_written_total Invocation rows committed (duplicates skipped by idempotency included).\n"
        "# TYPE csa_rows_written_total counter\ncsa_rows_written_total %llu\n",
        queue_rows, LOAD(m.groups_ok), LOAD(m.groups_failed), LOAD(m.rows_written));
    put(&o, "# HELP csa_writer_group_rows Rows per group-commit transaction.\n"
            "# TYPE csa_writer_group_rows histogram\n");
    unsigned long long cum = 0;
    for (size_t b = 0; b < NGROUP; b++) {
        cum += LOAD(m.group_rows[b]);
        put(&o, "csa_writer_group_rows_bucket{le=\"%g\"} %llu\n", group_bounds[b], cum);
    }
    cum += LOAD(m.group_rows[NGROUP]);
    put(&o,
        "csa_writer_group_rows_bucket{le=\"+Inf\"} %llu\ncsa_writer_group_rows_sum %llu\ncsa_writer_group_rows_count %llu\n",
        cum, LOAD(m.group_rows_sum), cum);
    put(&o,
        "# HELP csa_db_pool_connections Request-time database connections in use and the pool size.\n"
        "# TYPE csa_db_pool_connections gauge\n"
        "csa_db_pool_connections{state=\"in_use\"} %d\ncsa_db_pool_connections{state=\"size\"} %d\n"
        "# HELP csa_db_errors_total Database errors seen by the server (connection losses included).\n"
        "# TYPE csa_db_errors_total counter\ncsa_db_errors_total %llu\n"
        "# HELP csa_http_connections Open client connections.\n"
        "# TYPE csa_http_connections gauge\ncsa_http_connections %lld\n",
        pool_in_use, pool_size, LOAD(m.db_errors), (long long)LOAD(m.connections));
    put(&o,
        "# HELP csa_firehose_deliveries_total Firehose deliveries answered 200 (POST /api/v1/ingest/firehose).\n"
        "# TYPE csa_firehose_deliveries_total counter\ncsa_firehose_deliveries_total %llu\n"
        "# HELP csa_firehose_records_total Firehose records in the deliveries answered 200.\n"
        "# TYPE csa_firehose_records_total counter\ncsa_firehose_records_total %llu\n"
        "# HELP csa_firehose_lines_total Log events of those deliveries: record lines stored or invalid, other events "
        "ignored.\n"
        "# TYPE csa_firehose_lines_total counter\n"
        "csa_firehose_lines_total{outcome=\"accepted\"} %llu\ncsa_firehose_lines_total{outcome=\"invalid\"} %llu\n"
        "csa_firehose_lines_total{outcome=\"ignored\"} %llu\n",
        LOAD(m.firehose_deliveries), LOAD(m.firehose_records), LOAD(m.firehose_accepted), LOAD(m.firehose_invalid),
        LOAD(m.firehose_ignored));
    return o.buf;
}
