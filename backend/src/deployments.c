/* deployments.c: see deployments.h. */
#include "deployments.h"

#include "compare.h"
#include "day_sketches.h"
#include "db.h"
#include "log.h"
#include "queries.h"
#include "uuid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define REAL_COLD "(i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')"
#define DEPLOYMENT_OF(i) "coalesce(" i ".code_id, 'version:' || " i ".function_version)"
#define MAX_DEPLOYMENTS_RESOLVED 1000 /* deployments searched for base/head */
#define TREE_MAX_DEPTH 32
/* a cold-start row's columns padded with the (null) columns of a day row (csa_day_stats_add_stored) */
#define NO_DAY_COLUMNS \
    "NULL::bigint, NULL::bigint, NULL::bigint, NULL::float8, NULL::bytea, NULL::float8, NULL::float8," \
    " NULL::float8, NULL::float8, NULL::bigint, NULL::float8, NULL::bigint, NULL::bytea"

static csa_status db_failed(PGconn *conn, PGresult *res, const char *what, char *detail)
{
    csa_status st = csa_db_failure(conn, res, what, detail, CSA_DETAIL_MAX);
    PQclear(res);
    return st;
}

/* A number rounded to 2 decimals (6 for dollars: see money); not finite -> null. */
static json_t *num(double v, double scale)
{
    if (!isfinite(v))
        return json_null();
    double r = round(v * scale) / scale;
    if (r == floor(r) && fabs(r) < 9e15)
        return json_integer((json_int_t)r);
    return json_real(r);
}

static json_t *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *col_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* 404 unless the function exists in the project. */
static csa_status check_function(PGconn *conn, const char *project_id, const char *function_id, char *function_name,
                                 size_t name_size, char *detail)
{
    if (!csa_is_uuid(function_id)) {
        snprintf(detail, CSA_DETAIL_MAX, "Function not found");
        return CSA_ERR_NOT_FOUND;
    }
    const char *params[] = {function_id, project_id};
    PGresult *res = csa_db_exec(conn, "SELECT function_name FROM functions WHERE id = $1 AND project_id = $2", 2,
                                params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "function lookup", detail);
    if (PQntuples(res) == 0) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "Function not found");
        return CSA_ERR_NOT_FOUND;
    }
    snprintf(function_name, name_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return CSA_OK;
}

/* The figures of one listed deployment: its folded days and the rows not folded yet (queued or
 * incomplete: exact), kept apart so that percentiles stay exact when no day was folded. */
typedef struct deployment_figures {
    csa_day_stats days, rows;
    double *init; /* the rows' on-demand init durations */
    size_t n_init, cap_init;
} deployment_figures;

typedef struct figures_read {
    deployment_figures *figs;
    char **ids; /* the listed deployments, in the order of figs */
    int n;
    int failed;
} figures_read;

static int figures_row(const PGresult *row, void *arg)
{
    figures_read *fr = arg;
    const char *id = PQgetvalue(row, 0, 1);
    int k = 0;
    while (k < fr->n && strcmp(fr->ids[k], id) != 0)
        k++;
    if (k == fr->n)
        return 0;
    deployment_figures *d = &fr->figs[k];
    if (PQgetvalue(row, 0, 0)[0] == 'd') {
        if (csa_day_stats_add_stored(&d->days, row, 0, 2 + 6) < 0)
            fr->failed = 1;
        return fr->failed;
    }
    csa_cold_row r;
    csa__cold_row_from(row, 0, 2, &r);
    r.modules = NULL; /* the list shows no packages */
    if (csa_day_stats_add_row(&d->rows, &r) < 0)
        fr->failed = 1;
    if (r.kind == 'c' && r.has_init) {
        if (d->n_init == d->cap_init) {
            size_t cap = d->cap_init ? 2 * d->cap_init : 64;
            double *v = realloc(d->init, cap * sizeof *v);
            if (!v) {
                fr->failed = 1;
                return 1;
            }
            d->init = v;
            d->cap_init = cap;
        }
        d->init[d->n_init++] = r.init_ms;
    }
    return fr->failed;
}

