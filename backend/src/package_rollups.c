/* package_rollups.c: see package_rollups.h. */
#include "package_rollups.h"

#include "day_sketches.h"
#include "db.h"
#include "sketch.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One (project or function, hour or day, package): its sketch (count, sum, min, max, buckets), the
 * functions that timed it (project groups) and its GB-seconds by architecture (function groups). */
typedef struct group {
    const char *owner; /* the project or function id; points into the fold's PGresult */
    double start;      /* epoch seconds of the hour or day */
    char *package;     /* owned */
    size_t package_len;
    csa_sketch sketch;
    json_t *functions; /* object used as a set of function ids */
    double gb_s[2];    /* self seconds x memory GB, by architecture (CSA_ARCH_*) */
} group;

typedef struct groups {
    json_t *index; /* "owner|start|package" -> position in items */
    group *items;
    size_t n, cap;
    double width;     /* 3600 or 86400 */
    int per_function; /* owner: 1 the function (function_package_*), 0 the project (package_*) */
    double from;      /* epoch seconds: cold starts before this are not added (0: all) */
} groups;

static void groups_free(groups *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->items[i].package);
        csa_sketch_free(&g->items[i].sketch);
        json_decref(g->items[i].functions);
    }
    free(g->items);
    json_decref(g->index);
}

static group *groups_get(groups *g, const char *owner, double start, const char *package, size_t len)
{
    char head[80];
    int hn = snprintf(head, sizeof head, "%s|%.0f|", owner, start);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return NULL;
    char *key = malloc((size_t)hn + len + 1);
    if (!key)
        return NULL;
    memcpy(key, head, (size_t)hn);
    memcpy(key + hn, package, len);
    key[(size_t)hn + len] = '\0';
    json_t *idx = json_object_getn(g->index, key, (size_t)hn + len);
    if (idx) {
        free(key);
        return &g->items[json_integer_value(idx)];
    }
    group *item = NULL;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        group *items = realloc(g->items, cap * sizeof *items);
        if (!items)
            goto out;
        g->items = items;
        g->cap = cap;
    }
    char *own = malloc(len + 1);
    json_t *fns = json_object();
    if (!own || !fns || json_object_setn_new(g->index, key, (size_t)hn + len, json_integer((json_int_t)g->n)) < 0) {
        free(own);
        json_decref(fns);
        goto out;
    }
    memcpy(own, package, len);
    own[len] = '\0';
    item = &g->items[g->n++];
    memset(item, 0, sizeof *item);
    item->owner = owner;
    item->start = start;
    item->package = own;
    item->package_len = len;
    item->functions = fns;
    csa_sketch_init(&item->sketch);
out:
    free(key);
    return item;
}

typedef struct row_ctx {
    groups *all[4]; /* project hourly, daily; function hourly, daily */
    const char *project, *function;
    double at, memory_gb;
    int arch;
    int failed;
} row_ctx;

static int add_to(groups *g, const row_ctx *c, const char *key, size_t len, double ms)
{
    if (c->at < g->from)
        return 0;
    group *grp = groups_get(g, g->per_function ? c->function : c->project, floor(c->at / g->width) * g->width, key,
                            len);
    if (!grp || csa_sketch_add(&grp->sketch, ms) < 0)
        return -1;
    if (g->per_function)
        grp->gb_s[c->arch] += ms / 1000.0 * c->memory_gb;
    else if (json_object_set_new(grp->functions, c->function, json_true()) < 0)
        return -1;
    return 0;
}

static int add_timing(const char *key, size_t len, double ms, void *arg)
{
    row_ctx *c = arg;
    if (!isfinite(ms))
        return 0; /* the validator refuses these; never counted by the day sketches either */
    for (size_t i = 0; i < sizeof c->all / sizeof c->all[0]; i++)
        if (add_to(c->all[i], c, key, len, ms) < 0) {
            c->failed = 1;
            return -1;
        }
    return 0;
}

