/* alerts.c: the alert evaluator and the outbox sender (see alerts.h and docs/alerts.md). */
#include "alerts.h"
#include "cost.h"

#include "db.h"
#include "deployments.h"
#include "log.h"
#include "queries.h"
#include "uuid.h"
#include "webhook.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define REAL_COLD "(i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')"
#define TICK_S 1.0             /* how often due deliveries are looked for */
#define MAX_BACKOFF_S 3600     /* the longest wait between two attempts */
#define RULE_LOCK_SEED "17005" /* hashtextextended(rule id, seed): the advisory lock of one rule */
#define REGRESSION_PACKAGES 5  /* packages named in a regression notification */
#define PRUNE_INTERVAL_S 3600  /* how often delivered and given-up notifications are pruned ... */
#define KEEP_DAYS "30"         /* ... once older than this */

struct csa_alerts {
    const csa_config *cfg;
    pthread_t thread;
    int wake[2]; /* a pipe: csa_alerts_stop writes one byte, which ends every wait */
    atomic_int stopping;
    PGconn *conn; /* the thread's own connection; NULL while the database is unreachable */
    pthread_mutex_t cancel_lock;
    PGcancel *cancel;     /* cancels conn's running statement at stop; under cancel_lock */
    csa_webhook_tls *tls; /* https deliveries' TLS settings; NULL when they could not be made (logged) */
};

/* One rule as the evaluator reads it. */
typedef struct rule {
    const char *id, *project_id, *function_id; /* function_id NULL: every function of the project */
    const char *name, *metric, *format;
    double threshold;
    int window_min, min_samples;
    json_t *json; /* the public rule (csa_alert_rule_json), for the payload */
} rule;

static void disconnect(csa_alerts *a);

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps up to `seconds`; returns 1 at once when the evaluator is told to stop. */
static int sleep_or_stop(csa_alerts *a, double seconds)
{
    if (atomic_load(&a->stopping))
        return 1;
    struct pollfd p = {a->wake[0], POLLIN, 0};
    poll(&p, 1, seconds > 0 ? (int)(seconds * 1000) : 0);
    return atomic_load(&a->stopping);
}

/* Runs a statement without a result; 0, or -1 (logged; the connection is dropped when it is the
 * connection's fault). */
static int exec_ok(csa_alerts *a, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    char detail[256];
    csa_db_failure(a->conn, res, what, detail, sizeof detail); /* logs the server's message */
    if (csa_db_is_unavailable(a->conn, res))
        disconnect(a);
    return -1;
}

static int simple(csa_alerts *a, const char *sql, const char *what)
{
    PGresult *res = PQexec(a->conn, sql);
    int rc = exec_ok(a, res, what);
    PQclear(res);
    return rc;
}

static void rollback(csa_alerts *a)
{
    if (a->conn)
        PQclear(PQexec(a->conn, "ROLLBACK"));
}

static json_t *rounded(double v, double scale)
{
    if (!isfinite(v))
        return json_null();
    double r = round(v * scale) / scale;
    return r == floor(r) && fabs(r) < 9e15 ? json_integer((json_int_t)r) : json_real(r);
}

/* ---- figures -------------------------------------------------------------------------------- */

/*
 * The figure of each function in the rule's scope that has data in its window, as an array of
 * {function_id, function_name, value, samples} (regression: also subject and regression).
 * Returns 0, or -1 on a database error.
 */
