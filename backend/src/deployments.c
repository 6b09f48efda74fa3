/* deployments.c: see deployments.h. */
#include "deployments.h"

#include "compare.h"
#include "db.h"
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

static json_t *col_num(const PGresult *res, int row, int col, double scale)
{
    return PQgetisnull(res, row, col) ? json_null() : num(strtod(PQgetvalue(res, row, col), NULL), scale);
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

csa_status csa_deployments_list(PGconn *conn, const csa_prices *prices, const char *project_id, const char *function_id,
                                json_t **out, char *detail)
{
    char name[1100];
    csa_status st = check_function(conn, project_id, function_id, name, sizeof name, detail);
    if (st != CSA_OK)
        return st;
    char limit[16], x86[32], arm[32];
    snprintf(limit, sizeof limit, "%d", CSA_DEPLOYMENTS_PAGE);
    csa_prices_params(prices, x86, arm);
    const char *params[] = {function_id, project_id, limit, x86, arm};
    /* clang-format off */
    PGresult *res = csa_db_exec(
        conn,
        "SELECT d.deployment, d.code_id, d.function_version, " TS_UTC("d.first_seen_at") ", " TS_UTC("d.last_seen_at") ","
        "  s.cold_starts, s.on_demand, s.proactive, s.provisioned, s.p50, s.p95, s.runtime, s.memory, s.arch, s.cost,"
        "  s.proactive_cost, extract(epoch FROM d.last_seen_at - d.first_seen_at)"
        " FROM functions f JOIN function_deployments d ON d.function_id = f.id"
        " LEFT JOIN LATERAL ("
        "   SELECT count(*) AS cold_starts, count(*) FILTER (WHERE " REAL_COLD ") AS on_demand,"
        "     count(*) FILTER (WHERE i.start_kind = 'proactive') AS proactive,"
        "     count(*) FILTER (WHERE i.start_kind = 'provisioned') AS provisioned,"
        "     percentile_cont(0.5) WITHIN GROUP (ORDER BY i.init_duration_ms) FILTER (WHERE " REAL_COLD ") AS p50,"
        "     percentile_cont(0.95) WITHIN GROUP (ORDER BY i.init_duration_ms) FILTER (WHERE " REAL_COLD ") AS p95,"
        "     mode() WITHIN GROUP (ORDER BY i.runtime_version) AS runtime,"
        "     mode() WITHIN GROUP (ORDER BY i.memory_allocated_mb) AS memory,"
        "     mode() WITHIN GROUP (ORDER BY i.architecture) AS arch,"
        "     sum(" CSA_INIT_COST_SQL("i", "f", "$4", "$5") ") FILTER (WHERE " REAL_COLD ") AS cost,"
        "     sum(" CSA_INIT_COST_SQL("i", "f", "$4", "$5") ") FILTER (WHERE i.start_kind = 'proactive') AS proactive_cost"
        "   FROM invocations i"
        "   WHERE i.function_id = f.id AND i.cold_start AND " DEPLOYMENT_OF("i") " = d.deployment"
        " ) s ON true"
        " WHERE f.id = $1 AND f.project_id = $2"
        " ORDER BY d.first_seen_at DESC, d.deployment LIMIT $3::int",
        5, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "deployments", detail);
    json_t *list = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *d = json_object();
        json_object_set_new(d, "deployment", col_str(res, r, 0));
        json_object_set_new(d, "code_id", col_str(res, r, 1));
        json_object_set_new(d, "function_version", col_str(res, r, 2));
        json_object_set_new(d, "first_seen_at", col_str(res, r, 3));
        json_object_set_new(d, "last_seen_at", col_str(res, r, 4));
        json_object_set_new(d, "cold_starts", col_int(res, r, 5));
        json_object_set_new(d, "on_demand_cold_starts", col_int(res, r, 6));
        json_object_set_new(d, "proactive_inits", col_int(res, r, 7));
        json_object_set_new(d, "provisioned_inits", col_int(res, r, 8));
        json_object_set_new(d, "init_p50_ms", col_num(res, r, 9, 100));
        json_object_set_new(d, "init_p95_ms", col_num(res, r, 10, 100));
        json_object_set_new(d, "runtime", col_str(res, r, 11));
        json_object_set_new(d, "memory_mb", col_int(res, r, 12));
        json_object_set_new(d, "architecture", col_str(res, r, 13));
        double cost = PQgetisnull(res, r, 14) ? 0 : strtod(PQgetvalue(res, r, 14), NULL);
        double proactive = PQgetisnull(res, r, 15) ? 0 : strtod(PQgetvalue(res, r, 15), NULL);
        /* the rate while the deployment ran, first to last seen */
        double span = strtod(PQgetvalue(res, r, 16), NULL);
        json_object_set_new(d, "init_cost_usd", csa_usd_json(cost));
        json_object_set_new(d, "init_cost_usd_per_month", csa_usd_json(csa_cost_per_month(cost, span)));
        json_object_set_new(d, "proactive_init_cost_usd", csa_usd_json(proactive));
        json_array_append_new(list, d);
    }
    PQclear(res);
    *out = json_pack("{s:s, s:s, s:o, s:o, s:s}", "function_id", function_id, "function_name", name, "deployments",
                     list, "prices_per_gb_second", csa_prices_json(prices), "init_cost_counts",
                     "on-demand cold starts over the deployment's life; proactive inits (billed too, but no request "
                     "waits) apart in proactive_init_cost_usd; provisioned inits are paid by provisioned concurrency "
                     "and not estimated");
    return CSA_OK;
}

