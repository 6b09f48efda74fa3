/* report.c: see report.h. */
#include "report.h"

#include "db.h"
#include "deployments.h"
#include "queries.h"
#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define DEPLOYMENTS_SHOWN 10     /* newest first */
#define PACKAGE_CHANGES_SHOWN 10 /* of the latest comparison, largest first */

static double num(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static void fmt_ms(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (v >= 1000)
        snprintf(buf, size, "%.2f s", v / 1000.0);
    else
        snprintf(buf, size, "%.0f ms", v);
}

/* Dollars with the digits that matter: $1234, $12.34, $0.0123, $0.00047 (two significant digits
 * below a cent). */
static void fmt_usd(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (v == 0)
        snprintf(buf, size, "$0");
    else if (v >= 100)
        snprintf(buf, size, "$%.0f", v);
    else if (v >= 1)
        snprintf(buf, size, "$%.2f", v);
    else if (v >= 0.01)
        snprintf(buf, size, "$%.4f", v);
    else {
        int decimals = (int)ceil(-log10(v)) + 1;
        snprintf(buf, size, "$%.*f", decimals > 9 ? 9 : decimals, v);
    }
}

/* Signed dollars: +$0.35, -$0.0000012. */
static void fmt_usd_change(char *buf, size_t size, double v)
{
    char abs_usd[24]; /* "$" and at most 9 decimals */
    fmt_usd(abs_usd, sizeof abs_usd, fabs(v));
    snprintf(buf, size, "%s%s", isnan(v) ? "" : v < 0 ? "-" : "+", abs_usd);
}

/* A price per GB-second without exponent or trailing zeros: 0.0000166667. */
static void fmt_price(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.12f", v);
    char *end = buf + strlen(buf) - 1;
    while (end > buf && *end == '0' && end[-1] != '.')
        *end-- = '\0';
}

/* Prints s cut to width display columns (bytes of UTF-8 continuation are not counted). */
static void print_cut(const char *s, int width)
{
    int cols = 0;
    const char *p = s;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (cols == width)
                break;
            cols++;
        }
    }
    if (*p && width > 1) { /* cut: end with an ellipsis */
        int keep = 0;
        cols = 0;
        for (p = s; *p; p++) {
            if (((unsigned char)*p & 0xC0) != 0x80 && ++cols == width)
                break;
            keep++;
        }
        printf("%.*s~", keep, s);
        return;
    }
    printf("%s%*s", s, width - cols, "");
}

/* Prints text word-wrapped to `width` columns, each line after `indent` spaces. */
static void print_wrapped(const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int line = 0, last_space = -1;
        for (int i = 0; p[i] && line < width; i++) {
            if (p[i] == ' ')
                last_space = i;
            if (((unsigned char)p[i] & 0xC0) != 0x80)
                line++;
            if (line == width && p[i + 1] && last_space > 0) {
                printf("%*s%.*s\n", indent, "", last_space, p);
                p += last_space + 1;
                goto next;
            }
        }
        printf("%*s%s\n", indent, "", p);
        return;
    next:;
    }
}

static void bar(double value, double max)
{
    int n = max > 0 ? (int)lround(value / max * BAR_WIDTH) : 0;
    if (n < 1 && value > 0)
        n = 1;
    for (int i = 0; i < n; i++)
        fputs(isatty(STDOUT_FILENO) ? "\u2588" : "#", stdout);
    printf("%*s", BAR_WIDTH - n, "");
}

static void print_functions(json_t *functions)
{
    printf("%-30s %8s %7s %9s %9s %10s\n", "FUNCTION", "INVOKED", "COLD %", "AVG INIT", "P95 INIT", "INIT $/MO");
    size_t i;
    json_t *f;
    json_array_foreach(functions, i, f) {
        json_t *s = json_object_get(f, "cold_start_stats");
        char avg[32], p95[32], cost[32];
        fmt_ms(avg, sizeof avg, num(json_object_get(s, "avg_init_duration_ms")));
        fmt_ms(p95, sizeof p95, num(json_object_get(s, "p95_init_duration_ms")));
        fmt_usd(cost, sizeof cost, num(json_object_get(s, "init_cost_usd_per_month")));
        print_cut(json_string_value(json_object_get(f, "function_name")), 30);
        printf(" %8lld %6.1f%% %9s %9s %10s\n",
               (long long)json_integer_value(json_object_get(s, "total_invocations_24h")),
               num(json_object_get(s, "cold_start_rate")) * 100.0, avg, p95, cost);
    }
    if (json_array_size(functions) == 0)
        printf("(no functions yet: send records with the SDK or POST /api/v1/ingest)\n");
}