/* Init p50 and p95 of a deployment: from its day sketch with the other rows added, else exact. */
static void deployment_percentiles(deployment_figures *d, double *p50, double *p95)
{
    *p50 = *p95 = NAN;
    if (d->days.init.count > 0) {
        csa_sketch merged;
        csa_sketch_init(&merged);
        int ok = csa_sketch_merge(&merged, &d->days.init) == 0;
        for (size_t k = 0; ok && k < d->n_init; k++)
            ok = csa_sketch_add(&merged, d->init[k]) == 0;
        if (ok) {
            *p50 = csa_sketch_quantile(&merged, 0.5);
            *p95 = csa_sketch_quantile(&merged, 0.95);
        }
        csa_sketch_free(&merged);
    } else if (d->n_init > 0) {
        csa_sort_doubles(d->init, d->n_init);
        *p50 = csa_percentile_sorted(d->init, d->n_init, 0.5);
        *p95 = csa_percentile_sorted(d->init, d->n_init, 0.95);
    }
}

/* The ids as a PostgreSQL text[] literal (ids are printable: quotes and backslashes escaped). */
static char *text_array(char **ids, int n)
{
    size_t size = 3;
    for (int k = 0; k < n; k++)
        size += 2 * strlen(ids[k]) + 3;
    char *out = malloc(size), *p = out;
    if (!out)
        return NULL;
    *p++ = '{';
    for (int k = 0; k < n; k++) {
        if (k)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = ids[k]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

csa_status csa_deployments_list(PGconn *conn, const csa_prices *prices, const char *project_id, const char *function_id,
                                json_t **out, char *detail)
{
    char name[1100];
    csa_status st = check_function(conn, project_id, function_id, name, sizeof name, detail);
    if (st != CSA_OK)
        return st;
    char limit[16], modes[16];
    snprintf(limit, sizeof limit, "%d", CSA_DEPLOYMENTS_PAGE);
    snprintf(modes, sizeof modes, "%d", CSA_DEPLOYMENT_MODE_SAMPLES);
    const char *params[] = {function_id, project_id, limit, modes};
    /* the deployments, with the most common runtime, memory and architecture of their newest $4
     * cold starts of the last day they were seen (an index range per deployment) */
    /* clang-format off */
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_deployments_list",
        "SELECT d.deployment, d.code_id, d.function_version, " TS_UTC("d.first_seen_at") ", " TS_UTC("d.last_seen_at") ","
        "  m.runtime, m.memory, m.arch, extract(epoch FROM d.last_seen_at - d.first_seen_at)"
        " FROM functions f JOIN function_deployments d ON d.function_id = f.id"
        " LEFT JOIN LATERAL ("
        "   SELECT mode() WITHIN GROUP (ORDER BY x.runtime_version) AS runtime,"
        "     mode() WITHIN GROUP (ORDER BY x.memory_allocated_mb) AS memory,"
        "     mode() WITHIN GROUP (ORDER BY x.architecture) AS arch"
        "   FROM (SELECT i.runtime_version, i.memory_allocated_mb, i.architecture FROM invocations i"
        "     WHERE i.function_id = f.id AND i.cold_start AND " DEPLOYMENT_OF("i") " = d.deployment"
        "       AND i.\"timestamp\" >= d.last_seen_at - interval '1 day'"
        "     ORDER BY i.\"timestamp\" DESC LIMIT $4::int) x"
        " ) m ON true"
        " WHERE f.id = $1::uuid AND f.project_id = $2::uuid"
        " ORDER BY d.first_seen_at DESC, d.deployment LIMIT $3::int",
        4, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "deployments", detail);
    int n = PQntuples(res);
    figures_read fr = {.n = n};
    fr.figs = calloc((size_t)(n ? n : 1), sizeof *fr.figs);
    fr.ids = calloc((size_t)(n ? n : 1), sizeof *fr.ids);
    char *ids = NULL;
    PGresult *figs = NULL;
    if (!fr.figs || !fr.ids) {
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        st = CSA_ERR_INTERNAL;
        goto out;
    }
    for (int r = 0; r < n; r++) {
        csa_day_stats_init(&fr.figs[r].days);
        csa_day_stats_init(&fr.figs[r].rows);
        fr.ids[r] = PQgetvalue(res, r, 0);
    }
    ids = text_array(fr.ids, n);
    if (!ids) {
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        st = CSA_ERR_INTERNAL;
        goto out;
    }
    /* their figures in one statement (one snapshot: a fold moves rows from the queue into the
     * sketches): the day sketches (migrations/006) of their whole life, and the cold starts not
     * in them yet, queued or incomplete, read exactly */
    const char *fparams[] = {function_id, project_id, ids};
    int stopped = 0;
    /* clang-format off */
    figs = csa_db_stream_prepared(
        conn, "csa_deployment_figures",
        "SELECT 'd', s.deployment, NULL::text, NULL::int, NULL::float8, NULL::bool, NULL::float8, NULL::text, "
        CSA_DAY_SKETCH_COLUMNS_BUT_MODULES ", NULL::bytea"
        " FROM function_day_sketches s"
        " WHERE s.function_id = $1::uuid AND s.project_id = $2::uuid AND s.deployment = ANY ($3::text[])"
        " UNION ALL"
        " SELECT 'r', " DEPLOYMENT_OF("i") ", " CSA_COLD_ROW_COLUMNS("i", "f") ", " NO_DAY_COLUMNS
        " FROM function_day_sketch_pending p JOIN invocations i ON i.id = p.id AND i.timestamp = p.timestamp"
        " JOIN functions f ON f.id = i.function_id"
        " WHERE p.function_id = $1::uuid AND i.project_id = $2::uuid AND i.cold_start"
        "   AND " DEPLOYMENT_OF("i") " = ANY ($3::text[])"
        " UNION ALL"
        " SELECT 'r', " DEPLOYMENT_OF("i") ", " CSA_COLD_ROW_COLUMNS("i", "f") ", " NO_DAY_COLUMNS
        " FROM invocations i JOIN functions f ON f.id = i.function_id"
        " WHERE i.function_id = $1::uuid AND i.project_id = $2::uuid AND i.cold_start"
        "   AND i.execution_duration_ms IS NULL AND " DEPLOYMENT_OF("i") " = ANY ($3::text[])",
        3, fparams, figures_row, &fr, &stopped);
    /* clang-format on */
    if (PQresultStatus(figs) != PGRES_TUPLES_OK) {
        st = csa_db_failure(conn, figs, "deployment figures", detail, CSA_DETAIL_MAX);
        goto out;
    }
    if (fr.failed) {
        csa_logf(CSA_LOG_ERROR, "deployments: function %s: a day sketch that cannot be decoded, or out of memory",
                 function_id);
        snprintf(detail, CSA_DETAIL_MAX, "The query failed.");
        st = CSA_ERR_INTERNAL;
        goto out;
    }
    json_t *list = json_array();
    for (int r = 0; r < n; r++) {
        deployment_figures *f = &fr.figs[r];
        csa_day_stats *a = &f->days, *b = &f->rows;
        long long on_demand = a->cold + b->cold, proactive = a->proactive + b->proactive;
        long long provisioned = a->provisioned + b->provisioned;
        long long all = on_demand + proactive + provisioned + a->other + b->other;
        double p50, p95;
        deployment_percentiles(f, &p50, &p95);
        double cost = (a->init_gb_s[CSA_ARCH_X86_64] + b->init_gb_s[CSA_ARCH_X86_64]) * prices->x86_64 +
                      (a->init_gb_s[CSA_ARCH_ARM64] + b->init_gb_s[CSA_ARCH_ARM64]) * prices->arm64;
        double proactive_cost = (a->proactive_gb_s[CSA_ARCH_X86_64] + b->proactive_gb_s[CSA_ARCH_X86_64]) *
                                    prices->x86_64 +
                                (a->proactive_gb_s[CSA_ARCH_ARM64] + b->proactive_gb_s[CSA_ARCH_ARM64]) * prices->arm64;
        json_t *d = json_object();
        json_object_set_new(d, "deployment", col_str(res, r, 0));
        json_object_set_new(d, "code_id", col_str(res, r, 1));
        json_object_set_new(d, "function_version", col_str(res, r, 2));
        json_object_set_new(d, "first_seen_at", col_str(res, r, 3));
        json_object_set_new(d, "last_seen_at", col_str(res, r, 4));
        json_object_set_new(d, "cold_starts", json_integer(all));
        json_object_set_new(d, "on_demand_cold_starts", json_integer(on_demand));
        json_object_set_new(d, "proactive_inits", json_integer(proactive));
        json_object_set_new(d, "provisioned_inits", json_integer(provisioned));
        json_object_set_new(d, "init_p50_ms", num(p50, 100));
        json_object_set_new(d, "init_p95_ms", num(p95, 100));
        json_object_set_new(d, "runtime", col_str(res, r, 5));
        json_object_set_new(d, "memory_mb", col_int(res, r, 6));
        json_object_set_new(d, "architecture", col_str(res, r, 7));
        /* the rate while the deployment ran, first to last seen */
        double span = strtod(PQgetvalue(res, r, 8), NULL);
        json_object_set_new(d, "init_cost_usd", csa_usd_json(cost));
        json_object_set_new(d, "init_cost_usd_per_month", csa_usd_json(csa_cost_per_month(cost, span)));
        json_object_set_new(d, "proactive_init_cost_usd", csa_usd_json(proactive_cost));
        json_array_append_new(list, d);
    }
    *out = json_pack("{s:s, s:s, s:o, s:o, s:s}", "function_id", function_id, "function_name", name, "deployments",
                     list, "prices_per_gb_second", csa_prices_json(prices), "init_cost_counts",
                     "on-demand cold starts over the deployment's life; proactive inits (billed too, but no request "
                     "waits) apart in proactive_init_cost_usd; provisioned inits are paid by provisioned concurrency "
                     "and not estimated");
out:
    for (int r = 0; fr.figs && r < n; r++) {
        csa_day_stats_free(&fr.figs[r].days);
        csa_day_stats_free(&fr.figs[r].rows);
        free(fr.figs[r].init);
    }
    free(fr.figs);
    free(fr.ids);
    free(ids);
    PQclear(figs);
    PQclear(res);
    return st;
}

/* ---- compare ------------------------------------------------------------------------------- */

/* One side's init cost (cost.h), from the same day sketches and rows as its package medians. */
typedef struct side_cost {
    double usd;          /* init cost of the deployment's on-demand cold starts, over its life */
    long long n;         /* those cold starts (with an init duration) */
    double span_seconds; /* first to last seen */
    json_t *packages;    /* name -> dollars per cold start: self time x memory x price, summed over the
                          * deployment's on-demand cold starts with module timings and divided by their
                          * number (a package loaded by half of them counts half) */
} side_cost;

typedef struct side {
    char id[CSA_DEPLOYMENT_ID_MAX + 1];
    json_t *info; /* deployment, code_id, function_version, first/last seen */
    double *init; /* init durations of on-demand cold starts not in a day sketch (exact) */
    size_t n, cap;
    csa_sketch sketch; /* all its on-demand init durations: day sketches and the rows above */
    int sketched;      /* a day sketch took part: the comparison reads the sketch */
    json_t *packages;  /* name -> {"ms": median self time, "seen": cold starts} */
    json_t *versions;  /* name -> version, from the newest module tree */
} side;

/* The per-package read of one side: day rows ('d') and cold-start rows ('r') into one csa_day_stats. */
typedef struct package_read {
    csa_day_stats *days;
    side *s; /* its init durations read row by row, and whether a day row was read */
    int failed;
} package_read;

static int package_row(const PGresult *row, void *arg)
{
    package_read *pr = arg;
    if (PQgetvalue(row, 0, 0)[0] == 'd') {
        pr->s->sketched = 1;
        if (csa_day_stats_add_stored(pr->days, row, 0, 1 + 6) < 0)
            pr->failed = 1;
        return pr->failed;
    }
    csa_cold_row r;
    csa__cold_row_from(row, 0, 1, &r);
    if (csa_day_stats_add_row(pr->days, &r) < 0)
        pr->failed = 1;
    side *s = pr->s;
    if (!pr->failed && r.kind == 'c' && r.has_init) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 64;
            double *v = realloc(s->init, cap * sizeof *v);
            if (!v) {
                pr->failed = 1;
                return 1;
            }
            s->init = v;
            s->cap = cap;
        }
        s->init[s->n++] = r.init_ms;
    }
    return pr->failed;
}

