/* report.c: see report.h. */
#include "report.h"

#include "db.h"
#include "queries.h"
#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24

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
    printf("%-30s %8s %7s %9s %9s\n", "FUNCTION", "INVOKED", "COLD %", "AVG INIT", "P95 INIT");
    size_t i;
    json_t *f;
    json_array_foreach(functions, i, f) {
        json_t *s = json_object_get(f, "cold_start_stats");
        char avg[32], p95[32];
        fmt_ms(avg, sizeof avg, num(json_object_get(s, "avg_init_duration_ms")));
        fmt_ms(p95, sizeof p95, num(json_object_get(s, "p95_init_duration_ms")));
        print_cut(json_string_value(json_object_get(f, "function_name")), 30);
        printf(" %8lld %6.1f%% %9s %9s\n", (long long)json_integer_value(json_object_get(s, "total_invocations_24h")),
               num(json_object_get(s, "cold_start_rate")) * 100.0, avg, p95);
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
           json_is_string(json_object_get(d, "runtime")) ? json_string_value(json_object_get(d, "runtime")) : "runtime ?",
           json_string_value(json_object_get(window, "from")), json_string_value(json_object_get(window, "to")));
    printf("cold starts: %lld   init: avg %s  p50 %s  p95 %s  p99 %s\n",
           (long long)json_integer_value(json_object_get(d, "cold_starts")), a, b, c, e);
    double share = num(json_object_get(d, "module_load_share"));
    if (!isnan(share))
        printf("module loading explains %.0f%% of init\n", share * 100.0);

    json_t *modules = json_object_get(d, "module_breakdown");
    if (json_object_size(modules) > 0) {
        printf("\n%-28s %-*s %8s %8s\n", "MODULE (self time)", BAR_WIDTH, "p50", "P50", "P95");
        double max = 0;
        const char *name;
        json_t *m;
        json_object_foreach(modules, name, m) max = fmax(max, num(json_object_get(m, "p50_ms")));
        int shown = 0;
        json_object_foreach(modules, name, m) {
            if (shown++ == 15) {
                printf("... %zu more (coldstartd report --json shows all)\n", json_object_size(modules) - 15);
                break;
            }
            fmt_ms(a, sizeof a, num(json_object_get(m, "p50_ms")));
            fmt_ms(b, sizeof b, num(json_object_get(m, "p95_ms")));
            print_cut(name, 28);
            putchar(' ');
            bar(num(json_object_get(m, "p50_ms")), max);
            printf(" %8s %8s\n", a, b);
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
    json_t *list = NULL, *detail_json = NULL;
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
    if (csa_query_list_functions(conn, project_id, &lp, &list, detail) != CSA_OK) {
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
    if (chosen && csa_query_function_detail(conn, rules, project_id, chosen, NULL, NULL, cfg->max_read_samples, &detail_json,
                                            detail) != CSA_OK) {
        fprintf(stderr, "coldstartd report: %s\n", detail);
        goto out;
    }
    if (as_json) {
        json_t *outj = json_pack("{s:s, s:O, s:O}", "project", slug, "functions", json_object_get(list, "functions"),
                                 "function", detail_json ? detail_json : json_null());
        char *text = json_dumps(outj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        puts(text);
        free(text);
        json_decref(outj);
    } else {
        printf("Project %s: functions over the last 24 h\n\n", slug);
        print_functions(json_object_get(list, "functions"));
        if (detail_json)
            print_detail(detail_json);
    }
    rc = 0;
out:
    json_decref(list);
    json_decref(detail_json);
    if (conn)
        PQfinish(conn);
    csa_rules_free(rules);
    return rc;
}
