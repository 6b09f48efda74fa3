/* alerts_api.c: POST/GET/DELETE /api/v1/alerts (see alerts.h). */
#include "alerts.h"

#include "db.h"
#include "queries.h"
#include "uuid.h"
#include "webhook.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* What each metric accepts and its default window. */
static const struct metric_rule {
    const char *name;
    double max_threshold;   /* "above N": 0 <= N <= max (a rate is a percentage) */
    int default_window_min; /* minutes of data read (regression: how new the deployment must be) */
} METRICS[] = {
    {"init_p95_ms", 900000, 60},
    {"cold_start_rate", 100, 60},
    {"regression", 100000, 10080},
    {"init_cost_monthly_usd", 1e9, 1440},
};

static const char *const FIELDS[] = {"name",           "function_id", "metric",      "threshold",
                                     "window_minutes", "min_samples", "webhook_url", "format"};

static void add_error(json_t *errors, const char *field, const char *msg, const char *type)
{
    json_array_append_new(errors, field
                                      ? json_pack("{s:[s,s], s:s, s:s}", "loc", "body", field, "msg", msg, "type", type)
                                      : json_pack("{s:[s], s:s, s:s}", "loc", "body", "msg", msg, "type", type));
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* An optional integer field: absent or null -> def. Returns -1 (error added) when invalid. */
static long long int_field(json_t *body, const char *name, long long def, long long min, long long max, json_t *errors)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char msg[120];
        snprintf(msg, sizeof msg, "Input should be an integer from %lld to %lld", min, max);
        add_error(errors, name, msg, json_is_integer(v) ? "int_range" : "int_type");
        return -1;
    }
    return json_integer_value(v);
}

static json_t *check_create(json_t *body, json_t *args, int allow_private)
{
    json_t *errors = json_array();
    if (!json_is_object(body)) {
        add_error(errors, NULL, "Input should be an object", "model_type");
        return errors;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int known = 0;
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
            known |= strcmp(key, FIELDS[i]) == 0;
        if (!known)
            json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "body", key, "msg",
                                                    "Extra inputs are not permitted", "type", "extra_forbidden"));
    }
    json_t *name = json_object_get(body, "name");
    if (!name)
        add_error(errors, "name", "Field required", "missing");
    else if (!json_is_string(name) || json_string_length(name) == 0 || utf8_chars(json_string_value(name)) > 255)
        add_error(errors, "name", "Input should be a string of 1 to 255 characters", "string_type");

    json_t *function_id = json_object_get(body, "function_id");
    if (function_id && !json_is_null(function_id) &&
        (!json_is_string(function_id) || !csa_is_uuid(json_string_value(function_id))))
        add_error(errors, "function_id", "Input should be a function id (a UUID) or null for every function",
                  "uuid_parsing");

    json_t *metric = json_object_get(body, "metric");
    const struct metric_rule *m = NULL;
    for (size_t i = 0; json_is_string(metric) && i < sizeof METRICS / sizeof METRICS[0]; i++)
        if (strcmp(json_string_value(metric), METRICS[i].name) == 0)
            m = &METRICS[i];
    if (!metric)
        add_error(errors, "metric", "Field required", "missing");
    else if (!m)
        add_error(errors, "metric",
                  "Input should be 'init_p95_ms', 'cold_start_rate', 'regression' or 'init_cost_monthly_usd'", "enum");

    json_t *threshold = json_object_get(body, "threshold");
    double t = json_is_number(threshold) ? json_number_value(threshold) : NAN;
    if (!threshold)
        add_error(errors, "threshold", "Field required", "missing");
    else if (!json_is_number(threshold))
        add_error(errors, "threshold", "Input should be a number", "float_type");
    else if (m && (!(t >= 0) || t > m->max_threshold)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Input should be from 0 to %g for %s", m->max_threshold, m->name);
        add_error(errors, "threshold", msg, "float_range");
    }
    long long window = int_field(body, "window_minutes", m ? m->default_window_min : 60, 1, 43200, errors);
    long long min_samples = int_field(body, "min_samples", 1, 1, 100000, errors);

    json_t *url = json_object_get(body, "webhook_url");
    char why[300];
    if (!url)
        add_error(errors, "webhook_url", "Field required", "missing");
    else if (!json_is_string(url))
        add_error(errors, "webhook_url", "Input should be a string", "string_type");
    else if (csa_webhook_check_url(json_string_value(url), allow_private, why, sizeof why) < 0)
        add_error(errors, "webhook_url", why, strstr(why, "refused") ? "url_refused" : "url_parsing");

    json_t *format = json_object_get(body, "format");
    if (format && !json_is_null(format) &&
        (!json_is_string(format) ||
         (strcmp(json_string_value(format), "json") != 0 && strcmp(json_string_value(format), "slack") != 0)))
        add_error(errors, "format", "Input should be 'json' or 'slack'", "enum");

    if (json_array_size(errors) > 0)
        return errors;
    json_decref(errors);
    json_object_set_new(args, "rule",
                        json_pack("{s:O, s:O?, s:s, s:f, s:I, s:I, s:O, s:s}", "name", name, "function_id",
                                  json_is_null(function_id) ? NULL : function_id, "metric", m->name, "threshold", t,
                                  "window_minutes", (json_int_t)window, "min_samples", (json_int_t)min_samples,
                                  "webhook_url", url, "format",
                                  json_is_string(format) ? json_string_value(format) : "json"));
    return NULL;
}