static int sql_figures(csa_alerts *a, const rule *r, json_t *out)
{
    char window[16], limit[16], x86[32], arm[32];
    snprintf(window, sizeof window, "%d", r->window_min);
    snprintf(limit, sizeof limit, "%d", CSA_ALERTS_MAX_FUNCTIONS);
    csa_prices_params(&a->cfg->prices, x86, arm);
    const char *value_sql, *filter;
    if (strcmp(r->metric, "init_p95_ms") == 0) {
        value_sql = "percentile_cont(0.95) WITHIN GROUP (ORDER BY i.init_duration_ms), count(*)";
        filter = " AND " REAL_COLD " AND i.init_duration_ms IS NOT NULL";
    } else if (strcmp(r->metric, "cold_start_rate") == 0) {
        value_sql = "100.0 * count(*) FILTER (WHERE " REAL_COLD ") / count(*), count(*)";
        filter = "";
    } else { /* init_cost_monthly_usd: the window's cost scaled to 30 days */
        value_sql = "sum(" CSA_INIT_COST_SQL("i", "f", "$5", "$6") ") * (43200.0 / $3::int), count(*)";
        filter = " AND " REAL_COLD " AND i.init_duration_ms IS NOT NULL";
    }
    char sql[1400];
    snprintf(sql, sizeof sql,
             "SELECT f.id, f.function_name, %s FROM functions f"
             " JOIN invocations i ON i.function_id = f.id AND i.project_id = f.project_id"
             " WHERE f.project_id = $1::uuid AND ($2::uuid IS NULL OR f.id = $2::uuid)"
             "   AND i.\"timestamp\" > now() - make_interval(mins => $3::int)%s"
             " GROUP BY f.id, f.function_name ORDER BY f.id LIMIT $4::int",
             value_sql, filter);
    const char *params[] = {r->project_id, r->function_id, window, limit, x86, arm};
    int nparams = strcmp(r->metric, "init_cost_monthly_usd") == 0 ? 6 : 4;
    PGresult *res = csa_db_exec(a->conn, sql, nparams, params);
    if (exec_ok(a, res, "alert figures") < 0) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:f, s:I}", "function_id", PQgetvalue(res, i, 0), "function_name",
                                        PQgetvalue(res, i, 1), "value", strtod(PQgetvalue(res, i, 2), NULL), "samples",
                                        (json_int_t)strtoll(PQgetvalue(res, i, 3), NULL, 10)));
    PQclear(res);
    return 0;
}

/* Regression: for each function whose newest deployment was first seen within the window, the
 * comparison with the one before (deployments.h), as the compare API answers it. */
static int regression_figures(csa_alerts *a, const rule *r, json_t *out)
{
    char window[16], limit[16];
    snprintf(window, sizeof window, "%d", r->window_min);
    snprintf(limit, sizeof limit, "%d", CSA_ALERTS_MAX_FUNCTIONS);
    const char *params[] = {r->project_id, r->function_id, window, limit};
    PGresult *res = csa_db_exec(a->conn,
                                "SELECT f.id, f.function_name FROM functions f"
                                " WHERE f.project_id = $1::uuid AND ($2::uuid IS NULL OR f.id = $2::uuid)"
                                "   AND EXISTS (SELECT 1 FROM function_deployments d WHERE d.function_id = f.id"
                                "     AND d.first_seen_at > now() - make_interval(mins => $3::int))"
                                " ORDER BY f.id LIMIT $4::int",
                                4, params);
    if (exec_ok(a, res, "alert regression candidates") < 0) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res) && !atomic_load(&a->stopping); i++) {
        json_t *cmp = NULL;
        char detail[CSA_DETAIL_MAX];
        csa_status st = csa_deployments_compare(a->conn, &a->cfg->prices, r->project_id, PQgetvalue(res, i, 0), NULL,
                                                NULL, &cmp, detail);
        if (st == CSA_ERR_NOT_FOUND)
            continue; /* fewer than two deployments */
        if (st != CSA_OK) {
            PQclear(res);
            if (!csa_db_alive(a->conn))
                disconnect(a);
            return -1;
        }
        json_t *test = json_object_get(cmp, "test");
        json_t *change = json_object_get(test, "median_change_percent");
        const char *verdict = json_string_value(json_object_get(cmp, "verdict"));
        json_t *head = json_object_get(cmp, "head"), *base = json_object_get(cmp, "base");
        json_int_t nh = json_integer_value(json_object_get(head, "cold_starts"));
        json_int_t nb = json_integer_value(json_object_get(base, "cold_starts"));
        /* only a statistically significant regression counts: below that the figure is noise */
        int regressed = verdict && strcmp(verdict, "regression") == 0;
        json_t *packages = json_array();
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(cmp, "packages"), k, p) {
            if (json_array_size(packages) >= REGRESSION_PACKAGES)
                break;
            if (json_number_value(json_object_get(p, "change_ms")) > 0)
                json_array_append(packages, p);
        }
        json_t *fig = json_pack(
            "{s:s, s:s, s:o, s:I, s:O, s:{s:O, s:O, s:s, s:O, s:O, s:O, s:o}}", "function_id", PQgetvalue(res, i, 0),
            "function_name", PQgetvalue(res, i, 1), "value",
            regressed && json_is_number(change) ? json_real(json_number_value(change)) : json_null(), "samples",
            nh < nb ? nh : nb, "subject", json_object_get(head, "deployment"), "regression", "base", base, "head", head,
            "verdict", verdict ? verdict : "", "median_change_ms", json_object_get(test, "median_change_ms"),
            "median_change_percent", change, "p_value", json_object_get(test, "p_value"), "packages", packages);
        json_array_append_new(out, fig);
        json_decref(cmp);
    }
    PQclear(res);
    return 0;
}