/* The groups as a JSON array for jsonb_to_recordset; NULL when out of memory. */
static json_t *groups_json(const groups *g)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < g->n; i++) {
        const group *grp = &g->items[i];
        const csa_sketch *s = &grp->sketch;
        json_t *keys = json_array(), *counts = json_array(), *fns = json_array();
        json_t *o = json_object();
        int bad = !keys || !counts || !fns || !o;
        if (!bad && s->zero > 0)
            bad = json_array_append_new(keys, json_integer(CSA_PACKAGE_ZERO_KEY)) < 0 ||
                  json_array_append_new(counts, json_integer((json_int_t)s->zero)) < 0;
        for (uint32_t k = 0; !bad && k < s->len; k++)
            if (s->bins[k])
                bad = json_array_append_new(keys, json_integer((json_int_t)s->offset + (json_int_t)k)) < 0 ||
                      json_array_append_new(counts, json_integer((json_int_t)s->bins[k])) < 0;
        const char *fn;
        json_t *unused;
        json_object_foreach(grp->functions, fn, unused) {
            if (bad)
                break;
            bad = json_array_append_new(fns, json_string(fn)) < 0;
        }
        json_t *name = bad ? NULL : json_stringn(grp->package, grp->package_len);
        if (bad || !name || json_object_set_new(o, "p", json_string(grp->owner)) < 0 ||
            json_object_set_new(o, "t", json_real(grp->start)) < 0 || json_object_set_new(o, "k", name) < 0 ||
            json_object_set_new(o, "n", json_integer((json_int_t)s->count)) < 0 ||
            json_object_set_new(o, "s", json_real(s->sum)) < 0 || json_object_set_new(o, "mn", json_real(s->min)) < 0 ||
            json_object_set_new(o, "mx", json_real(s->max)) < 0 || json_object_set(o, "keys", keys) < 0 ||
            json_object_set(o, "counts", counts) < 0 ||
            (g->per_function ? json_object_set_new(o, "g0", json_real(grp->gb_s[CSA_ARCH_X86_64])) < 0 ||
                                   json_object_set_new(o, "g1", json_real(grp->gb_s[CSA_ARCH_ARM64])) < 0
                             : json_object_set(o, "f", fns) < 0) ||
            json_array_append(arr, o) < 0) {
            /* an invalid UTF-8 name (json_stringn refuses it) cannot be in a jsonb column: never here */
            json_decref(arr);
            arr = NULL;
        }
        json_decref(keys);
        json_decref(counts);
        json_decref(fns);
        json_decref(o);
    }
    return arr;
}

/* The upsert of one table: `slot` is the start column (hour, or day), `start` its value from the
 * epoch seconds t. Bucket lists are merged (csa_buckets_merge) and function sets united. */
#define UPSERT_SQL(table, slot, start) \
    "INSERT INTO " table " AS t (project_id, " slot ", package, cold_starts, sum_ms, min_ms, max_ms, keys, counts," \
    "  functions)" \
    " SELECT x.p, " start ", x.k, x.n, x.s, x.mn, x.mx, x.keys, x.counts, ARRAY(SELECT DISTINCT u FROM unnest(x.f) u" \
    "  ORDER BY u)" \
    " FROM jsonb_to_recordset($1::jsonb) AS x(p uuid, t float8, k text, n bigint, s float8, mn float8, mx float8," \
    "  keys int[], counts bigint[], f uuid[])" \
    " ORDER BY 1, 2, 3" \
    " ON CONFLICT (project_id, " slot ", package) DO UPDATE SET cold_starts = t.cold_starts + EXCLUDED.cold_starts," \
    "  sum_ms = t.sum_ms + EXCLUDED.sum_ms, min_ms = least(t.min_ms, EXCLUDED.min_ms)," \
    "  max_ms = greatest(t.max_ms, EXCLUDED.max_ms)," \
    "  (keys, counts) = (SELECT m.keys, m.counts FROM csa_buckets_merge(t.keys, t.counts, EXCLUDED.keys," \
    "   EXCLUDED.counts) m)," \
    "  functions = ARRAY(SELECT DISTINCT u FROM unnest(t.functions || EXCLUDED.functions) u ORDER BY u)"

/* The same for the per-function tables (migrations/011): no function sets, GB-seconds summed, the
 * bucket lists appended rather than merged (a key may repeat: its count is the sum of its
 * entries; readers merge the few rows they pick, and a merge per upserted row was most of the
 * fold's time); `where` limits the rows written (the hourly table keeps the recent hours only). */