static void side_free(side *s)
{
    json_decref(s->info);
    free(s->init);
    csa_sketch_free(&s->sketch);
    json_decref(s->packages);
    json_decref(s->versions);
}

/* The versions in a module tree ({"children": [{"name", "version", "children"}]}). */
static void collect_versions(json_t *node, json_t *versions, int depth)
{
    if (depth > TREE_MAX_DEPTH || !json_is_object(node))
        return;
    json_t *children = json_object_get(node, "children");
    size_t i;
    json_t *child;
    json_array_foreach(children, i, child) {
        json_t *name = json_object_get(child, "name"), *version = json_object_get(child, "version");
        if (json_is_string(name) && json_is_string(version) && !json_object_get(versions, json_string_value(name)))
            json_object_set(versions, json_string_value(name), version);
        collect_versions(child, versions, depth + 1);
    }
}

static csa_status read_side(PGconn *conn, const csa_prices *prices, const char *function_id, side *s, side_cost *c,
                            char *detail)
{
    /* its init durations and, per package, the median self time over the deployment's whole
     * life: its day sketches (migrations/006) and its cold starts not folded yet, in one statement
     * (one snapshot) */
    const char *pparams[] = {function_id, s->id};
    csa_day_stats days;
    csa_day_stats_init(&days);
    package_read pr = {&days, s, 0};
    int stopped = 0;
    PGresult *res;
    /* clang-format off */
    res = csa_db_stream_prepared(
        conn, "csa_compare_packages",
        "SELECT 'd', NULL::text, NULL::int, NULL::float8, NULL::bool, NULL::float8, NULL::text, " CSA_DAY_SKETCH_COLUMNS
        " FROM function_day_sketches s WHERE s.function_id = $1::uuid AND s.deployment = $2"
        " UNION ALL"
        " SELECT 'r', " CSA_COLD_ROW_COLUMNS("i", "f") ", " NO_DAY_COLUMNS
        " FROM function_day_sketch_pending p JOIN invocations i ON i.id = p.id AND i.timestamp = p.timestamp"
        " JOIN functions f ON f.id = i.function_id"
        " WHERE p.function_id = $1::uuid AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
        " UNION ALL"
        " SELECT 'r', " CSA_COLD_ROW_COLUMNS("i", "f") ", " NO_DAY_COLUMNS
        " FROM invocations i JOIN functions f ON f.id = i.function_id"
        " WHERE i.function_id = $1::uuid AND i.cold_start AND i.execution_duration_ms IS NULL"
        "   AND " DEPLOYMENT_OF("i") " = $2",
        2, pparams, package_row, &pr, &stopped);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        csa_day_stats_free(&days);
        return db_failed(conn, res, "compare packages", detail);
    }
    PQclear(res);
    if (pr.failed) {
        csa_day_stats_free(&days);
        csa_logf(CSA_LOG_ERROR, "compare: function %s: a day sketch that cannot be decoded, or out of memory",
                 function_id);
        snprintf(detail, CSA_DETAIL_MAX, "The query failed.");
        return CSA_ERR_INTERNAL;
    }
    if (csa_sketch_merge(&s->sketch, &days.init) < 0) {
        csa_day_stats_free(&days);
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        return CSA_ERR_INTERNAL;
    }
    s->packages = json_object();
    for (size_t k = 0; k < days.packages.n; k++) {
        const csa_package_stat *p = &days.packages.items[k];
        json_object_set_new(
            s->packages, p->name,
            json_pack("{s:f, s:I}", "ms", csa_sketch_quantile(&p->sketch, 0.5), "seen", (json_int_t)p->n));
    }
    /* its init cost from the same snapshot: the sums of init and self GB-seconds by architecture */
    c->n = (long long)days.init.count;
    c->usd = days.init_gb_s[CSA_ARCH_X86_64] * prices->x86_64 + days.init_gb_s[CSA_ARCH_ARM64] * prices->arm64;
    c->packages = json_object();
    for (size_t k = 0; k < days.packages.n && days.module_rows > 0; k++) {
        const csa_package_stat *p = &days.packages.items[k];
        double usd = p->gb_s[CSA_ARCH_X86_64] * prices->x86_64 + p->gb_s[CSA_ARCH_ARM64] * prices->arm64;
        json_object_set_new(c->packages, p->name, json_real(usd / (double)days.module_rows));
    }
    csa_day_stats_free(&days);
    const char *sparams[] = {function_id, s->id};
    res = csa_db_exec(conn,
                      "SELECT extract(epoch FROM last_seen_at - first_seen_at) FROM function_deployments"
                      " WHERE function_id = $1 AND deployment = $2",
                      2, sparams);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare span", detail);
    c->span_seconds = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
    PQclear(res);

    const char *tparams[] = {function_id, s->id};
    /* clang-format off */
    res = csa_db_exec(conn,
                      "SELECT i.module_tree FROM invocations i"
                      " WHERE i.function_id = $1 AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
                      "   AND i.module_tree IS NOT NULL AND i.execution_duration_ms IS NOT NULL"
                      " ORDER BY i.\"timestamp\" DESC LIMIT 1",
                      2, tparams);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare versions", detail);
    s->versions = json_object();
    if (PQntuples(res) == 1) {
        json_t *tree = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        collect_versions(tree, s->versions, 0);
        json_decref(tree);
    }
    PQclear(res);
    return CSA_OK;
}

