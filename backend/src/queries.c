/* queries.c: see queries.h. */
#include "queries.h"

#include "compare.h"
#include "cursor.h"
#include "day_sketches.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "projects.h"
#include "uuid.h"
#include "validate.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A real cold start: the first invocation of an environment whose init delayed a request.
 * Proactive and provisioned inits are reported on their own. */
#define REAL_COLD "(i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')"

/* The start of the first whole UTC hour at or after timestamp expression t (csa_hour: migrations/002). */
#define FIRST_FULL_HOUR(t) \
    "(CASE WHEN csa_hour(" t ") < (" t ") THEN csa_hour(" t ") + interval '1 hour' ELSE csa_hour(" t ") END)"

/* Logs a failed statement and says which status the client gets (db.h). */
static csa_status db_failure(PGconn *conn, PGresult *res, const char *what, char *detail)
{
    return csa_db_failure(conn, res, what, detail, CSA_DETAIL_MAX);
}

/* db_failure, then the result is cleared: how a failed statement ends its query function. */
static csa_status db_failed(PGconn *conn, PGresult *res, const char *what, char *detail)
{
    csa_status st = db_failure(conn, res, what, detail);
    PQclear(res);
    return st;
}

/* A number as JSON, rounded to 2 decimals (an integer when it is one); not finite -> null. */
static json_t *num_json(double v)
{
    if (!isfinite(v))
        return json_null();
    double r = round(v * 100.0) / 100.0;
    if (r == floor(r) && fabs(r) < 9e15)
        return json_integer((json_int_t)r);
    return json_real(r);
}

/* Column value as JSON: NULL -> null; numbers as num_json. */
static json_t *col_num(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return num_json(strtod(PQgetvalue(res, row, col), NULL));
}

static json_t *col_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *col_str(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_string(PQgetvalue(res, row, col));
}

csa_status csa_query_list_functions(PGconn *conn, const csa_prices *prices, const char *project_id,
                                    const csa_list_params *p, json_t **out, char *detail)
{
    char limit_plus_one[16], x86[32], arm[32];
    snprintf(limit_plus_one, sizeof limit_plus_one, "%d", p->limit + 1);
    csa_prices_params(prices, x86, arm);
    const char *params[] = {project_id, p->cursor, p->name_prefix, limit_plus_one, x86, arm};
    /* clang-format off */
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_list_functions",
        "WITH page AS ("
        "  SELECT id, function_name, runtime, region, memory_allocated_mb, first_seen_at, last_seen_at"
        "  FROM functions"
        "  WHERE project_id = $1"
        "    AND ($2::text IS NULL OR function_name > $2::text)"
        "    AND ($3::text IS NULL OR left(function_name, length($3::text)) = $3::text)"
        "  ORDER BY function_name LIMIT $4::int),"
        /* invocations in the last 24 h: whole hours from the rollups, the first partial hour from
         * the rows (migrations/002) */
        " counts AS ("
        "  SELECT x.function_id, sum(x.n) AS total FROM ("
        "    SELECT h.function_id, h.invocations AS n FROM function_hourly h"
        "    WHERE h.function_id IN (SELECT id FROM page) AND h.hour >= " FIRST_FULL_HOUR("now() - interval '24 hours'")
        "    UNION ALL SELECT d.function_id, d.invocations FROM function_hourly_delta d"
        "    WHERE d.function_id IN (SELECT id FROM page) AND d.hour >= " FIRST_FULL_HOUR("now() - interval '24 hours'")
        "    UNION ALL SELECT i.function_id, 1 FROM invocations i"
        "    WHERE i.project_id = $1 AND i.function_id IN (SELECT id FROM page)"
        "      AND i.timestamp >= now() - interval '24 hours'"
        "      AND i.timestamp < " FIRST_FULL_HOUR("now() - interval '24 hours'") ") x"
        "  GROUP BY x.function_id)"
        " SELECT p.id::text, p.function_name, p.runtime, p.region, p.memory_allocated_mb, " TS_UTC("p.first_seen_at")
        ", " TS_UTC("p.last_seen_at") ","
        "   coalesce(c.total, 0), s.cold, s.avg_init, s.p95_init, s.proactive, s.provisioned, s.p50_init,"
        "   coalesce(s.cost, 0), coalesce(s.proactive_cost, 0),"
        /* the span the projection extrapolates: the 24 h, or since the function was first seen
         * (its first cold start if that is earlier: records sent later than they happened) */
        "   extract(epoch FROM now() - greatest(now() - interval '24 hours', least(p.first_seen_at, s.first_cold)))"
        " FROM page p LEFT JOIN counts c ON c.function_id = p.id LEFT JOIN LATERAL ("
        /* the cold-start statistics read the cold-start rows only (a partial index) */
        "   SELECT count(*) FILTER (WHERE " REAL_COLD ") AS cold,"
        "     avg(i.init_duration_ms) FILTER (WHERE " REAL_COLD ") AS avg_init,"
        "     percentile_cont(0.95) WITHIN GROUP (ORDER BY i.init_duration_ms) FILTER (WHERE " REAL_COLD ") AS p95_init,"
        "     count(*) FILTER (WHERE i.start_kind = 'proactive') AS proactive,"
        "     count(*) FILTER (WHERE i.start_kind = 'provisioned') AS provisioned,"
        "     percentile_cont(0.5) WITHIN GROUP (ORDER BY i.init_duration_ms) FILTER (WHERE " REAL_COLD ") AS p50_init,"
        "     sum(" CSA_INIT_COST_SQL("i", "p", "$5", "$6") ") FILTER (WHERE " REAL_COLD ") AS cost,"
        "     sum(" CSA_INIT_COST_SQL("i", "p", "$5", "$6") ") FILTER (WHERE i.start_kind = 'proactive') AS proactive_cost,"
        "     min(i.timestamp) AS first_cold"
        "   FROM invocations i"
        "   WHERE i.function_id = p.id AND i.project_id = $1 AND i.cold_start"
        "     AND i.timestamp >= now() - interval '24 hours') s ON true"
        " ORDER BY p.function_name",
        6, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return db_failed(conn, res, "list functions", detail);
    }
    int rows = PQntuples(res);
    int shown = rows > p->limit ? p->limit : rows;
    json_t *list = json_array();
    for (int r = 0; r < shown; r++) {
        long long total = strtoll(PQgetvalue(res, r, 7), NULL, 10);
        long long cold = strtoll(PQgetvalue(res, r, 8), NULL, 10);
        double rate = total > 0 ? round((double)cold / (double)total * 10000.0) / 10000.0 : 0.0;
        json_t *stats = json_object();
        json_object_set_new(stats, "avg_init_duration_ms", col_num(res, r, 9));
        json_object_set_new(stats, "p50_init_duration_ms", col_num(res, r, 13));
        json_object_set_new(stats, "p95_init_duration_ms", col_num(res, r, 10));
        json_object_set_new(stats, "cold_start_rate", json_real(rate));
        json_object_set_new(stats, "cold_starts_24h", json_integer(cold));
        json_object_set_new(stats, "total_invocations_24h", json_integer(total));
        json_object_set_new(stats, "proactive_starts_24h", col_int(res, r, 11));
        json_object_set_new(stats, "provisioned_starts_24h", col_int(res, r, 12));
        double cost = strtod(PQgetvalue(res, r, 14), NULL);
        json_object_set_new(stats, "init_cost_usd", csa_usd_json(cost));
        json_object_set_new(stats, "init_cost_usd_per_month",
                            csa_usd_json(csa_cost_per_month(cost, strtod(PQgetvalue(res, r, 16), NULL))));
        json_object_set_new(stats, "proactive_init_cost_usd", csa_usd_json(strtod(PQgetvalue(res, r, 15), NULL)));
        json_t *f = json_object();
        json_object_set_new(f, "id", col_str(res, r, 0));
        json_object_set_new(f, "function_name", col_str(res, r, 1));
        json_object_set_new(f, "runtime", col_str(res, r, 2));
        json_object_set_new(f, "region", col_str(res, r, 3));
        json_object_set_new(f, "memory_allocated_mb", col_int(res, r, 4));
        json_object_set_new(f, "first_seen_at", col_str(res, r, 5));
        json_object_set_new(f, "last_seen_at", col_str(res, r, 6));
        json_object_set_new(f, "cold_start_stats", stats);
        json_array_append_new(list, f);
    }
    json_t *next = json_null();
    if (rows > p->limit) {
        char cursor[CSA_CURSOR_MAX];
        csa_cursor_encode(PQgetvalue(res, shown - 1, 1), cursor, sizeof cursor);
        next = json_string(cursor);
    }
    PQclear(res);
    *out = json_pack("{s:o, s:o, s:o}", "functions", list, "next_cursor", next, "prices_per_gb_second",
                     csa_prices_json(prices));
    return CSA_OK;
}