static void print_detail(json_t *d)
{
    json_t *init = json_object_get(d, "init_duration_ms");
    char a[32], b[32], c[32], e[32];
    fmt_ms(a, sizeof a, num(json_object_get(init, "avg")));
    fmt_ms(b, sizeof b, num(json_object_get(init, "p50")));
    fmt_ms(c, sizeof c, num(json_object_get(init, "p95")));
    fmt_ms(e, sizeof e, num(json_object_get(init, "p99")));
    json_t *window = json_object_get(d, "window");
    printf("\n%s  (%s, %s to %s)\n", json_string_value(json_object_get(d, "function_name")),
           json_is_string(json_object_get(d, "runtime")) ? json_string_value(json_object_get(d, "runtime"))
                                                         : "runtime ?",
           json_string_value(json_object_get(window, "from")), json_string_value(json_object_get(window, "to")));
    printf("cold starts: %lld   init: avg %s  p50 %s  p95 %s  p99 %s\n",
           (long long)json_integer_value(json_object_get(d, "cold_starts")), a, b, c, e);
    char cost[32], month[32], proactive[32];
    fmt_usd(cost, sizeof cost, num(json_object_get(d, "init_cost_usd")));
    fmt_usd(month, sizeof month, num(json_object_get(d, "init_cost_usd_per_month")));
    fmt_usd(proactive, sizeof proactive, num(json_object_get(d, "proactive_init_cost_usd")));
    printf("init cost: %s in this window, ~%s per month at this rate\n", cost, month);
    if (json_integer_value(json_object_get(d, "proactive_starts")) > 0)
        printf("proactive inits: %s more (billed, but no request waited)\n", proactive);
    double share = num(json_object_get(d, "module_load_share"));
    if (!isnan(share))
        printf("module loading explains %.0f%% of init\n", share * 100.0);

    json_t *modules = json_object_get(d, "module_breakdown");
    if (json_object_size(modules) > 0) {
        printf("\n%-25s %-*s %8s %8s %10s\n", "MODULE (self time)", BAR_WIDTH, "p50", "P50", "P95", "$/MONTH");
        double max = 0;
        const char *name;
        json_t *m;
        json_object_foreach(modules, name, m)
            max = fmax(max, num(json_object_get(m, "p50_ms")));
        int shown = 0;
        json_object_foreach(modules, name, m) {
            if (shown++ == 15) {
                printf("... %zu more (coldstartd report --json shows all)\n", json_object_size(modules) - 15);
                break;
            }
            fmt_ms(a, sizeof a, num(json_object_get(m, "p50_ms")));
            fmt_ms(b, sizeof b, num(json_object_get(m, "p95_ms")));
            fmt_usd(c, sizeof c, num(json_object_get(m, "init_cost_usd_per_month")));
            print_cut(name, 25);
            putchar(' ');
            bar(num(json_object_get(m, "p50_ms")), max);
            printf(" %8s %8s %10s\n", a, b, c);
        }
    } else {
        printf("\nno module timings in this window\n");
    }
    json_t *recs = json_object_get(d, "recommendations");
    if (json_array_size(recs) > 0) {
        printf("\nRECOMMENDATIONS (by estimated savings)\n");
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r) {
            printf("%zu. %s: save ~%lld ms\n", i + 1, json_string_value(json_object_get(r, "module")),
                   (long long)json_integer_value(json_object_get(r, "potential_savings_ms")));
            print_wrapped(json_string_value(json_object_get(r, "issue")), 3, 76);
            printf("   Fix:\n");
            print_wrapped(json_string_value(json_object_get(r, "suggestion")), 3, 76);
        }
    } else {
        printf("\nno recommendations\n");
    }
}

/* A deployment id for a narrow column: its first 14 characters. */
static const char *short_id(json_t *v, char *buf, size_t size)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "-";
    snprintf(buf, size, "%.14s", s);
    return buf;
}