static json_t *quantile_json(csa_quantile q)
{
    return json_pack("{s:o, s:[o, o]}", "value", num(q.value, 100), "interval", num(q.low, 100), num(q.high, 100));
}

static int cmp_change(const void *x, const void *y)
{
    double a = fabs(json_real_value(json_object_get(*(json_t *const *)x, "sort")));
    double b = fabs(json_real_value(json_object_get(*(json_t *const *)y, "sort")));
    return a < b ? 1 : a > b ? -1 : 0;
}

/* Per package: the median self time on each side, the change, the versions; ranked by the size
 * of the change. Also fills "added" and "removed". */
static json_t *package_changes(const side *base, const side *head)
{
    json_t *names = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(base->packages, key, v)
        json_object_set_new(names, key, json_true());
    json_object_foreach(head->packages, key, v)
        json_object_set_new(names, key, json_true());
    size_t n = json_object_size(names), k = 0;
    json_t **items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        json_decref(names);
        return json_array();
    }
    json_object_foreach(names, key, v) {
        json_t *b = json_object_get(base->packages, key), *h = json_object_get(head->packages, key);
        double bms = b ? json_real_value(json_object_get(b, "ms")) : 0;
        double hms = h ? json_real_value(json_object_get(h, "ms")) : 0;
        json_t *bv = json_object_get(base->versions, key), *hv = json_object_get(head->versions, key);
        const char *status = !b ? "added" : !h ? "removed" : "changed";
        char text[600];
        char versions[300] = "";
        if (bv && hv && !json_equal(bv, hv))
            snprintf(versions, sizeof versions, " %s -> %s", json_string_value(bv), json_string_value(hv));
        else if (hv && !b)
            snprintf(versions, sizeof versions, " %s", json_string_value(hv));
        else if (bv && !h)
            snprintf(versions, sizeof versions, " %s", json_string_value(bv));
        else if (hv)
            snprintf(versions, sizeof versions, " %s", json_string_value(hv));
        snprintf(text, sizeof text, "%.200s%s: %+.1f ms%s", key, versions, hms - bms,
                 !b   ? " (added)"
                 : !h ? " (removed)"
                      : "");
        items[k++] = json_pack("{s:s, s:s, s:O?, s:O?, s:o, s:o, s:o, s:s, s:f}", "package", key, "status", status,
                               "base_version", bv, "head_version", hv, "base_self_ms", b ? num(bms, 100) : json_null(),
                               "head_self_ms", h ? num(hms, 100) : json_null(), "change_ms", num(hms - bms, 100),
                               "summary", text, "sort", hms - bms);
    }
    json_decref(names);
    qsort(items, k, sizeof *items, cmp_change);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++) {
        json_object_del(items[i], "sort");
        json_array_append_new(out, items[i]);
    }
    free(items);
    return out;
}