/* Collects "name" -> "version" from any objects in the SDK's module tree that carry both. */
static void collect_versions(json_t *node, json_t *versions, int depth)
{
    if (!node || depth > 16)
        return;
    if (json_is_object(node)) {
        json_t *name = json_object_get(node, "name");
        if (!json_is_string(name))
            name = json_object_get(node, "package");
        json_t *version = json_object_get(node, "version");
        if (json_is_string(name) && json_is_string(version))
            json_object_set(versions, json_string_value(name), version);
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v) {
            if (json_is_object(v) || json_is_array(v))
                collect_versions(v, versions, depth + 1);
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
            collect_versions(v, versions, depth + 1);
    }
}

/* ---- module breakdown ------------------------------------------------------------------- */

#define MAX_BREAKDOWN 200 /* modules shown, the largest average first */

typedef struct module_stat {
    const char *name; /* borrowed from module_agg.names */
    double *v;        /* exact samples (rows read); sorted by agg_finish */
    size_t n, cap;
    size_t total; /* samples in all: n + those of the day sketches */
    double sum, p50, p95, p99;
    double cost;                  /* dollars of its self time (cost.h) */
    const csa_package_stat *days; /* its whole days' sketch (day_sketches.h), or NULL */
} module_stat;

typedef struct module_agg {
    json_t *names; /* name -> index into mods */
    module_stat *mods;
    size_t n, cap;
    int failed; /* out of memory: the breakdown is cut short rather than wrong */
} module_agg;

static void agg_init(module_agg *a)
{
    memset(a, 0, sizeof *a);
    a->names = json_object();
}

static void agg_free(module_agg *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->mods[i].v);
    free(a->mods);
    json_decref(a->names);
}

/* Makes room for one more element in items (n used of *cap): returns the array, perhaps moved,
 * or NULL when out of memory (items is then unchanged). */
static void *grow(void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return items;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(items, c * size);
    if (p)
        *cap = c;
    return p;
}

/* Adds one sample of module `key` (len bytes), whose row's init costs usd_per_ms dollars per
 * millisecond; -1 when out of memory. */
/* The module named key (len bytes), created without samples if new; NULL when out of memory. */
static module_stat *agg_get(module_agg *a, const char *key, size_t len)
{
    json_t *idx = json_object_getn(a->names, key, len);
    if (idx)
        return &a->mods[json_integer_value(idx)];
    module_stat *mods = grow(a->mods, a->n, &a->cap, sizeof *a->mods, 64);
    if (!mods)
        return NULL;
    a->mods = mods;
    size_t i = a->n++;
    memset(&a->mods[i], 0, sizeof a->mods[i]);
    json_object_setn_new(a->names, key, len, json_integer((json_int_t)i));
    return &a->mods[i];
}

static int agg_add(module_agg *a, const char *key, size_t len, double v, double usd_per_ms)
{
    module_stat *m = agg_get(a, key, len);
    if (!m)
        return -1;
    double *v_all = grow(m->v, m->n, &m->cap, sizeof *m->v, 16);
    if (!v_all)
        return -1;
    m->v = v_all;
    m->v[m->n++] = v;
    m->total++;
    m->sum += v;
    m->cost += v * usd_per_ms;
    return 0;
}

/* One row's entries into the aggregate (csa_each_timing's callback). */
typedef struct row_add {
    module_agg *a;
    double usd_per_ms;
    double sum; /* of the entries added */
    int added;
} row_add;

static int row_entry(const char *key, size_t len, double ms, void *arg)
{
    row_add *r = arg;
    if (agg_add(r->a, key, len, ms, r->usd_per_ms) < 0) {
        r->a->failed = 1;
        return -1;
    }
    r->sum += ms;
    r->added++;
    return 0;
}

/* Adds one row's {"module": ms, ...} (usd_per_ms: as agg_add); returns how many numeric entries it
 * had (their sum is added to *row_sum). Entries that are not numbers are skipped. */
static int agg_add_row(module_agg *a, const char *text, double *row_sum, double usd_per_ms)
{
    if (a->failed)
        return 0;
    row_add r = {a, usd_per_ms, 0, 0};
    csa_each_timing(text, row_entry, &r);
    *row_sum += r.sum;
    return r.added;
}

static int cmp_by_avg(const void *x, const void *y)
{
    const module_stat *a = x, *b = y;
    double av = a->sum / (double)a->total, bv = b->sum / (double)b->total;
    if (av != bv)
        return av < bv ? 1 : -1;
    return strcmp(a->name, b->name);
}

/* Computes each module's percentiles (exact over its samples, or from its day sketch with the
 * samples added) and orders the modules by average, largest first. */