/* ---- notifications -------------------------------------------------------------------------- */

static const char *metric_label(const char *metric)
{
    return strcmp(metric, "init_p95_ms") == 0       ? "Init p95"
           : strcmp(metric, "cold_start_rate") == 0 ? "Cold start rate"
           : strcmp(metric, "regression") == 0      ? "Init regression"
                                                    : "Init cost";
}

static const char *metric_unit(const char *metric)
{
    return strcmp(metric, "init_p95_ms") == 0 ? "ms" : strcmp(metric, "init_cost_monthly_usd") == 0 ? "USD/month" : "%";
}

/* One sentence on the figure, for people (the JSON also has every figure as a number). */
static void summary(const rule *r, json_t *fig, int firing, char *out, size_t size)
{
    const char *fn = json_string_value(json_object_get(fig, "function_name"));
    json_t *v = json_object_get(fig, "value");
    double value = json_number_value(v);
    long long samples = (long long)json_integer_value(json_object_get(fig, "samples"));
    json_t *reg = json_object_get(fig, "regression");
    if (strcmp(r->metric, "regression") == 0) {
        const char *head = json_string_value(json_object_get(json_object_get(reg, "head"), "deployment"));
        const char *base = json_string_value(json_object_get(json_object_get(reg, "base"), "deployment"));
        if (firing) {
            int n = snprintf(out, size,
                             "Deployment %.80s of %.200s made init %+.1f %% slower (median, %lld+ cold starts each) "
                             "than %.80s, above %g %%",
                             head ? head : "?", fn, value, samples, base ? base : "?", r->threshold);
            size_t k;
            json_t *p;
            json_array_foreach(json_object_get(reg, "packages"), k, p) {
                if (n < 0 || (size_t)n >= size)
                    break;
                n += snprintf(out + n, size - (size_t)n, "%s%s", k == 0 ? ": " : "; ",
                              json_string_value(json_object_get(p, "summary")));
            }
        } else {
            snprintf(out, size, "No init regression above %g %% for %.200s now (newest deployment %.80s)", r->threshold,
                     fn, head ? head : "none recent");
        }
        return;
    }
    const char *label = metric_label(r->metric);
    int cost = strcmp(r->metric, "init_cost_monthly_usd") == 0;
    char figure[64], threshold[64];
    if (cost) {
        snprintf(figure, sizeof figure, "$%.2f per month", value);
        snprintf(threshold, sizeof threshold, "$%g per month", r->threshold);
    } else {
        snprintf(figure, sizeof figure, "%.1f %s", value, metric_unit(r->metric));
        snprintf(threshold, sizeof threshold, "%g %s", r->threshold, metric_unit(r->metric));
    }
    const char *what = strcmp(r->metric, "cold_start_rate") == 0 ? "invocations" : "cold starts";
    if (json_is_null(v) || !v)
        snprintf(out, size, "%s of %.200s: no data over the last %d min; resolved", label, fn, r->window_min);
    else if (firing)
        snprintf(out, size, "%s of %.200s is %s over the last %d min (%lld %s), above %s", label, fn, figure,
                 r->window_min, samples, what, threshold);
    else
        snprintf(out, size, "%s of %.200s is back to %s over the last %d min (%lld %s), not above %s", label, fn,
                 figure, r->window_min, samples, what, threshold);
}