/* The function's deployments, newest first, then the latest against the one before. */
static void print_deployments(json_t *deployments, json_t *comparison)
{
    json_t *list = json_object_get(deployments, "deployments");
    if (json_array_size(list) == 0) {
        printf("\nno deployments yet (records carry no code_id or function_version)\n");
        return;
    }
    printf("\nDEPLOYMENTS (newest first; cost over each one's life)\n");
    printf("%-14s %-8s %-16s %6s %9s %9s %10s\n", "DEPLOYMENT", "VERSION", "FIRST SEEN (UTC)", "COLD", "P50 INIT",
           "P95 INIT", "INIT COST");
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d) {
        if (i == DEPLOYMENTS_SHOWN) {
            printf("... %zu more (coldstartd report --json shows all)\n", json_array_size(list) - DEPLOYMENTS_SHOWN);
            break;
        }
        char id[32], p50[32], p95[32], cost[32], first[32];
        json_t *version = json_object_get(d, "function_version");
        const char *seen = json_string_value(json_object_get(d, "first_seen_at"));
        snprintf(first, sizeof first, "%.10s %.5s", seen ? seen : "", seen && strlen(seen) > 11 ? seen + 11 : "");
        fmt_ms(p50, sizeof p50, num(json_object_get(d, "init_p50_ms")));
        fmt_ms(p95, sizeof p95, num(json_object_get(d, "init_p95_ms")));
        fmt_usd(cost, sizeof cost, num(json_object_get(d, "init_cost_usd")));
        printf("%-14s %-8.8s %-16s %6lld %9s %9s %10s\n", short_id(json_object_get(d, "deployment"), id, sizeof id),
               json_is_string(version) ? json_string_value(version) : "-", first,
               (long long)json_integer_value(json_object_get(d, "on_demand_cold_starts")), p50, p95, cost);
    }
    if (!comparison)
        return;
    char base[32], head[32], change[32];
    json_t *test = json_object_get(comparison, "test");
    double ms = num(json_object_get(test, "median_change_ms")),
           pct = num(json_object_get(test, "median_change_percent"));
    snprintf(change, sizeof change, "%+.0f ms", ms);
    printf("\nLATEST CHANGE %s -> %s: %s\n",
           short_id(json_object_get(json_object_get(comparison, "base"), "deployment"), base, sizeof base),
           short_id(json_object_get(json_object_get(comparison, "head"), "deployment"), head, sizeof head),
           json_string_value(json_object_get(comparison, "verdict")));
    printf("  init p50 %s", isnan(ms) ? "-" : change);
    if (!isnan(pct))
        printf(" (%+.1f %%)", pct);
    double p = num(json_object_get(test, "p_value"));
    if (!isnan(p))
        printf(", Mann-Whitney p = %.2g", p);
    printf("\n");
    json_t *cost = json_object_get(comparison, "init_cost");
    double per_start = num(json_object_get(cost, "change_usd_per_cold_start")),
           per_month = num(json_object_get(cost, "change_usd_per_month"));
    if (!isnan(per_start)) {
        char a[32], b[32];
        fmt_usd_change(a, sizeof a, per_start);
        fmt_usd_change(b, sizeof b, per_month);
        /* 80 columns: the month at the head's rate of cold starts */
        printf("  init cost %s per cold start, %s/month at %.0f starts/month\n", a, b,
               num(json_object_get(cost, "head_cold_starts_per_month")));
    }
    json_t *packages = json_object_get(comparison, "packages");
    int shown = 0;
    json_array_foreach(packages, i, d) {
        double c = num(json_object_get(d, "change_ms"));
        const char *status = json_string_value(json_object_get(d, "status"));
        /* a package whose time did not move is no part of the story, unless it came or went */
        if (strcmp(status, "changed") == 0 && !(fabs(c) >= 0.5))
            continue;
        if (shown++ == PACKAGE_CHANGES_SHOWN) {
            printf("  ... (coldstartd report --json shows every package)\n");
            break;
        }
        double month = num(json_object_get(d, "change_usd_per_month"));
        char usd[32];
        fmt_usd_change(usd, sizeof usd, month);
        printf("  %s%s%s%s\n", json_string_value(json_object_get(d, "summary")), isnan(month) ? "" : ", ",
               isnan(month) ? "" : usd, isnan(month) ? "" : "/month");
    }
    if (shown == 0)
        printf("  no package's self time changed\n");
}