json_t *csa_alerts_check_request(const char *method, json_t *body, json_t *args, int allow_private)
{
    if (strcmp(method, "POST") == 0)
        return check_create(body, args, allow_private);
    return NULL;
}

void csa_alert_webhook_origin(const char *url, char *out, size_t out_size)
{
    csa_webhook_url u;
    char why[200];
    out[0] = '\0';
    if (csa_webhook_parse_url(url, &u, why, sizeof why) == 0)
        snprintf(out, out_size, "%s://%s%s%s:%s", u.tls ? "https" : "http", u.ipv6_literal ? "[" : "", u.host,
                 u.ipv6_literal ? "]" : "", u.port);
}

json_t *csa_alert_rule_json(const PGresult *res, int row, int col)
{
    char origin[300];
    csa_alert_webhook_origin(PQgetvalue(res, row, col + 7), origin, sizeof origin);
    double threshold = strtod(PQgetvalue(res, row, col + 4), NULL);
    json_t *t = threshold == floor(threshold) && fabs(threshold) < 9e15 ? json_integer((json_int_t)threshold)
                                                                        : json_real(threshold);
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:o, s:i, s:i, s:s, s:s, s:s}", "id", PQgetvalue(res, row, col), "name",
        PQgetvalue(res, row, col + 1), "scope", PQgetisnull(res, row, col + 2) ? "project" : "function", "function_id",
        PQgetisnull(res, row, col + 2) ? json_null() : json_string(PQgetvalue(res, row, col + 2)), "metric",
        PQgetvalue(res, row, col + 3), "threshold", t, "window_minutes", atoi(PQgetvalue(res, row, col + 5)),
        "min_samples", atoi(PQgetvalue(res, row, col + 6)), "webhook_origin", origin, "format",
        PQgetvalue(res, row, col + 8), "created_at", PQgetvalue(res, row, col + 9));
}

static csa_status db_failed(PGconn *conn, PGresult *res, const char *what, char *detail)
{
    csa_status st = csa_db_failure(conn, res, what, detail, CSA_DETAIL_MAX);
    PQclear(res);
    return st;
}