/* The body of a notification, as sent and signed (a new string, caller frees). */
static char *notification_body(const rule *r, json_t *fig, const char *event, const char *delivery_id)
{
    int firing = strcmp(event, "firing") == 0;
    char text[2048], now[40];
    summary(r, fig, firing, text, sizeof text);
    csa_format_now(now, sizeof now);
    json_t *body;
    if (strcmp(r->format, "slack") == 0) {
        char slack[2400];
        snprintf(slack, sizeof slack, "%s *%s* %s: %s",
                 firing ? ":rotating_light:" : ":white_check_mark:", firing ? "[FIRING]" : "[RESOLVED]", r->name, text);
        body = json_pack("{s:s}", "text", slack);
    } else {
        int cost = strcmp(r->metric, "init_cost_monthly_usd") == 0;
        json_t *v = json_object_get(fig, "value");
        body = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:{s:s, s:s}, s:{s:o, s:s, s:O, s:O, s:i}}", "delivery_id",
                         delivery_id, "event", event, "timestamp", now, "summary", text, "rule", r->json, "project_id",
                         r->project_id, "function", "id", json_string_value(json_object_get(fig, "function_id")),
                         "name", json_string_value(json_object_get(fig, "function_name")), "figures", "value",
                         json_is_number(v) ? rounded(json_number_value(v), cost ? 1e4 : 100) : json_null(), "unit",
                         metric_unit(r->metric), "threshold", json_object_get(r->json, "threshold"), "samples",
                         json_object_get(fig, "samples"), "window_minutes", r->window_min);
        json_t *reg = json_object_get(fig, "regression");
        if (reg)
            json_object_set(body, "regression", reg);
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(body);
    return s;
}

/* Queues the notification and records the new state, inside the rule's transaction. */
static int transition(csa_alerts *a, const rule *r, json_t *fig, const char *event)
{
    char id[CSA_UUID_SIZE];
    csa_uuid_random(id);
    char *body = notification_body(r, fig, event, id);
    if (!body)
        return -1;
    const char *fid = json_string_value(json_object_get(fig, "function_id"));
    const char *oparams[] = {id, r->id, fid, event, body};
    PGresult *res = csa_db_exec(a->conn,
                                "INSERT INTO alert_outbox (id, rule_id, function_id, event, body)"
                                " VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5)",
                                5, oparams);
    free(body);
    int rc = exec_ok(a, res, "alert outbox insert");
    PQclear(res);
    if (rc == 0 && csa_log_enabled(CSA_LOG_INFO))
        csa_log(CSA_LOG_INFO, strcmp(event, "firing") == 0 ? "alert firing" : "alert resolved",
                json_pack("{s:s, s:s, s:s, s:s}", "rule_id", r->id, "function_id", fid, "metric", r->metric,
                          "delivery_id", id));
    return rc;
}

static int save_state(csa_alerts *a, const rule *r, json_t *fig, const char *state)
{
    json_t *v = json_object_get(fig, "value");
    char value[40];
    snprintf(value, sizeof value, "%.17g", json_number_value(v));
    const char *subject = json_string_value(json_object_get(fig, "subject"));
    const char *params[] = {r->id, json_string_value(json_object_get(fig, "function_id")), state, subject,
                            json_is_number(v) ? value : NULL};
    PGresult *res = csa_db_exec(
        a->conn,
        "INSERT INTO alert_states AS s (rule_id, function_id, state, subject, since, value, evaluated_at)"
        " VALUES ($1::uuid, $2::uuid, $3, $4, now(), $5::float8, now())"
        " ON CONFLICT (rule_id, function_id) DO UPDATE SET state = EXCLUDED.state, subject = EXCLUDED.subject,"
        "   since = CASE WHEN s.state = EXCLUDED.state AND s.subject IS NOT DISTINCT FROM EXCLUDED.subject"
        "     THEN s.since ELSE now() END, value = EXCLUDED.value, evaluated_at = now()",
        5, params);
    int rc = exec_ok(a, res, "alert state");
    PQclear(res);
    return rc;
}