/* ---- compare ------------------------------------------------------------------------------- */

typedef struct side {
    char id[CSA_DEPLOYMENT_ID_MAX + 1];
    json_t *info; /* deployment, code_id, function_version, first/last seen */
    double *init; /* init durations of on-demand cold starts, newest first */
    size_t n;
    json_t *packages; /* name -> {"ms": median self time, "seen": cold starts} */
    json_t *versions; /* name -> version, from the newest module tree */
    size_t package_samples;
} side;

static void side_free(side *s)
{
    json_decref(s->info);
    free(s->init);
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

static csa_status read_side(PGconn *conn, const char *function_id, side *s, char *detail)
{
    char limit[16], package_limit[16];
    snprintf(limit, sizeof limit, "%d", CSA_DEPLOYMENT_MAX_SAMPLES);
    snprintf(package_limit, sizeof package_limit, "%d", CSA_DEPLOYMENT_PACKAGE_SAMPLES);
    const char *params[] = {function_id, s->id, limit};
    /* clang-format off */
    PGresult *res = csa_db_exec(conn,
                                "SELECT i.init_duration_ms FROM invocations i"
                                " WHERE i.function_id = $1 AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
                                "   AND " REAL_COLD " AND i.init_duration_ms IS NOT NULL"
                                " ORDER BY i.\"timestamp\" DESC LIMIT $3::int",
                                3, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare samples", detail);
    s->n = (size_t)PQntuples(res);
    s->init = malloc((s->n ? s->n : 1) * sizeof *s->init);
    if (!s->init) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        return CSA_ERR_INTERNAL;
    }
    for (size_t k = 0; k < s->n; k++)
        s->init[k] = strtod(PQgetvalue(res, (int)k, 0), NULL);
    PQclear(res);

    const char *pparams[] = {function_id, s->id, package_limit};
    /* clang-format off */
    res = csa_db_exec(conn,
                      "WITH s AS (SELECT i.module_timings FROM invocations i"
                      "  WHERE i.function_id = $1 AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
                      "    AND " REAL_COLD " AND i.module_timings IS NOT NULL"
                      "  ORDER BY i.\"timestamp\" DESC LIMIT $3::int)"
                      " SELECT e.key, percentile_cont(0.5) WITHIN GROUP (ORDER BY e.value::float8), count(*),"
                      "   (SELECT count(*) FROM s)"
                      " FROM s, jsonb_each_text(s.module_timings) e GROUP BY e.key",
                      3, pparams);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare packages", detail);
    s->packages = json_object();
    for (int r = 0; r < PQntuples(res); r++) {
        json_object_set_new(s->packages, PQgetvalue(res, r, 0),
                            json_pack("{s:f, s:I}", "ms", strtod(PQgetvalue(res, r, 1), NULL), "seen",
                                      (json_int_t)strtoll(PQgetvalue(res, r, 2), NULL, 10)));
        s->package_samples = (size_t)strtoull(PQgetvalue(res, r, 3), NULL, 10);
    }
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

/* One side's init cost (cost.h), read apart from the statistics above. */
typedef struct side_cost {
    double usd;          /* init cost of the deployment's on-demand cold starts, over its life */
    long long n;         /* those cold starts (with an init duration) */
    double span_seconds; /* first to last seen */
    json_t *packages;    /* name -> dollars per cold start: self time x memory x price, summed over the
                          * newest CSA_DEPLOYMENT_PACKAGE_SAMPLES cold starts with module timings and
                          * divided by their number (a package loaded by half of them counts half) */
} side_cost;

static csa_status read_side_cost(PGconn *conn, const csa_prices *prices, const char *function_id, const char *id,
                                 side_cost *c, char *detail)
{
    char x86[32], arm[32], package_limit[16];
    csa_prices_params(prices, x86, arm);
    snprintf(package_limit, sizeof package_limit, "%d", CSA_DEPLOYMENT_PACKAGE_SAMPLES);
    const char *params[] = {function_id, id, x86, arm};
    /* clang-format off */
    PGresult *res = csa_db_exec(conn,
                                "SELECT count(*), coalesce(sum(" CSA_INIT_COST_SQL("i", "f", "$3", "$4") "), 0),"
                                "  (SELECT extract(epoch FROM d.last_seen_at - d.first_seen_at) FROM function_deployments d"
                                "    WHERE d.function_id = $1 AND d.deployment = $2)"
                                " FROM invocations i JOIN functions f ON f.id = i.function_id"
                                " WHERE i.function_id = $1 AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
                                "   AND " REAL_COLD " AND i.init_duration_ms IS NOT NULL",
                                4, params);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare cost", detail);
    c->n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    c->usd = strtod(PQgetvalue(res, 0, 1), NULL);
    c->span_seconds = PQgetisnull(res, 0, 2) ? 0 : strtod(PQgetvalue(res, 0, 2), NULL);
    PQclear(res);

    const char *pparams[] = {function_id, id, package_limit, x86, arm};
    /* clang-format off */
    res = csa_db_exec(conn,
                      "WITH s AS (SELECT i.module_timings, " CSA_USD_PER_INIT_MS_SQL("i", "f", "$4", "$5") " AS usd_per_ms"
                      "  FROM invocations i JOIN functions f ON f.id = i.function_id"
                      "  WHERE i.function_id = $1 AND i.cold_start AND " DEPLOYMENT_OF("i") " = $2"
                      "    AND " REAL_COLD " AND i.module_timings IS NOT NULL"
                      "  ORDER BY i.\"timestamp\" DESC LIMIT $3::int)"
                      " SELECT e.key, sum(e.value::float8 * s.usd_per_ms) / (SELECT count(*) FROM s)"
                      " FROM s, jsonb_each_text(s.module_timings) e GROUP BY e.key",
                      5, pparams);
    /* clang-format on */
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "compare package cost", detail);
    c->packages = json_object();
    for (int r = 0; r < PQntuples(res); r++)
        json_object_set_new(c->packages, PQgetvalue(res, r, 0), json_real(strtod(PQgetvalue(res, r, 1), NULL)));
    PQclear(res);
    return CSA_OK;
}

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
             "newest %d cold starts with module timings, divided by their number.",
             CSA_DEPLOYMENT_PACKAGE_SAMPLES);
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
    for (int k = 0; k < 2 && st == CSA_OK; k++)
        st = read_side(conn, function_id, &sides[k], detail);
    side_cost costs[2];
    memset(costs, 0, sizeof costs);
    for (int k = 0; k < 2 && st == CSA_OK; k++)
        st = read_side_cost(conn, prices, function_id, sides[k].id, &costs[k], detail);
    csa_comparison c;
    if (st == CSA_OK && csa_compare_samples(sides[0].init, sides[0].n, sides[1].init, sides[1].n, &c) < 0) {
        snprintf(detail, CSA_DETAIL_MAX, "Out of memory");
        st = CSA_ERR_INTERNAL;
    }
    if (st != CSA_OK)
        goto out;
    csa_quantile p50[2] = {c.base_p50, c.head_p50}, p95[2] = {c.base_p95, c.head_p95};
    for (int k = 0; k < 2; k++) {
        json_object_set_new(sides[k].info, "cold_starts", json_integer((json_int_t)sides[k].n));
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
    char method[400];
    snprintf(method, sizeof method,
             "Two-sided Mann-Whitney U test on the init durations of on-demand cold starts (the newest %d of each "
             "deployment); a change needs p < %g and a median change of at least %g %% and %g ms; fewer than %d "
             "cold starts on either side is not enough data. Intervals: 95 %% distribution-free (order statistics).",
             CSA_DEPLOYMENT_MAX_SAMPLES, CSA_COMPARE_ALPHA, CSA_COMPARE_MIN_RELATIVE * 100, CSA_COMPARE_MIN_ABS_MS,
             CSA_COMPARE_MIN_SAMPLES);
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