static module_stat *agg_finish(module_agg *a)
{
    const char *key;
    json_t *idx;
    json_object_foreach(a->names, key, idx) {
        module_stat *m = &a->mods[json_integer_value(idx)];
        m->name = key;
        if (m->days) {
            csa_sketch merged;
            csa_sketch_init(&merged);
            int ok = csa_sketch_merge(&merged, &m->days->sketch) == 0;
            for (size_t k = 0; ok && k < m->n; k++)
                ok = csa_sketch_add(&merged, m->v[k]) == 0;
            m->p50 = ok ? csa_sketch_quantile(&merged, 0.5) : NAN;
            m->p95 = ok ? csa_sketch_quantile(&merged, 0.95) : NAN;
            m->p99 = ok ? csa_sketch_quantile(&merged, 0.99) : NAN;
            csa_sketch_free(&merged);
            continue;
        }
        csa_sort_doubles(m->v, m->n);
        m->p50 = csa_percentile_sorted(m->v, m->n, 0.5);
        m->p95 = csa_percentile_sorted(m->v, m->n, 0.95);
        m->p99 = csa_percentile_sorted(m->v, m->n, 0.99);
    }
    if (a->n)
        qsort(a->mods, a->n, sizeof *a->mods, cmp_by_avg);
    return a->mods;
}

/* The bucket width of a window's timeline: the smallest of these giving at most TIMELINE_MAX_BUCKETS
 * buckets. Whole hours at least, so that the hourly rollups count each bucket's invocations. */
#define TIMELINE_MAX_BUCKETS 200
static long timeline_bucket_seconds(double window_seconds)
{
    static const long widths[] = {3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400};
    size_t n = sizeof widths / sizeof widths[0];
    for (size_t i = 0; i < n; i++)
        if (window_seconds / (double)widths[i] <= TIMELINE_MAX_BUCKETS)
            return widths[i];
    return widths[n - 1] * (long)ceil(window_seconds / (double)widths[n - 1] / TIMELINE_MAX_BUCKETS);
}

#define COLD_ROW_NCOLS 6 /* CSA_COLD_ROW_COLUMNS */

/* One read of the cold-start rows of a window: COLD_ROWS_FROM with the condition `where`
 * ($1 function, $2 project, $3 from, $4 to, $5 start of the first whole day, $6 end of the last),
 * each row tagged 'r' and padded with the (null) columns of a day row. */
#define NO_DAY_COLUMNS \
    ", NULL::bigint, NULL::bigint, NULL::bigint, NULL::float8, NULL::bytea, NULL::float8, NULL::float8," \
    " NULL::float8, NULL::float8, NULL::bigint, NULL::float8, NULL::bigint, NULL::bytea"
#define COLD_ROWS_FROM(where) \
    " SELECT 'r', " CSA_COLD_ROW_COLUMNS("i", "f") NO_DAY_COLUMNS \
        " FROM invocations i JOIN functions f ON f.id = i.function_id" \
        " WHERE i.function_id = $1::uuid AND i.project_id = $2::uuid AND i.cold_start AND " where

/* The timeline's rows: COLD_ROWS_FROM with the timestamp first and without the module timings
 * (NULL in their place). */
#define CSA_COLD_ROW_INIT_COLUMNS(i, f) \
    "CASE WHEN coalesce(" i ".start_kind, 'cold') = 'cold' THEN 'c' WHEN " i ".start_kind = 'proactive' THEN 'p'" \
    " WHEN " i ".start_kind = 'provisioned' THEN 'v' ELSE 'o' END, " i ".init_duration_ms," \
    " (coalesce(" i ".memory_allocated_mb, " f ".memory_allocated_mb, 128) / 1024.0)::float8," \
    " " i ".architecture = 'arm64', extract(epoch FROM " i ".\"timestamp\")::float8, NULL::text"
#define TIMELINE_ROWS_FROM(where) \
    " SELECT 'r', extract(epoch FROM i.timestamp)::float8, " CSA_COLD_ROW_INIT_COLUMNS("i", "f") NO_DAY_COLUMNS \
        " FROM invocations i JOIN functions f ON f.id = i.function_id" \
        " WHERE i.function_id = $1::uuid AND i.project_id = $2::uuid AND i.cold_start AND " where

/* One bucket of the timeline: its cold starts' figures (whole hours from the hour sketches,
 * migrations/008, the rest from the rows) and its invocations. */
typedef struct timeline_bucket {
    csa_day_stats s; /* counts and the init sketch (rows added too) */
    double *v;       /* the rows' on-demand init durations: exact percentiles while no hour row */
    size_t n, cap;
    int sketched, seen;
    long long invocations;
} timeline_bucket;

typedef struct timeline_read {
    timeline_bucket *b;
    size_t n;
    double first, width; /* epoch seconds of bucket 0's start; bucket width */
    int failed;
} timeline_read;

#define TIMELINE_ORIGIN 946684800.0 /* 2000-01-01T00:00:00Z: buckets are aligned on it (date_bin) */

static timeline_bucket *bucket_at(timeline_read *t, double at)
{
    double k = floor((at - t->first) / t->width);
    if (!(k >= 0 && k < (double)t->n))
        return NULL;
    return &t->b[(size_t)k];
}

static int timeline_row(const PGresult *row, void *arg)
{
    timeline_read *t = arg;
    timeline_bucket *b = bucket_at(t, csa_db_double(row, 0, 1));
    if (!b)
        return 0;
    b->seen = 1;
    if (PQgetvalue(row, 0, 0)[0] == 'h') { /* a whole hour's sketch */
        b->sketched = 1;
        if (csa_day_stats_add_stored(&b->s, row, 0, 2 + COLD_ROW_NCOLS) < 0)
            t->failed = 1;
        return t->failed;
    }
    csa_cold_row r;
    csa__cold_row_from(row, 0, 2, &r);
    r.modules = NULL;
    if (csa_day_stats_add_row(&b->s, &r) < 0) {
        t->failed = 1;
        return 1;
    }
    if (r.kind == 'c' && r.has_init) {
        double *v = grow(b->v, b->n, &b->cap, sizeof *v, 16);
        if (!v) {
            t->failed = 1;
            return 1;
        }
        b->v = v;
        b->v[b->n++] = r.init_ms;
    }
    return 0;
}

static void timeline_free(timeline_read *t)
{
    for (size_t k = 0; t->b && k < t->n; k++) {
        csa_day_stats_free(&t->b[k].s);
        free(t->b[k].v);
    }
    free(t->b);
}

/* epoch seconds as "YYYY-MM-DDTHH:MM:SS.000Z" */
static json_t *epoch_json(double at)
{
    time_t tt = (time_t)at;
    struct tm tm;
    char text[40];
    if (!gmtime_r(&tt, &tm) || !strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &tm))
        return json_null();
    return json_string(text);
}