/*
 * One rule, in one transaction under the rule's advisory lock (several replicas never evaluate it
 * at once): the figures, then per function: ok -> firing queues "firing", firing -> ok (or no
 * data any more) queues "resolved", anything else only records the figure. A regression that
 * fires for a newer deployment while firing for an older one is a new "firing".
 */
static int evaluate_rule(csa_alerts *a, const rule *r)
{
    if (simple(a, "BEGIN", "alert begin") < 0)
        return -1;
    const char *lp[] = {r->id};
    PGresult *res = csa_db_exec(a->conn, "SELECT pg_try_advisory_xact_lock(hashtextextended($1, " RULE_LOCK_SEED "))",
                                1, lp);
    if (exec_ok(a, res, "alert lock") < 0) {
        PQclear(res);
        rollback(a);
        return -1;
    }
    int locked = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!locked)
        return simple(a, "COMMIT", "alert commit"); /* another replica is at it */
    res = csa_db_exec(a->conn, "SELECT function_id, state, subject FROM alert_states WHERE rule_id = $1::uuid", 1, lp);
    if (exec_ok(a, res, "alert states") < 0) {
        PQclear(res);
        rollback(a);
        return -1;
    }
    json_t *states = json_object(); /* function id -> {state, subject} */
    for (int i = 0; i < PQntuples(res); i++)
        json_object_set_new(states, PQgetvalue(res, i, 0),
                            json_pack("{s:s, s:s?}", "state", PQgetvalue(res, i, 1), "subject",
                                      PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2)));
    PQclear(res);
    json_t *figures = json_array();
    int rc = strcmp(r->metric, "regression") == 0 ? regression_figures(a, r, figures) : sql_figures(a, r, figures);
    size_t i;
    json_t *fig;
    json_array_foreach(figures, i, fig) {
        if (rc < 0)
            break;
        const char *fid = json_string_value(json_object_get(fig, "function_id"));
        json_t *prev = json_object_get(states, fid);
        int was_firing = prev && strcmp(json_string_value(json_object_get(prev, "state")), "firing") == 0;
        json_t *v = json_object_get(fig, "value");
        int firing = json_is_number(v) && json_number_value(v) > r->threshold &&
                     json_integer_value(json_object_get(fig, "samples")) >= r->min_samples;
        const char *subject = json_string_value(json_object_get(fig, "subject"));
        const char *prev_subject = prev ? json_string_value(json_object_get(prev, "subject")) : NULL;
        int new_subject = subject && (!prev_subject || strcmp(subject, prev_subject) != 0);
        if (firing && (!was_firing || new_subject))
            rc = transition(a, r, fig, "firing");
        else if (!firing && was_firing)
            rc = transition(a, r, fig, "resolved");
        if (rc == 0 && (firing || prev))
            rc = save_state(a, r, fig, firing ? "firing" : "ok");
        json_object_del(states, fid);
    }
    /* firing, and no data in the window any more: resolved */
    const char *fid;
    json_t *prev;
    json_object_foreach(states, fid, prev) {
        if (rc < 0 || strcmp(json_string_value(json_object_get(prev, "state")), "firing") != 0)
            continue;
        const char *np[] = {fid};
        res = csa_db_exec(a->conn, "SELECT function_name FROM functions WHERE id = $1::uuid", 1, np);
        if (exec_ok(a, res, "alert function") < 0) {
            PQclear(res);
            rc = -1;
            break;
        }
        json_t *gone = json_pack("{s:s, s:s, s:n, s:i}", "function_id", fid, "function_name",
                                 PQntuples(res) ? PQgetvalue(res, 0, 0) : "?", "value", "samples", 0);
        PQclear(res);
        rc = transition(a, r, gone, "resolved");
        if (rc == 0)
            rc = save_state(a, r, gone, "ok");
        json_decref(gone);
    }
    json_decref(figures);
    json_decref(states);
    if (rc < 0 || atomic_load(&a->stopping)) {
        rollback(a);
        return -1;
    }
    return simple(a, "COMMIT", "alert commit");
}