int csa_report(const csa_config *cfg, const char *project_slug, const char *function_name, int as_json)
{
    char err[512];
    csa_rules *rules = csa_rules_load(cfg->rules_file, err, sizeof err);
    if (!rules) {
        fprintf(stderr, "coldstartd report: rule file error: %s\n", err);
        return 2;
    }
    PGconn *conn = csa_db_connect(cfg->database_url, err, sizeof err);
    int rc = 1;
    json_t *list = NULL, *detail_json = NULL, *deployments = NULL, *comparison = NULL;
    if (!conn) {
        fprintf(stderr, "coldstartd report: cannot connect to the database: %s\n", err);
        goto out;
    }
    const char *p[] = {project_slug};
    PGresult *res = csa_db_exec(conn,
                                project_slug ? "SELECT id::text, slug FROM projects WHERE slug = $1"
                                             : "SELECT id::text, slug FROM projects ORDER BY created_at LIMIT 2",
                                project_slug ? 1 : 0, project_slug ? p : NULL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
        fprintf(stderr, "coldstartd report: %s\n", project_slug ? "no such project" : "no projects yet");
        PQclear(res);
        goto out;
    }
    if (!project_slug && PQntuples(res) > 1) {
        fprintf(stderr, "coldstartd report: several projects exist; choose one with --project SLUG\n");
        PQclear(res);
        goto out;
    }
    char project_id[64], slug[128];
    snprintf(project_id, sizeof project_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(slug, sizeof slug, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    char detail[CSA_DETAIL_MAX];
    csa_list_params lp = {200, NULL, NULL};
    if (csa_query_list_functions(conn, &cfg->prices, project_id, &lp, &list, detail) != CSA_OK) {
        fprintf(stderr, "coldstartd report: %s\n", detail);
        goto out;
    }
    /* the function to break down: the one named, or the slowest average init */
    const char *chosen = NULL;
    double worst = -1;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(list, "functions"), i, f) {
        const char *name = json_string_value(json_object_get(f, "function_name"));
        double avg = num(json_object_get(json_object_get(f, "cold_start_stats"), "avg_init_duration_ms"));
        if (function_name ? strcmp(name, function_name) == 0 : (!isnan(avg) && avg > worst)) {
            chosen = json_string_value(json_object_get(f, "id"));
            worst = isnan(avg) ? worst : avg;
            if (function_name)
                break;
        }
    }
    if (!function_name && !chosen && json_array_size(json_object_get(list, "functions")) > 0)
        chosen = json_string_value(json_object_get(json_array_get(json_object_get(list, "functions"), 0), "id"));
    if (function_name && !chosen) {
        fprintf(stderr, "coldstartd report: no function \"%s\" in project %s\n", function_name, slug);
        goto out;
    }
    if (chosen && csa_query_function_detail(conn, rules, &cfg->prices, project_id, chosen, NULL, NULL,
                                            cfg->max_read_samples, &detail_json, detail) != CSA_OK) {
        fprintf(stderr, "coldstartd report: %s\n", detail);
        goto out;
    }
    if (chosen && csa_deployments_list(conn, &cfg->prices, project_id, chosen, &deployments, detail) != CSA_OK) {
        fprintf(stderr, "coldstartd report: %s\n", detail);
        goto out;
    }
    if (json_array_size(json_object_get(deployments, "deployments")) >= 2) {
        csa_status st = csa_deployments_compare(conn, &cfg->prices, project_id, chosen, NULL, NULL, &comparison,
                                                detail);
        if (st != CSA_OK && st != CSA_ERR_NOT_FOUND) {
            fprintf(stderr, "coldstartd report: %s\n", detail);
            goto out;
        }
    }
    if (as_json) {
        json_t *outj = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O}", "project", slug, "functions",
                                 json_object_get(list, "functions"), "function",
                                 detail_json ? detail_json : json_null(), "deployments",
                                 deployments ? json_object_get(deployments, "deployments") : json_null(),
                                 "latest_comparison", comparison ? comparison : json_null(), "prices_per_gb_second",
                                 json_object_get(list, "prices_per_gb_second"));
        char *text = json_dumps(outj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        puts(text);
        free(text);
        json_decref(outj);
    } else {
        printf("Project %s: functions over the last 24 h\n\n", slug);
        print_functions(json_object_get(list, "functions"));
        if (detail_json)
            print_detail(detail_json);
        if (deployments)
            print_deployments(deployments, comparison);
        char note[400], x86[32], arm[32];
        fmt_price(x86, sizeof x86, cfg->prices.x86_64);
        fmt_price(arm, sizeof arm, cfg->prices.arm64);
        snprintf(note, sizeof note,
                 "Init cost: init time x memory x the price per GB-second (x86_64 $%s, arm64 $%s: "
                 "PRICE_PER_GB_SECOND_*) of on-demand cold starts; $/month extends the window's rate to 30 days.",
                 x86, arm);
        printf("\n");
        print_wrapped(note, 0, 79);
    }
    rc = 0;
out:
    json_decref(list);
    json_decref(detail_json);
    json_decref(deployments);
    json_decref(comparison);
    if (conn)
        PQfinish(conn);
    csa_rules_free(rules);
    return rc;
}