/*
 * The window [t0, t1) in UTC-aligned buckets: per bucket its invocations (whole hours from the
 * rollups, like the list's counts), its real cold starts with their init p50/p95/p99, and its
 * proactive and provisioned inits. The cold starts of the whole hours [ha, hz) come from the hour
 * sketches (migrations/008) with their queued and incomplete rows, those of the partial hours at
 * the ends from the rows, in one statement; a bucket's percentiles are exact while none of its
 * hours came from a sketch. Only buckets with invocations or cold starts appear. A new
 * {bucket_seconds, buckets} in *out.
 */
static csa_status function_timeline(PGconn *conn, const char *function_id, const char *project_id, const char *t0,
                                    const char *t1, const char *ha, const char *hz, json_t **out, char *detail)
{
    double from = 0, to = 0;
    if (csa_parse_rfc3339(t0, &from) != 0 || csa_parse_rfc3339(t1, &to) != 0) {
        snprintf(detail, CSA_DETAIL_MAX, "The query failed.");
        return CSA_ERR_INTERNAL;
    }
    long width = timeline_bucket_seconds(to - from);
    char interval[48];
    snprintf(interval, sizeof interval, "%ld seconds", width);
    timeline_read t = {.width = (double)width};
    t.first = TIMELINE_ORIGIN + floor((from - TIMELINE_ORIGIN) / t.width) * t.width;
    t.n = (size_t)ceil((to - t.first) / t.width) + 1;
    t.b = calloc(t.n, sizeof *t.b);
    if (!t.b) {
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        return CSA_ERR_INTERNAL;
    }
    for (size_t k = 0; k < t.n; k++)
        csa_day_stats_init(&t.b[k].s);
    const char *params[] = {function_id, project_id, t0, t1, interval};
    /* clang-format off */
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_function_timeline_counts",
        "SELECT extract(epoch FROM date_bin($5::interval, x.hour, TIMESTAMPTZ '2000-01-01 00:00:00+00')), sum(x.n)"
        " FROM ("
        "  SELECT h.hour, h.invocations AS n FROM function_hourly h"
        "  WHERE h.function_id = $1::uuid AND h.project_id = $2::uuid"
        "    AND h.hour >= csa_hour($3::timestamptz) AND h.hour < $4::timestamptz"
        "  UNION ALL SELECT d.hour, d.invocations FROM function_hourly_delta d"
        "  WHERE d.function_id = $1::uuid AND d.project_id = $2::uuid"
        "    AND d.hour >= csa_hour($3::timestamptz) AND d.hour < $4::timestamptz) x"
        " GROUP BY 1",
        5, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        timeline_free(&t);
        return db_failed(conn, res, "function timeline", detail);
    }
    for (int r = 0; r < PQntuples(res); r++) {
        timeline_bucket *b = bucket_at(&t, strtod(PQgetvalue(res, r, 0), NULL));
        if (b)
            b->invocations += strtoll(PQgetvalue(res, r, 1), NULL, 10);
    }
    PQclear(res);
    const char *p2[] = {function_id, project_id, t0, t1, ha, hz};
    int stopped = 0;
    /* clang-format off */
    res = csa_db_stream_prepared(
        conn, "csa_function_timeline_inits",
        TIMELINE_ROWS_FROM("i.timestamp >= $3::timestamptz AND i.timestamp < least($5::timestamptz, $4::timestamptz)")
        " UNION ALL"
        TIMELINE_ROWS_FROM("i.timestamp >= greatest($6::timestamptz, $5::timestamptz, $3::timestamptz)"
                           " AND i.timestamp < $4::timestamptz")
        " UNION ALL"
        TIMELINE_ROWS_FROM("i.timestamp >= $5::timestamptz AND i.timestamp < $6::timestamptz"
                           " AND i.execution_duration_ms IS NULL")
        " UNION ALL"
        " SELECT 'r', extract(epoch FROM i.timestamp)::float8, " CSA_COLD_ROW_INIT_COLUMNS("i", "f") NO_DAY_COLUMNS
        " FROM function_day_sketch_pending p"
        " JOIN invocations i ON i.id = p.id AND i.timestamp = p.timestamp JOIN functions f ON f.id = i.function_id"
        " WHERE p.function_id = $1::uuid AND p.timestamp >= $5::timestamptz AND p.timestamp < $6::timestamptz"
        "   AND i.project_id = $2::uuid AND i.cold_start"
        " UNION ALL"
        " SELECT 'h', extract(epoch FROM hour)::float8, NULL::text, NULL::int, NULL::float8, NULL::bool, NULL::float8,"
        "   NULL::text, " CSA_DAY_SKETCH_COLUMNS_BUT_MODULES ", NULL::bytea"
        " FROM function_hour_sketches"
        " WHERE function_id = $1::uuid AND project_id = $2::uuid AND hour >= $5::timestamptz"
        "   AND hour < $6::timestamptz",
        6, p2, timeline_row, &t, &stopped);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK || t.failed) {
        timeline_free(&t);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            csa_logf(CSA_LOG_ERROR, "function timeline: function %s: an hour sketch that cannot be decoded",
                     function_id);
            snprintf(detail, CSA_DETAIL_MAX, "The query failed.");
            return CSA_ERR_INTERNAL;
        }
        return db_failed(conn, res, "function timeline", detail);
    }
    PQclear(res);
    json_t *buckets = json_array();
    for (size_t k = 0; k < t.n; k++) {
        timeline_bucket *b = &t.b[k];
        if (b->invocations <= 0 && !b->seen)
            continue;
        double q[3] = {NAN, NAN, NAN};
        static const double at[3] = {0.5, 0.95, 0.99};
        if (b->sketched) {
            for (int j = 0; j < 3; j++)
                q[j] = csa_sketch_quantile(&b->s.init, at[j]);
        } else if (b->n > 0) {
            csa_sort_doubles(b->v, b->n);
            for (int j = 0; j < 3; j++)
                q[j] = csa_percentile_sorted(b->v, b->n, at[j]);
        }
        json_t *o = json_object();
        json_object_set_new(o, "start", epoch_json(t.first + (double)k * t.width));
        json_object_set_new(o, "invocations", json_integer(b->invocations));
        json_object_set_new(o, "cold_starts", json_integer(b->s.cold));
        json_object_set_new(o, "proactive_starts", json_integer(b->s.proactive));
        json_object_set_new(o, "provisioned_starts", json_integer(b->s.provisioned));
        json_object_set_new(o, "init_p50_ms", num_json(q[0]));
        json_object_set_new(o, "init_p95_ms", num_json(q[1]));
        json_object_set_new(o, "init_p99_ms", num_json(q[2]));
        json_array_append_new(buckets, o);
    }
    timeline_free(&t);
    *out = json_pack("{s:I, s:o}", "bucket_seconds", (json_int_t)width, "buckets", buckets);
    return CSA_OK;
}

/*
 * The cold starts a detail reads row by row (csa_db_stream_prepared): those of the partial days at
 * the window's ends, and in its whole days those the day sketches do not hold yet (queued, or
 * incomplete). The module samples held bound the read's memory: it stops past max_samples.
 */