static void evaluate_all(csa_alerts *a)
{
    PGresult *res = PQexec(a->conn, "SELECT " CSA_ALERT_RULE_COLUMNS ", r.project_id FROM alert_rules r"
                                    " ORDER BY r.created_at, r.id");
    if (exec_ok(a, res, "alert rules") < 0) {
        PQclear(res);
        return;
    }
    for (int i = 0; i < PQntuples(res) && a->conn && !atomic_load(&a->stopping); i++) {
        const int c = CSA_ALERT_RULE_NCOLUMNS;
        rule r = {
            .id = PQgetvalue(res, i, 0),
            .project_id = PQgetvalue(res, i, c),
            .function_id = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
            .name = PQgetvalue(res, i, 1),
            .metric = PQgetvalue(res, i, 3),
            .format = PQgetvalue(res, i, 8),
            .threshold = strtod(PQgetvalue(res, i, 4), NULL),
            .window_min = atoi(PQgetvalue(res, i, 5)),
            .min_samples = atoi(PQgetvalue(res, i, 6)),
            .json = csa_alert_rule_json(res, i, 0),
        };
        evaluate_rule(a, &r);
        json_decref(r.json);
    }
    PQclear(res);
}

/* ---- delivery ------------------------------------------------------------------------------- */

/*
 * Sends the oldest due notification, holding its row locked (FOR UPDATE SKIP LOCKED) while it
 * posts: another replica skips it, and if this process dies the lock goes with its connection and
 * the row is due again. Notifications of one rule and function leave in order (a resolved never
 * overtakes its firing). Returns 1 when one was handled, 0 when none is due, -1 on an error or
 * when stopping.
 */