/* ---- compare: what the change costs ---------------------------------------------------------- */

/* Dollars per cold start of one package on one side: null when the side does not have it. */
static json_t *package_usd(const side_cost *c, const char *package, double *usd)
{
    json_t *v = json_object_get(c->packages, package);
    *usd = v ? json_real_value(v) : 0;
    return v ? csa_usd_json(*usd) : json_null();
}

/* The comparison's "init_cost", and each package's share of it (fields added to the entries of
 * packages): the change per cold start, and per month at the head's rate of cold starts. */
static json_t *cost_changes(const side_cost c[2], json_t *packages)
{
    double base = c[0].n ? c[0].usd / (double)c[0].n : NAN, head = c[1].n ? c[1].usd / (double)c[1].n : NAN;
    /* the head's on-demand cold starts extended to 30 days as its cost is (cost.h) */
    double per_month = csa_cost_per_month((double)c[1].n, c[1].span_seconds);
    size_t i;
    json_t *p;
    json_array_foreach(packages, i, p) {
        const char *name = json_string_value(json_object_get(p, "package"));
        double b, h;
        json_object_set_new(p, "base_init_cost_usd", package_usd(&c[0], name, &b));
        json_object_set_new(p, "head_init_cost_usd", package_usd(&c[1], name, &h));
        json_object_set_new(p, "change_usd_per_cold_start", csa_usd_json(h - b));
        json_object_set_new(p, "change_usd_per_month", csa_usd_json((h - b) * per_month));
    }
    char method[400];
    snprintf(method, sizeof method,
             "Mean init cost per on-demand cold start of each deployment over its life (init s x memory GB x the "
             "price per GB-second of its architecture); per month: the change times the head's cold starts per "
             "30 days (first to last seen, at least an hour). Per package: self time x memory x price over the "
             "deployment's cold starts with module timings, divided by their number.");
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:s}", "base_usd_per_cold_start", csa_usd_json(base),
                     "head_usd_per_cold_start", csa_usd_json(head), "change_usd_per_cold_start",
                     csa_usd_json(head - base), "head_cold_starts_per_month", num(per_month, 100),
                     "change_usd_per_month", csa_usd_json((head - base) * per_month), "method", method);
}