typedef struct cold_read {
    module_agg agg;
    const csa_prices *prices;
    long long max_samples; /* timing entries one read may aggregate */
    long long samples;
    double modules_sum; /* of the rows with an init duration: their modules' total */
    long long modules_rows;
    long long cold, proactive, provisioned;
    double first_cold; /* epoch seconds of the earliest cold start read; 0: none */
    double *init;      /* on-demand init durations */
    size_t n_init, cap_init;
    double init_sum, cost, proactive_cost; /* ms, dollars */
    int failed;                            /* out of memory */
    csa_day_stats *days;                   /* the whole days' sketches, merged */
    int sketched, bad_sketch;              /* day rows were read; one could not be decoded */
} cold_read;

static int cold_row(const PGresult *row, void *arg)
{
    cold_read *cr = arg;
    if (PQgetvalue(row, 0, 0)[0] != 'r') { /* a whole day's or hour's sketches */
        if (csa_day_stats_add_stored(cr->days, row, 0, 1 + COLD_ROW_NCOLS) < 0) {
            cr->bad_sketch = 1;
            return 1;
        }
        cr->sketched = 1;
        return 0;
    }
    csa_cold_row r;
    csa__cold_row_from(row, 0, 1, &r);
    if (cr->first_cold == 0 || r.at < cr->first_cold)
        cr->first_cold = r.at;
    /* the dollars of one millisecond of this row's init (cost.h) */
    double usd_per_ms = r.memory_gb / 1000.0 * (r.arch == CSA_ARCH_ARM64 ? cr->prices->arm64 : cr->prices->x86_64);
    if (r.kind == 'p') {
        cr->proactive++;
        cr->proactive_cost += r.has_init ? r.init_ms * usd_per_ms : 0;
        return 0;
    }
    if (r.kind == 'v')
        cr->provisioned++;
    if (r.kind != 'c')
        return 0;
    cr->cold++;
    if (r.has_init) {
        double *v = grow(cr->init, cr->n_init, &cr->cap_init, sizeof *v, 64);
        if (!v) {
            cr->failed = 1;
            return 1;
        }
        cr->init = v;
        cr->init[cr->n_init++] = r.init_ms;
        cr->init_sum += r.init_ms;
        cr->cost += r.init_ms * usd_per_ms;
    }
    if (!r.modules)
        return 0;
    double row_sum = 0;
    int n = agg_add_row(&cr->agg, r.modules, &row_sum, usd_per_ms);
    if (n > 0 && r.has_init) {
        cr->modules_sum += row_sum;
        cr->modules_rows++;
    }
    cr->samples += n > 0 ? n : 0;
    return cr->samples > cr->max_samples;
}

static csa_status function_detail(PGconn *conn, const csa_rules *rules, const csa_prices *prices,
                                  const char *project_id, const char *function_id, const char *from, const char *to,
                                  long long max_samples, json_t **out, char *detail);

csa_status csa_query_function_detail(PGconn *conn, const csa_rules *rules, const csa_prices *prices,
                                     const char *project_id, const char *function_id, const char *from, const char *to,
                                     long long max_samples, json_t **out, char *detail)
{
    if (!csa_is_uuid(function_id)) {
        snprintf(detail, CSA_DETAIL_MAX, "Function not found");
        return CSA_ERR_NOT_FOUND;
    }
    return function_detail(conn, rules, prices, project_id, function_id, from, to, max_samples, out, detail);
}

/* Percentiles of the on-demand inits: exact over the rows read, or (whole days in the window)
 * from the merged day sketch with those rows added. Sets avg, p50, p95, p99 (NaN: none). */
static void init_figures(const csa_day_stats *days, cold_read *cr, double q[4])
{
    q[0] = q[1] = q[2] = q[3] = NAN;
    if (days->init.count > 0) {
        csa_sketch merged;
        csa_sketch_init(&merged);
        int ok = csa_sketch_merge(&merged, &days->init) == 0;
        for (size_t k = 0; ok && k < cr->n_init; k++)
            ok = csa_sketch_add(&merged, cr->init[k]) == 0;
        if (ok) {
            q[0] = merged.sum / (double)merged.count;
            q[1] = csa_sketch_quantile(&merged, 0.5);
            q[2] = csa_sketch_quantile(&merged, 0.95);
            q[3] = csa_sketch_quantile(&merged, 0.99);
        }
        csa_sketch_free(&merged);
    } else if (cr->n_init > 0) {
        csa_sort_doubles(cr->init, cr->n_init);
        q[0] = cr->init_sum / (double)cr->n_init;
        q[1] = csa_percentile_sorted(cr->init, cr->n_init, 0.5);
        q[2] = csa_percentile_sorted(cr->init, cr->n_init, 0.95);
        q[3] = csa_percentile_sorted(cr->init, cr->n_init, 0.99);
    }
}