static int deliver_one(csa_alerts *a)
{
    if (simple(a, "BEGIN", "alert begin") < 0)
        return -1;
    PGresult *res = PQexec(a->conn,
                           "SELECT o.id, o.body, o.attempts, o.event, r.webhook_url, r.secret, o.rule_id"
                           " FROM alert_outbox o JOIN alert_rules r ON r.id = o.rule_id"
                           " WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()"
                           "   AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.rule_id = o.rule_id"
                           "     AND p.function_id IS NOT DISTINCT FROM o.function_id AND p.delivered_at IS NULL"
                           "     AND p.failed_at IS NULL AND p.created_at < o.created_at)"
                           " ORDER BY o.next_attempt_at, o.created_at LIMIT 1 FOR UPDATE OF o SKIP LOCKED");
    if (exec_ok(a, res, "alert outbox") < 0) {
        PQclear(res);
        rollback(a);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return simple(a, "COMMIT", "alert commit") < 0 ? -1 : 0;
    }
    const char *id = PQgetvalue(res, 0, 0), *body = PQgetvalue(res, 0, 1);
    int attempt = atoi(PQgetvalue(res, 0, 2)) + 1;
    char signature[CSA_WEBHOOK_SIGNATURE_MAX], attempt_s[16];
    csa_webhook_sign(PQgetvalue(res, 0, 5), body, strlen(body), signature);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    csa_webhook_header headers[] = {
        {"X-Coldstart-Signature", signature},
        {"X-Coldstart-Delivery", id},
        {"X-Coldstart-Event", PQgetvalue(res, 0, 3)},
        {"X-Coldstart-Attempt", attempt_s},
    };
    int status = 0;
    char error[300];
    csa_webhook_outcome outcome = csa_webhook_post(
        PQgetvalue(res, 0, 4), body, strlen(body), headers, 4, a->tls, a->cfg->alert_allow_private_webhooks,
        a->cfg->alert_webhook_timeout_s, a->wake[0], &status, error, sizeof error);
    if (outcome == CSA_WEBHOOK_CANCELLED) { /* shutting down: not an attempt, sent again later */
        PQclear(res);
        rollback(a);
        return -1;
    }
    char base[16], max[16], cap[16];
    snprintf(base, sizeof base, "%d", a->cfg->alert_retry_base_s);
    snprintf(max, sizeof max, "%d", a->cfg->alert_max_attempts);
    snprintf(cap, sizeof cap, "%d", MAX_BACKOFF_S);
    const char *params[] = {id, outcome == CSA_WEBHOOK_DELIVERED ? NULL : error, base, max, cap};
    PGresult *up = csa_db_exec(
        a->conn,
        "UPDATE alert_outbox SET attempts = attempts + 1, last_attempt_at = now(), last_error = $2::text,"
        "  delivered_at = CASE WHEN $2::text IS NULL THEN now() END,"
        "  next_attempt_at = now() + make_interval(secs => least($3::float8 * power(2, attempts), $5::float8)),"
        "  failed_at = CASE WHEN $2::text IS NOT NULL AND attempts + 1 >= $4::int THEN now() END"
        " WHERE id = $1::uuid",
        5, params);
    int rc = exec_ok(a, up, "alert outbox update");
    PQclear(up);
    if (rc == 0)
        rc = simple(a, "COMMIT", "alert commit");
    else
        rollback(a);
    if (rc < 0) /* sent, but not recorded: it will be sent again (at least once) */
        csa_log(CSA_LOG_WARN, "alert delivery not recorded", json_pack("{s:s}", "delivery_id", id));
    else if (outcome == CSA_WEBHOOK_DELIVERED)
        csa_log(CSA_LOG_INFO, "alert delivered",
                json_pack("{s:s, s:s, s:i, s:i}", "delivery_id", id, "rule_id", PQgetvalue(res, 0, 6), "attempt",
                          attempt, "status", status));
    else
        csa_log(CSA_LOG_WARN,
                attempt >= a->cfg->alert_max_attempts ? "alert delivery given up" : "alert delivery failed",
                json_pack("{s:s, s:s, s:i, s:s}", "delivery_id", id, "rule_id", PQgetvalue(res, 0, 6), "attempt",
                          attempt, "error", error));
    PQclear(res);
    return rc < 0 ? -1 : 1;
}

/* ---- the thread ----------------------------------------------------------------------------- */

/* Deletes notifications delivered or given up more than KEEP_DAYS ago: the outbox stays small. */
static void prune(csa_alerts *a)
{
    PGresult *res = PQexec(a->conn,
                           "DELETE FROM alert_outbox WHERE delivered_at < now() - interval '" KEEP_DAYS " days'"
                           " OR failed_at < now() - interval '" KEEP_DAYS " days'");
    exec_ok(a, res, "alert outbox prune");
    PQclear(res);
}

/* Drops the connection (and its cancel handle). */
static void disconnect(csa_alerts *a)
{
    pthread_mutex_lock(&a->cancel_lock);
    if (a->cancel)
        PQfreeCancel(a->cancel);
    a->cancel = NULL;
    pthread_mutex_unlock(&a->cancel_lock);
    if (a->conn)
        PQfinish(a->conn);
    a->conn = NULL;
}