csa_status csa_deployments_compare(PGconn *conn, const csa_prices *prices, const char *project_id,
                                   const char *function_id, const char *base_id, const char *head_id, json_t **out,
                                   char *detail)
{
    char name[1100];
    csa_status st = check_function(conn, project_id, function_id, name, sizeof name, detail);
    if (st != CSA_OK)
        return st;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", MAX_DEPLOYMENTS_RESOLVED);
    const char *params[] = {function_id, limit};
    /* clang-format off */
    PGresult *res = csa_db_exec(conn,
                                "SELECT deployment, code_id, function_version, " TS_UTC("first_seen_at") ","
                                "  " TS_UTC("last_seen_at") " FROM function_deployments WHERE function_id = $1"
                                " ORDER BY first_seen_at DESC, deployment LIMIT $2::int",
                                2, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare deployments", detail);
    int rows = PQntuples(res), head_row = -1, base_row = -1;
    for (int r = 0; r < rows; r++) {
        if (head_id && strcmp(PQgetvalue(res, r, 0), head_id) == 0)
            head_row = r;
        if (base_id && strcmp(PQgetvalue(res, r, 0), base_id) == 0)
            base_row = r;
    }
    if (!head_id)
        head_row = rows > 0 ? 0 : -1;
    if (!base_id && head_row >= 0)
        base_row = head_row + 1 < rows ? head_row + 1 : -1;
    if (head_row < 0 || base_row < 0) {
        PQclear(res);
        if ((head_id && head_row < 0) || (base_id && base_row < 0))
            snprintf(detail, CSA_DETAIL_MAX, "Deployment %.80s not found for this function",
                     head_id && head_row < 0 ? head_id : base_id);
        else
            snprintf(detail, CSA_DETAIL_MAX, "This function has fewer than two deployments to compare");
        return CSA_ERR_NOT_FOUND;
    }
    side sides[2];
    memset(sides, 0, sizeof sides);
    const int rows_of[2] = {base_row, head_row};
    for (int k = 0; k < 2; k++) {
        int r = rows_of[k];
        snprintf(sides[k].id, sizeof sides[k].id, "%s", PQgetvalue(res, r, 0));
        sides[k].info = json_pack("{s:o, s:o, s:o, s:o, s:o}", "deployment", col_str(res, r, 0), "code_id",
                                  col_str(res, r, 1), "function_version", col_str(res, r, 2), "first_seen_at",
                                  col_str(res, r, 3), "last_seen_at", col_str(res, r, 4));
    }
    PQclear(res);
    side_cost costs[2];
    memset(costs, 0, sizeof costs);
    for (int k = 0; k < 2 && st == CSA_OK; k++)
        st = read_side(conn, prices, function_id, &sides[k], &costs[k], detail);
    /* exact on the rows while neither side has a folded day, else on both sides' sketches */
    csa_comparison c;
    int sketched = sides[0].sketched || sides[1].sketched;
    if (st == CSA_OK && sketched)
        csa_compare_sketches(&sides[0].sketch, &sides[1].sketch, &c);
    else if (st == CSA_OK && csa_compare_samples(sides[0].init, sides[0].n, sides[1].init, sides[1].n, &c) < 0) {
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        st = CSA_ERR_INTERNAL;
    }
    if (st != CSA_OK)
        goto out;
    csa_quantile p50[2] = {c.base_p50, c.head_p50}, p95[2] = {c.base_p95, c.head_p95};
    for (int k = 0; k < 2; k++) {
        json_object_set_new(sides[k].info, "cold_starts", json_integer((json_int_t)(k == 0 ? c.n_base : c.n_head)));
        json_object_set_new(sides[k].info, "init_p50_ms", quantile_json(p50[k]));
        json_object_set_new(sides[k].info, "init_p95_ms", quantile_json(p95[k]));
    }
    json_t *packages = package_changes(&sides[0], &sides[1]);
    json_t *added = json_array(), *removed = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(packages, i, p) {
        const char *status = json_string_value(json_object_get(p, "status"));
        if (strcmp(status, "added") == 0)
            json_array_append(added, json_object_get(p, "package"));
        else if (strcmp(status, "removed") == 0)
            json_array_append(removed, json_object_get(p, "package"));
    }
    char method[700];
    snprintf(method, sizeof method,
             "Two-sided Mann-Whitney U test on the init durations of all on-demand cold starts of each "
             "deployment: %s; a change needs p < %g and a median change of at least %g %% and %g ms; fewer "
             "than %d cold starts on either side is not enough data. Intervals: 95 %% distribution-free (order "
             "statistics). Package self times: medians over each deployment's on-demand cold starts, from day "
             "sketches (within 1 %%).",
             sketched ? "read from their day sketches (values within 1 %; one sketch bucket counts as tied values)"
                      : "exact (no day of either deployment folded into a sketch yet)",
             CSA_COMPARE_ALPHA, CSA_COMPARE_MIN_RELATIVE * 100, CSA_COMPARE_MIN_ABS_MS, CSA_COMPARE_MIN_SAMPLES);
    json_t *init_cost = cost_changes(costs, packages);
    *out = json_pack("{s:s, s:s, s:O, s:O, s:s, s:{s:o, s:o, s:o, s:o, s:s}, s:o, s:o, s:o}", "function_id",
                     function_id, "function_name", name, "base", sides[0].info, "head", sides[1].info, "verdict",
                     csa_verdict_name(c.verdict), "test", "median_change_ms", num(c.median_change_ms, 100),
                     "median_change_percent", num(c.median_change_pct, 10), "u", num(c.u, 100), "p_value",
                     isfinite(c.p_value) ? json_real(c.p_value) : json_null(), "method", method, "packages", packages,
                     "added", added, "removed", removed);
    json_object_set_new(*out, "init_cost", init_cost);
out:
    json_decref(costs[0].packages);
    json_decref(costs[1].packages);
    side_free(&sides[0]);
    side_free(&sides[1]);
    return st;
}