static csa_status function_detail(PGconn *conn, const csa_rules *rules, const csa_prices *prices,
                                  const char *project_id, const char *function_id, const char *from, const char *to,
                                  long long max_samples, json_t **out, char *detail)
{
    char x86[32], arm[32];
    csa_prices_params(prices, x86, arm);
    const char *p1[] = {function_id, project_id, from, to};
    /* the function, the window, its invocation count (whole hours from the rollups, the partial
     * hours at the ends from the rows), and the window's whole UTC days [da, dz). The partial
     * hours are counted on (function_id, timestamp) alone, an index-only scan: f is the project's
     * function and every invocation of it is the project's (the writer takes both from one key),
     * and a filter on i.project_id read each row's heap page (10x the rows at 10x the traffic). */
    /* clang-format off */
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_function_detail",
        "WITH w AS (SELECT coalesce($3::timestamptz, coalesce($4::timestamptz, now()) - interval '7 days') AS t0,"
        "                  coalesce($4::timestamptz, now()) AS t1),"
        " b AS (SELECT t0, t1, " FIRST_FULL_HOUR("w.t0") " AS a, csa_hour(w.t1) AS z,"
        "   CASE WHEN (w.t0 AT TIME ZONE 'UTC')::date::timestamp = (w.t0 AT TIME ZONE 'UTC')"
        "     THEN (w.t0 AT TIME ZONE 'UTC')::date ELSE (w.t0 AT TIME ZONE 'UTC')::date + 1 END AS da,"
        "   (w.t1 AT TIME ZONE 'UTC')::date AS dz FROM w)"
        " SELECT f.id::text, f.function_name, f.runtime, f.region, f.memory_allocated_mb, " TS_UTC("f.first_seen_at")
        ", " TS_UTC("f.last_seen_at") ", " TS_UTC("b.t0") ", " TS_UTC("b.t1") ","
        "   (SELECT coalesce(sum(h.invocations), 0) FROM function_hourly h"
        "     WHERE h.function_id = f.id AND h.hour >= b.a AND h.hour < b.z)"
        "   + (SELECT coalesce(sum(d.invocations), 0) FROM function_hourly_delta d"
        "     WHERE d.function_id = f.id AND d.hour >= b.a AND d.hour < b.z)"
        "   + (SELECT count(*) FROM invocations i WHERE i.function_id = f.id"
        "     AND i.timestamp >= b.t0 AND i.timestamp < least(b.a, b.t1))"
        "   + (SELECT count(*) FROM invocations i WHERE i.function_id = f.id"
        "     AND i.timestamp >= greatest(b.z, b.a, b.t0) AND i.timestamp < b.t1),"
        "   (b.t0 < b.t1), b.da::text, b.dz::text, " TS_UTC("b.da::timestamp AT TIME ZONE 'UTC'") ","
        "   " TS_UTC("b.dz::timestamp AT TIME ZONE 'UTC'") ", extract(epoch FROM b.t0),"
        "   extract(epoch FROM least(b.t1, now())), extract(epoch FROM f.first_seen_at), " TS_UTC("b.a") ","
        "   " TS_UTC("b.z")
        " FROM functions f CROSS JOIN b"
        " WHERE f.id = $1::uuid AND f.project_id = $2::uuid",
        4, p1);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (csa_db_classify(conn, res) == CSA_DB_FAULT_BAD_INPUT) { /* a from/to PostgreSQL cannot read */
            snprintf(detail, CSA_DETAIL_MAX, "from and to must be RFC 3339 date-times");
            PQclear(res);
            return CSA_ERR_VALIDATION;
        }
        return db_failed(conn, res, "function detail", detail);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "Function not found");
        return CSA_ERR_NOT_FOUND;
    }
    if (strcmp(PQgetvalue(res, 0, 10), "t") != 0) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "from must be earlier than to");
        return CSA_ERR_VALIDATION;
    }
    json_t *body = json_object();
    json_object_set_new(body, "id", col_str(res, 0, 0));
    json_object_set_new(body, "function_name", col_str(res, 0, 1));
    json_object_set_new(body, "runtime", col_str(res, 0, 2));
    json_object_set_new(body, "region", col_str(res, 0, 3));
    json_object_set_new(body, "memory_allocated_mb", col_int(res, 0, 4));
    json_object_set_new(body, "first_seen_at", col_str(res, 0, 5));
    json_object_set_new(body, "last_seen_at", col_str(res, 0, 6));
    json_object_set_new(body, "window", json_pack("{s:o, s:o}", "from", col_str(res, 0, 7), "to", col_str(res, 0, 8)));
    json_object_set_new(body, "invocations", col_int(res, 0, 9));
    char t0[64], t1[64], da[16], dz[16], ta[64], tz[64];
    snprintf(t0, sizeof t0, "%s", PQgetvalue(res, 0, 7));
    snprintf(t1, sizeof t1, "%s", PQgetvalue(res, 0, 8));
    snprintf(da, sizeof da, "%s", PQgetvalue(res, 0, 11));
    snprintf(dz, sizeof dz, "%s", PQgetvalue(res, 0, 12));
    snprintf(ta, sizeof ta, "%s", PQgetvalue(res, 0, 13));
    snprintf(tz, sizeof tz, "%s", PQgetvalue(res, 0, 14));
    double window_start = strtod(PQgetvalue(res, 0, 15), NULL), window_end = strtod(PQgetvalue(res, 0, 16), NULL);
    double first_seen = PQgetisnull(res, 0, 17) ? INFINITY : strtod(PQgetvalue(res, 0, 17), NULL);
    char ha[64], hz[64]; /* the window's whole hours [ha, hz) */
    snprintf(ha, sizeof ha, "%s", PQgetvalue(res, 0, 18));
    snprintf(hz, sizeof hz, "%s", PQgetvalue(res, 0, 19));
    PQclear(res);

    json_t *timeline = NULL;
    csa_status st = function_timeline(conn, function_id, project_id, t0, t1, ha, hz, &timeline, detail);
    if (st != CSA_OK) {
        json_decref(body);
        return st;
    }
    json_object_set_new(body, "timeline", timeline);

    csa_day_stats days;
    csa_day_stats_init(&days);
    /* In one statement (one snapshot: a fold between two statements would move rows from the
     * queue into the sketches unseen, or seen twice): the whole days' sketches (migrations/006, all
     * deployments), the whole hours' sketches of the partial days at the window's ends
     * (migrations/008), and the rows the sketches do not hold: the partial hours at the very ends,
     * and in the whole days and hours the incomplete rows and those still queued; module_timings
     * read as text and aggregated here. */
    const char *p2[] = {function_id, project_id, t0, t1, ta, tz, da, dz, ha, hz};
    cold_read cr = {.max_samples = max_samples, .prices = prices, .days = &days};
    agg_init(&cr.agg);
    int stopped = 0;
    /* clang-format off */
    res = csa_db_stream_prepared(
        conn, "csa_detail_cold_rows",
        COLD_ROWS_FROM("i.timestamp >= $3::timestamptz AND i.timestamp < least($9::timestamptz, $4::timestamptz)")
        " UNION ALL"
        COLD_ROWS_FROM("i.timestamp >= greatest($10::timestamptz, $9::timestamptz, $3::timestamptz)"
                       " AND i.timestamp < $4::timestamptz")
        " UNION ALL"
        COLD_ROWS_FROM("i.timestamp >= $9::timestamptz AND i.timestamp < $10::timestamptz"
                       " AND i.execution_duration_ms IS NULL")
        " UNION ALL"
        " SELECT 'r', " CSA_COLD_ROW_COLUMNS("i", "f") NO_DAY_COLUMNS " FROM function_day_sketch_pending p"
        " JOIN invocations i ON i.id = p.id AND i.timestamp = p.timestamp JOIN functions f ON f.id = i.function_id"
        " WHERE p.function_id = $1::uuid AND p.timestamp >= $9::timestamptz AND p.timestamp < $10::timestamptz"
        "   AND i.project_id = $2::uuid AND i.cold_start"
        " UNION ALL"
        " SELECT 'd', NULL::text, NULL::int, NULL::float8, NULL::bool, NULL::float8, NULL::text, " CSA_DAY_SKETCH_COLUMNS
        " FROM function_day_sketches"
        " WHERE function_id = $1::uuid AND project_id = $2::uuid AND day >= $7::date AND day < $8::date"
        " UNION ALL"
        " SELECT 'h', NULL::text, NULL::int, NULL::float8, NULL::bool, NULL::float8, NULL::text, " CSA_DAY_SKETCH_COLUMNS
        " FROM function_hour_sketches"
        " WHERE function_id = $1::uuid AND project_id = $2::uuid AND hour >= $9::timestamptz AND hour < $10::timestamptz"
        "   AND NOT (hour >= $5::timestamptz AND hour < $6::timestamptz)",
        10, p2, cold_row, &cr, &stopped);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK || cr.failed || cr.bad_sketch) {
        agg_free(&cr.agg);
        free(cr.init);
        csa_day_stats_free(&days);
        json_decref(body);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            if (cr.bad_sketch)
                csa_logf(CSA_LOG_ERROR, "function detail: function %s: a day sketch that cannot be decoded",
                         function_id);
            snprintf(detail, CSA_DETAIL_MAX, cr.failed ? "Out of memory" : "The query failed.");
            return CSA_ERR_INTERNAL;
        }
        return db_failed(conn, res, "cold starts", detail);
    }
    PQclear(res);
    if (stopped) {
        agg_free(&cr.agg);
        free(cr.init);
        csa_day_stats_free(&days);
        json_decref(body);
        snprintf(detail, CSA_DETAIL_MAX,
                 "The window holds more than %lld module timings (MAX_READ_SAMPLES), more than one read may "
                 "aggregate; ask for a narrower window (from, to)",
                 max_samples);
        return CSA_ERR_VALIDATION;
    }

    long long cold = cr.cold + days.cold;
    json_object_set_new(body, "cold_starts", json_integer(cold));
    json_object_set_new(body, "proactive_starts", json_integer(cr.proactive + days.proactive));
    json_object_set_new(body, "provisioned_starts", json_integer(cr.provisioned + days.provisioned));
    double q[4];
    init_figures(&days, &cr, q);
    json_object_set_new(body, "init_duration_ms",
                        json_pack("{s:o, s:o, s:o, s:o}", "avg", num_json(q[0]), "p50", num_json(q[1]), "p95",
                                  num_json(q[2]), "p99", num_json(q[3])));
    double avg_init = isfinite(q[0]) ? q[0] : 0;
    double cost = cr.cost + days.init_gb_s[CSA_ARCH_X86_64] * prices->x86_64 +
                  days.init_gb_s[CSA_ARCH_ARM64] * prices->arm64;
    double proactive_cost = cr.proactive_cost + days.proactive_gb_s[CSA_ARCH_X86_64] * prices->x86_64 +
                            days.proactive_gb_s[CSA_ARCH_ARM64] * prices->arm64;
    /* the span the projection extrapolates: the window, from when the function was first seen
     * (its first cold start if that is earlier) and up to now at most */
    double first_cold = cr.first_cold;
    if (days.first_cold != 0 && (first_cold == 0 || days.first_cold < first_cold))
        first_cold = days.first_cold;
    double since = first_cold != 0 && first_cold < first_seen ? first_cold : first_seen;
    double projection_span = window_end - (since > window_start && isfinite(since) ? since : window_start);
    json_object_set_new(body, "init_cost_usd", csa_usd_json(cost));
    json_object_set_new(body, "init_cost_usd_per_month", csa_usd_json(csa_cost_per_month(cost, projection_span)));
    json_object_set_new(body, "proactive_init_cost_usd", csa_usd_json(proactive_cost));
    json_object_set_new(body, "prices_per_gb_second", csa_prices_json(prices));
    json_object_set_new(body, "percentiles", json_string(cr.sketched ? "sketch" : "exact"));
    double init_p50 = isfinite(q[1]) ? q[1] : -1;
    free(cr.init);

    /* per module: the whole days' sketches joined to the samples read */
    module_agg agg = cr.agg;
    int out_of_memory = agg.failed;
    for (size_t k = 0; k < days.packages.n && !out_of_memory; k++) {
        const csa_package_stat *ps = &days.packages.items[k];
        module_stat *m = agg_get(&agg, ps->name, strlen(ps->name));
        if (!m) {
            out_of_memory = 1;
            break;
        }
        m->days = ps;
        m->total += ps->n;
        m->sum += ps->sum_ms;
        m->cost += ps->gb_s[CSA_ARCH_X86_64] * prices->x86_64 + ps->gb_s[CSA_ARCH_ARM64] * prices->arm64;
    }
    double modules_sum = cr.modules_sum + days.module_rows_ms;
    long long modules_rows = cr.modules_rows + days.module_rows;
    double avg_modules = modules_rows ? modules_sum / (double)modules_rows : 0;
    json_object_set_new(body, "module_load_share",
                        avg_init > 0 && avg_modules > 0
                            ? json_real(round(fmin(avg_modules / avg_init, 1.0) * 1000) / 1000)
                            : json_null());
    json_t *breakdown = json_object();
    json_t *modules_for_rules = json_object();
    double module_p50_sum = 0;
    module_stat *order = agg_finish(&agg);
    size_t shown = agg.n < MAX_BREAKDOWN ? agg.n : MAX_BREAKDOWN;
    /* cold_row filled agg through its pointer; cppcheck follows only agg_init's zero */
    /* cppcheck-suppress knownConditionTrueFalse */
    for (size_t k = 0; order && k < shown; k++) {
        const module_stat *ms = &order[k];
        double seen_in = cold > 0 ? round((double)ms->total / (double)cold * 1000) / 1000 : 0;
        json_t *m = json_pack("{s:o, s:o, s:o, s:o, s:f, s:I, s:o, s:o}", "avg_load_time_ms",
                              num_json(ms->sum / (double)ms->total), "p50_ms", num_json(ms->p50), "p95_ms",
                              num_json(ms->p95), "p99_ms", num_json(ms->p99), "seen_in", seen_in, "samples",
                              (json_int_t)ms->total, "init_cost_usd", csa_usd_json(ms->cost), "init_cost_usd_per_month",
                              csa_usd_json(csa_cost_per_month(ms->cost, projection_span)));
        json_object_set_new(breakdown, ms->name, m);
        json_object_set(modules_for_rules, ms->name, m);
        module_p50_sum += ms->p50;
    }
    agg_free(&agg);
    csa_day_stats_free(&days);
    json_object_set_new(body, "module_breakdown", breakdown);
    const char *p3[] = {function_id, project_id, t0, t1};

    /* the newest module tree an SDK sent in the window; package versions from the newest few
     * (an SDK may send a tree before it has read every version) */
    res = csa_db_exec_prepared(
        conn, "csa_module_trees",
        "SELECT i.module_tree FROM invocations i"
        " WHERE i.function_id = $1::uuid AND i.project_id = $2::uuid AND i.module_tree IS NOT NULL"
        "   AND i.cold_start AND i.timestamp >= $3::timestamptz AND i.timestamp < $4::timestamptz"
        " ORDER BY i.timestamp DESC LIMIT 5",
        4, p3);
    json_t *tree = json_null();
    json_t *versions = json_object();
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int r = 0; r < PQntuples(res); r++) {
            json_error_t jerr;
            json_t *t = json_loads(PQgetvalue(res, r, 0), JSON_DECODE_ANY, &jerr);
            if (!t)
                continue;
            json_t *found = json_object();
            collect_versions(t, found, 0);
            json_object_update_missing(versions, found);
            json_decref(found);
            if (json_is_null(tree))
                tree = t;
            else
                json_decref(t);
        }
    }
    PQclear(res);
    const char *name;
    json_t *m;
    json_object_foreach(modules_for_rules, name, m) {
        json_t *v = json_object_get(versions, name);
        json_object_set(m, "version", v ? v : json_null());
    }
    json_decref(versions);
    json_object_set_new(body, "module_tree", tree);

    /* the function's runtime: rules with a "runtime" apply only to functions of that runtime */
    json_t *runtime = json_object_get(body, "runtime");
    json_t *context = json_pack("{s:o, s:f, s:I}", "init_p50_ms", init_p50 >= 0 ? json_real(init_p50) : json_null(),
                                "module_load_p50_ms", module_p50_sum, "cold_starts", (json_int_t)cold);
    json_object_set(context, "runtime", json_is_string(runtime) ? runtime : json_null());
    json_t *recs = rules ? csa_rules_recommend(rules, modules_for_rules, context) : json_array();
    json_decref(context);
    json_decref(modules_for_rules);
    json_object_set_new(body, "recommendations", recs ? recs : json_array());
    *out = body;
    return CSA_OK;
}