static void *alerts_main(void *arg)
{
    csa_alerts *a = arg;
    double next_eval = now_mono(); /* evaluate once at start, then every ALERT_EVAL_INTERVAL */
    double next_prune = now_mono();
    int warned = 0;
    while (!atomic_load(&a->stopping)) {
        if (!a->conn || !csa_db_alive(a->conn))
            disconnect(a);
        if (!a->conn) {
            char err[256];
            a->conn = csa_db_connect(a->cfg->database_url, err, sizeof err);
            if (!a->conn) {
                if (!warned++)
                    csa_logf(CSA_LOG_WARN, "alerts: database connection failed: %s", err);
                sleep_or_stop(a, TICK_S);
                continue;
            }
            warned = 0;
            /* a statement never runs longer than the read API's (a held lock, a huge comparison) */
            char sql[64];
            snprintf(sql, sizeof sql, "SET statement_timeout = %d", a->cfg->query_timeout_ms);
            PQclear(PQexec(a->conn, sql));
            pthread_mutex_lock(&a->cancel_lock);
            a->cancel = PQgetCancel(a->conn);
            pthread_mutex_unlock(&a->cancel_lock);
        }
        if (now_mono() >= next_eval) {
            next_eval = now_mono() + a->cfg->alert_eval_interval_s;
            evaluate_all(a);
        }
        if (a->conn && now_mono() >= next_prune) {
            next_prune = now_mono() + PRUNE_INTERVAL_S;
            prune(a);
        }
        /* every due delivery, but evaluations keep their pace */
        while (a->conn && !atomic_load(&a->stopping) && now_mono() < next_eval && deliver_one(a) == 1)
            ;
        double wait = next_eval - now_mono();
        sleep_or_stop(a, wait < TICK_S ? wait : TICK_S);
    }
    disconnect(a);
    return NULL;
}

/*
 * The TLS settings of https webhooks (webhook.h), made once: what they trust is logged, and a
 * system trust store without a certificate is warned about (public https receivers would all fail
 * verification). When they cannot be made, https deliveries fail (and are retried) with a reason
 * that points here; plain http ones go on.
 */
static void start_tls(csa_alerts *a)
{
    char err[400];
    int system_certs = 0;
    const char *ca_file = a->cfg->alert_webhook_ca_file;
    a->tls = csa_webhook_tls_create(ca_file, &system_certs, err, sizeof err);
    if (!a->tls) {
        csa_logf(CSA_LOG_ERROR, "alerts: https webhooks are unavailable: %s", err);
        return;
    }
    int ca_file_certs = *ca_file ? csa_webhook_check_ca_file(ca_file, err, sizeof err) : 0;
    csa_log(CSA_LOG_INFO, "alerts: https webhooks verify certificates",
            json_pack("{s:i, s:s?, s:i}", "system_certificates", system_certs, "ca_file", *ca_file ? ca_file : NULL,
                      "ca_file_certificates", ca_file_certs > 0 ? ca_file_certs : 0));
    if (system_certs == 0)
        csa_logf(CSA_LOG_WARN,
                 "alerts: the system's trust store holds no certificate (install ca-certificates): https webhooks "
                 "to public receivers will fail verification");
}

csa_alerts *csa_alerts_start(const csa_config *cfg)
{
    csa_alerts *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = cfg;
    start_tls(a);
    pthread_mutex_init(&a->cancel_lock, NULL);
    if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        pthread_mutex_destroy(&a->cancel_lock);
        csa_webhook_tls_destroy(a->tls);
        free(a);
        csa_logf(CSA_LOG_ERROR, "alerts: cannot create a pipe; alerts are not evaluated");
        return NULL;
    }
    if (pthread_create(&a->thread, NULL, alerts_main, a) != 0) {
        pthread_mutex_destroy(&a->cancel_lock);
        close(a->wake[0]);
        close(a->wake[1]);
        csa_webhook_tls_destroy(a->tls);
        free(a);
        csa_logf(CSA_LOG_ERROR, "alerts: cannot start the thread; alerts are not evaluated");
        return NULL;
    }
    return a;
}

void csa_alerts_stop(csa_alerts *a)
{
    if (!a)
        return;
    atomic_store(&a->stopping, 1);
    ssize_t n = write(a->wake[1], "x", 1);
    (void)n;
    /* a statement waiting on the database (a lock, a slow query) is cancelled, not waited for */
    pthread_mutex_lock(&a->cancel_lock);
    if (a->cancel) {
        char err[256];
        PQcancel(a->cancel, err, sizeof err);
    }
    pthread_mutex_unlock(&a->cancel_lock);
    pthread_join(a->thread, NULL);
    pthread_mutex_destroy(&a->cancel_lock);
    close(a->wake[0]);
    close(a->wake[1]);
    csa_webhook_tls_destroy(a->tls);
    free(a);
}