#define FUNCTION_UPSERT_SQL(table, slot, start, where) \
    "INSERT INTO " table " AS t (function_id, " slot ", package, cold_starts, sum_ms, min_ms, max_ms, gb_s_x86_64," \
    "  gb_s_arm64, keys, counts)" \
    " SELECT x.p, " start ", x.k, x.n, x.s, x.mn, x.mx, x.g0, x.g1, x.keys, x.counts" \
    " FROM jsonb_to_recordset($1::jsonb) AS x(p uuid, t float8, k text, n bigint, s float8, mn float8, mx float8," \
    "  g0 float8, g1 float8, keys int[], counts bigint[])" \
    " WHERE " where " ORDER BY 1, 2, 3" \
    " ON CONFLICT (function_id, " slot ", package) DO UPDATE SET cold_starts = t.cold_starts + EXCLUDED.cold_starts," \
    "  sum_ms = t.sum_ms + EXCLUDED.sum_ms, min_ms = least(t.min_ms, EXCLUDED.min_ms)," \
    "  max_ms = greatest(t.max_ms, EXCLUDED.max_ms), gb_s_x86_64 = t.gb_s_x86_64 + EXCLUDED.gb_s_x86_64," \
    "  gb_s_arm64 = t.gb_s_arm64 + EXCLUDED.gb_s_arm64, keys = t.keys || EXCLUDED.keys," \
    "  counts = t.counts || EXCLUDED.counts"

static int upsert(PGconn *conn, const groups *g, const char *sql, char *err, size_t err_size)
{
    if (g->n == 0)
        return 0;
    json_t *arr = groups_json(g);
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!text) {
        snprintf(err, err_size, "package rollups: out of memory");
        return -1;
    }
    const char *params[] = {text};
    PGresult *res = csa_db_exec(conn, sql, 1, params);
    free(text);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, err_size, "package rollups: %s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        rc = -1;
    }
    PQclear(res);
    return rc;
}

int csa_package_rollups_add(PGconn *conn, const PGresult *rows, int fn_col, int project_col, int cold_col, char *err,
                            size_t err_size)
{
    groups hourly = {.index = json_object(), .width = 3600}, daily = {.index = json_object(), .width = 86400};
    /* the hourly rows kept (csa_function_package_hours_from(): two days before today, UTC); a day
     * more here for a clock that differs from the database's, whose filter decides */
    groups fn_hourly = {.index = json_object(),
                        .width = 3600,
                        .per_function = 1,
                        .from = floor(time(NULL) / 86400.0) * 86400 - 3 * 86400};
    groups fn_daily = {.index = json_object(), .width = 86400, .per_function = 1};
    int rc = -1;
    if (!hourly.index || !daily.index || !fn_hourly.index || !fn_daily.index) {
        snprintf(err, err_size, "package rollups: out of memory");
        goto out;
    }
    for (int r = 0, n = PQntuples(rows); r < n; r++) {
        csa_cold_row row;
        csa__cold_row_from(rows, r, cold_col, &row);
        if (row.kind != 'c' || !row.modules)
            continue;
        row_ctx c = {{&hourly, &daily, &fn_hourly, &fn_daily},
                     PQgetvalue(rows, r, project_col),
                     PQgetvalue(rows, r, fn_col),
                     row.at,
                     row.memory_gb,
                     row.arch == CSA_ARCH_ARM64 ? CSA_ARCH_ARM64 : CSA_ARCH_X86_64,
                     0};
        csa_each_timing(row.modules, add_timing, &c);
        if (c.failed) {
            snprintf(err, err_size, "package rollups: out of memory");
            goto out;
        }
    }
    if (upsert(conn, &hourly, UPSERT_SQL("package_hourly", "hour", "to_timestamp(x.t)"), err, err_size) < 0 ||
        upsert(conn, &daily, UPSERT_SQL("package_daily", "day", "(to_timestamp(x.t) AT TIME ZONE 'UTC')::date"), err,
               err_size) < 0 ||
        upsert(conn, &fn_hourly,
               FUNCTION_UPSERT_SQL("function_package_hourly", "hour", "to_timestamp(x.t)",
                                   "to_timestamp(x.t) >= csa_function_package_hours_from()"),
               err, err_size) < 0 ||
        upsert(conn, &fn_daily,
               FUNCTION_UPSERT_SQL("function_package_daily", "day", "(to_timestamp(x.t) AT TIME ZONE 'UTC')::date",
                                   "true"),
               err, err_size) < 0)
        goto out;
    /* the hours readers no longer take (an index range: nothing to do most of the time) */
    PGresult *res = csa_db_exec(
        conn, "DELETE FROM function_package_hourly WHERE hour < csa_function_package_hours_from()", 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, err_size, "package rollups: %s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        goto out;
    }
    PQclear(res);
    rc = 0;
out:
    groups_free(&hourly);
    groups_free(&daily);
    groups_free(&fn_hourly);
    groups_free(&fn_daily);
    return rc;
}