/* The scopes in bits as a JSON array of names, in the order ingest, read, admin. */
static json_t *scopes_json(unsigned scopes)
{
    json_t *list = json_array();
    static const unsigned bits[] = {CSA_SCOPE_INGEST, CSA_SCOPE_READ, CSA_SCOPE_ADMIN};
    for (int i = 0; i < 3; i++) {
        char name[16];
        if (!(scopes & bits[i]))
            continue;
        csa_scopes_format(bits[i], ",", name, sizeof name);
        json_array_append_new(list, json_string(name));
    }
    return list;
}

csa_status csa_query_list_keys(PGconn *conn, const char *project_id, json_t **out, char *detail)
{
    const char *params[] = {project_id};
    /* clang-format off */
    PGresult *res = csa_db_exec(conn,
                                "SELECT id::text, key_prefix, name, is_active, " TS_UTC("created_at") ", "
                                TS_UTC("last_used_at") ", scopes::text FROM api_keys WHERE project_id = $1"
                                " ORDER BY created_at, id",
                                1, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return db_failed(conn, res, "list keys", detail);
    }
    json_t *list = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(list, json_pack("{s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "id", col_str(res, r, 0),
                                              "key_prefix", col_str(res, r, 1), "name", col_str(res, r, 2), "scopes",
                                              scopes_json(csa_scopes_parse_pg(PQgetvalue(res, r, 6))), "is_active",
                                              strcmp(PQgetvalue(res, r, 3), "t") == 0, "created_at", col_str(res, r, 4),
                                              "last_used_at", col_str(res, r, 5)));
    }
    PQclear(res);
    *out = json_pack("{s:o}", "api_keys", list);
    return CSA_OK;
}