static csa_status create_rule(PGconn *conn, const char *project_id, json_t *rule, json_t **out, char *detail)
{
    json_t *fid = json_object_get(rule, "function_id");
    const char *function_id = json_is_string(fid) ? json_string_value(fid) : NULL;
    if (function_id) {
        const char *p[] = {function_id, project_id};
        PGresult *res = csa_db_exec(conn, "SELECT 1 FROM functions WHERE id = $1 AND project_id = $2", 2, p);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            return db_failed(conn, res, "alert function lookup", detail);
        int found = PQntuples(res) == 1;
        PQclear(res);
        if (!found) {
            snprintf(detail, CSA_DETAIL_MAX, "function_id: no function %s in this project", function_id);
            return CSA_ERR_NOT_FOUND;
        }
    }
    unsigned char raw[32];
    char secret[sizeof CSA_ALERT_SECRET_PREFIX + 2 * sizeof raw];
    randombytes_buf(raw, sizeof raw);
    memcpy(secret, CSA_ALERT_SECRET_PREFIX, sizeof CSA_ALERT_SECRET_PREFIX - 1);
    sodium_bin2hex(secret + sizeof CSA_ALERT_SECRET_PREFIX - 1, 2 * sizeof raw + 1, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    char threshold[40], window[16], min_samples[16], cap[16];
    snprintf(threshold, sizeof threshold, "%.17g", json_real_value(json_object_get(rule, "threshold")));
    snprintf(window, sizeof window, "%lld", (long long)json_integer_value(json_object_get(rule, "window_minutes")));
    snprintf(min_samples, sizeof min_samples, "%lld",
             (long long)json_integer_value(json_object_get(rule, "min_samples")));
    snprintf(cap, sizeof cap, "%d", CSA_ALERTS_MAX_PER_PROJECT);
    const char *params[] = {project_id,
                            function_id,
                            json_string_value(json_object_get(rule, "name")),
                            json_string_value(json_object_get(rule, "metric")),
                            threshold,
                            window,
                            min_samples,
                            json_string_value(json_object_get(rule, "webhook_url")),
                            json_string_value(json_object_get(rule, "format")),
                            secret,
                            cap};
    /* the cap is checked in the statement itself (two creations at the same moment may both pass
     * it: it bounds the work of a project, it is not a quota to the rule) */
    PGresult *res = csa_db_exec(
        conn,
        "WITH n AS (SELECT count(*) AS n FROM alert_rules WHERE project_id = $1::uuid)"
        " INSERT INTO alert_rules AS r (project_id, function_id, name, metric, threshold, window_minutes, min_samples,"
        "   webhook_url, format, secret)"
        " SELECT $1::uuid, $2::uuid, $3, $4, $5::float8, $6::int, $7::int, $8, $9, $10 FROM n WHERE n.n < $11::int"
        " RETURNING " CSA_ALERT_RULE_COLUMNS,
        11, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sodium_memzero(secret, sizeof secret);
        return db_failed(conn, res, "alert create", detail);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        sodium_memzero(secret, sizeof secret);
        snprintf(detail, CSA_DETAIL_MAX, "This project already holds %d alert rules, the most it may; delete one first",
                 CSA_ALERTS_MAX_PER_PROJECT);
        return CSA_ERR_CONFLICT;
    }
    *out = csa_alert_rule_json(res, 0, 0);
    PQclear(res);
    json_object_set_new(*out, "secret", json_string(secret));
    json_object_set_new(*out, "secret_note",
                        json_string("Shown once: X-Coldstart-Signature is sha256=HMAC-SHA256(body) keyed with it"));
    sodium_memzero(secret, sizeof secret);
    return CSA_OK;
}

static csa_status list_rules(PGconn *conn, const char *project_id, json_t **out, char *detail)
{
    const char *params[] = {project_id};
    PGresult *res = csa_db_exec(
        conn,
        "SELECT " CSA_ALERT_RULE_COLUMNS ","
        "  (SELECT json_agg(json_build_object('function_id', s.function_id, 'function_name', f.function_name,"
        "     'since', " TS_UTC(
            "s.since") ", 'value', s.value) ORDER BY s.since, f.function_name)"
                       "   FROM alert_states s JOIN functions f ON f.id = s.function_id"
                       "   WHERE s.rule_id = r.id AND s.state = 'firing'),"
                       "  o.pending, o.delivered, o.failed, " TS_UTC(
                           "o.last_attempt_at") ", o.last_error"
                                                " FROM alert_rules r LEFT JOIN LATERAL ("
                                                "   SELECT count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL) AS pending,"
                                                "     count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,"
                                                "     count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed,"
                                                "     max(last_attempt_at) AS last_attempt_at,"
                                                "     (array_agg(last_error ORDER BY last_attempt_at DESC NULLS LAST))[1] AS last_error"
                                                "   FROM alert_outbox WHERE rule_id = r.id) o ON true"
                                                " WHERE r.project_id = $1 ORDER BY r.created_at, r.id",
        1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "alert list", detail);
    json_t *list = json_array();
    const int c = CSA_ALERT_RULE_NCOLUMNS;
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *rule = csa_alert_rule_json(res, r, 0);
        json_t *firing = PQgetisnull(res, r, c) ? json_array() : json_loads(PQgetvalue(res, r, c), 0, NULL);
        json_object_set_new(rule, "firing", firing ? firing : json_array());
        json_object_set_new(
            rule, "deliveries",
            json_pack("{s:I, s:I, s:I, s:o, s:o}", "pending", (json_int_t)strtoll(PQgetvalue(res, r, c + 1), NULL, 10),
                      "delivered", (json_int_t)strtoll(PQgetvalue(res, r, c + 2), NULL, 10), "failed",
                      (json_int_t)strtoll(PQgetvalue(res, r, c + 3), NULL, 10), "last_attempt_at",
                      PQgetisnull(res, r, c + 4) ? json_null() : json_string(PQgetvalue(res, r, c + 4)), "last_error",
                      PQgetisnull(res, r, c + 5) ? json_null() : json_string(PQgetvalue(res, r, c + 5))));
        json_array_append_new(list, rule);
    }
    PQclear(res);
    *out = json_pack("{s:o}", "alerts", list);
    return CSA_OK;
}

static csa_status delete_rule(PGconn *conn, const char *project_id, const char *rule_id, json_t **out, char *detail)
{
    if (!csa_is_uuid(rule_id)) {
        snprintf(detail, CSA_DETAIL_MAX, "Alert rule not found");
        return CSA_ERR_NOT_FOUND;
    }
    const char *params[] = {rule_id, project_id};
    PGresult *res = csa_db_exec(conn, "DELETE FROM alert_rules WHERE id = $1 AND project_id = $2 RETURNING id", 2,
                                params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "alert delete", detail);
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        snprintf(detail, CSA_DETAIL_MAX, "Alert rule not found");
        return CSA_ERR_NOT_FOUND;
    }
    *out = json_pack("{s:s, s:b}", "id", rule_id, "deleted", 1);
    return CSA_OK;
}

csa_status csa_alerts_run(PGconn *conn, const char *method, const char *project_id, const char *rule_id, json_t *args,
                          json_t **out, char *detail)
{
    if (strcmp(method, "POST") == 0)
        return create_rule(conn, project_id, json_object_get(args, "rule"), out, detail);
    if (strcmp(method, "DELETE") == 0)
        return delete_rule(conn, project_id, rule_id, out, detail);
    return list_rules(conn, project_id, out, detail);
}