/* A key just created, as the API shows it (the key itself only this once). */
static json_t *new_key_json(const char *id, const char *key, const char *name, unsigned scopes, const char *created_at)
{
    return json_pack("{s:s, s:s, s:s#, s:o, s:o, s:b, s:s}", "id", id, "key", key, "key_prefix", key,
                     (size_t)CSA_KEY_PREFIX_LEN, "name", name ? json_string(name) : json_null(), "scopes",
                     scopes_json(scopes), "is_active", 1, "created_at", created_at);
}

csa_status csa_query_create_key(PGconn *conn, const char *project_id, const char *name, unsigned scopes, json_t **out,
                                char *detail)
{
    char key[CSA_KEY_LEN + 1];
    PGresult *res = csa_key_insert(conn, project_id, name, scopes, key);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return db_failed(conn, res, "create key", detail);
    }
    *out = new_key_json(PQgetvalue(res, 0, 0), key, name, scopes, PQgetvalue(res, 0, 1));
    sodium_memzero(key, sizeof key);
    PQclear(res);
    return CSA_OK;
}
csa_status csa_query_revoke_key(PGconn *conn, const char *project_id, const char *key_id, int force, json_t **out,
                                char *detail)
{
    if (!csa_is_uuid(key_id)) {
        snprintf(detail, CSA_DETAIL_MAX, "API key not found");
        return CSA_ERR_NOT_FOUND;
    }
    const char *params[] = {key_id, project_id, force ? "t" : "f"};
    /* one statement: the last-active-key check and the update cannot race with another revoke
     * of the same project's keys (the project row is locked for the statement) */
    PGresult *res = csa_db_exec(
        conn,
        "WITH p AS (SELECT id FROM projects WHERE id = $2::uuid FOR UPDATE),"
        " k AS (SELECT a.id, a.is_active, 'admin' = ANY (a.scopes) AS is_admin"
        "       FROM api_keys a JOIN p ON a.project_id = p.id WHERE a.id = $1::uuid),"
        " others AS (SELECT count(*) AS n FROM api_keys a JOIN p ON a.project_id = p.id"
        "            WHERE a.is_active AND 'admin' = ANY (a.scopes) AND a.id <> $1::uuid),"
        " upd AS (UPDATE api_keys a SET is_active = false FROM k, others"
        "         WHERE a.id = k.id AND (others.n > 0 OR $3::bool OR NOT k.is_active OR NOT k.is_admin)"
        "         RETURNING a.id)"
        " SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM upd), (SELECT n FROM others),"
        "        (SELECT key_prefix FROM api_keys WHERE id = $1::uuid AND project_id = $2::uuid)",
        3, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return db_failed(conn, res, "revoke key", detail);
    }
    int found = atoi(PQgetvalue(res, 0, 0)), updated = atoi(PQgetvalue(res, 0, 1));
    if (!found) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "API key not found");
        return CSA_ERR_NOT_FOUND;
    }
    if (!updated) {
        PQclear(res);
        snprintf(
            detail, CSA_DETAIL_MAX,
            "This is the project's last active admin key; revoking it leaves no key that can manage keys. Add ?force=true to do it anyway.");
        return CSA_ERR_CONFLICT;
    }
    *out = json_pack("{s:s, s:o, s:b}", "id", key_id, "key_prefix", col_str(res, 0, 3), "is_active", 0);
    PQclear(res);
    return CSA_OK;
}

csa_status csa_query_create_project(PGconn *conn, const char *name, const char *slug, json_t **out, char *detail)
{
    csa_new_project p;
    csa_status st = csa_project_create(conn, name, slug, &p, detail);
    if (st != CSA_OK)
        return st;
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", p.id, "name", name, "slug", slug, "api_key",
                     new_key_json(p.admin.id, p.admin.key, "admin", p.admin.scopes, p.admin.created_at), "ingest_key",
                     new_key_json(p.ingest.id, p.ingest.key, "ingest", p.ingest.scopes, p.ingest.created_at));
    csa_new_project_wipe(&p);
    return CSA_OK;
}
