/* coldstarts.c: see coldstarts.h. */
#include "coldstarts.h"

#include "db.h"
#include "queries.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* the cursor keeps the stored precision: a millisecond one would skip or repeat rows */
#define TS_UTC_US(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define REAL_COLD "(i.cold_start AND coalesce(i.start_kind, 'cold') = 'cold')"

/* The window [t0, t1): from/to, or the 7 days up to `to` (default now), as the detail reads it. */
#define WINDOW \
    "w AS (SELECT coalesce($3::timestamptz, coalesce($4::timestamptz, now()) - interval '7 days') AS t0," \
    "             coalesce($4::timestamptz, now()) AS t1)," \
    " f AS (SELECT id, project_id FROM functions WHERE id = $1::uuid AND project_id = $2::uuid)"
#define FUNCTION_ONLY " f AS (SELECT id, project_id FROM functions WHERE id = $1::uuid AND project_id = $2::uuid)"

/* The columns of one cold start (cold_start_json reads them from column `c` on), then whether it
 * has a module tree. */
#define COLD_START_COLUMNS \
    "i.invocation_id, i.request_id, " TS_UTC("i.timestamp") " AS ts, " TS_UTC_US( \
        "i.timestamp") " AS ts_us," \
                       " coalesce(i.start_kind, 'cold') AS kind, i.init_type, i.init_duration_ms, i.function_version, i.code_id," \
                       " i.runtime_version, i.memory_allocated_mb, i.module_tree IS NOT NULL AS has_tree"
#define COLD_START_NCOLS 12
#define INVOCATION_ID_MAX_CHARS 255 /* invocations.invocation_id VARCHAR(255), the ingest rule */

static csa_status db_failed(PGconn *conn, PGresult *res, const char *what, char *detail)
{
    if (csa_db_classify(conn, res) == CSA_DB_FAULT_BAD_INPUT) { /* a time csa_parse_rfc3339 took, PostgreSQL not */
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX, "from, to and cursor must hold RFC 3339 date-times PostgreSQL can read");
        return CSA_ERR_VALIDATION;
    }
    csa_status st = csa_db_failure(conn, res, what, detail, CSA_DETAIL_MAX);
    PQclear(res);
    return st;
}

static json_t *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *col_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* One cold start as the API shows it, from COLD_START_COLUMNS starting at column c. */
static json_t *cold_start_json(const PGresult *res, int row, int c)
{
    json_t *o = json_object();
    json_object_set_new(o, "invocation_id", col_str(res, row, c));
    json_object_set_new(o, "request_id", col_str(res, row, c + 1));
    json_object_set_new(o, "timestamp", col_str(res, row, c + 2));
    json_object_set_new(o, "start_kind", col_str(res, row, c + 4));
    json_object_set_new(o, "init_type", col_str(res, row, c + 5));
    json_object_set_new(o, "init_duration_ms", col_int(res, row, c + 6));
    json_object_set_new(o, "function_version", col_str(res, row, c + 7));
    json_object_set_new(o, "code_id", col_str(res, row, c + 8));
    json_object_set_new(o, "runtime_version", col_str(res, row, c + 9));
    json_object_set_new(o, "memory_allocated_mb", col_int(res, row, c + 10));
    json_object_set_new(o, "has_module_tree", json_boolean(strcmp(PQgetvalue(res, row, c + 11), "t") == 0));
    return o;
}

/* The stored tree (jsonb text) as JSON; null when absent or (never expected) unreadable. */
static json_t *tree_json(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    json_error_t jerr;
    json_t *t = json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, &jerr);
    return t ? t : json_null();
}

/* ---- the query string ---------------------------------------------------------------------- */

static void add_error(json_t *errors, const char *param, const char *msg, const char *type)
{
    json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "query", param, "msg", msg, "type", type));
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Lower-case hex into out (NUL-terminated); -1 when not hex, empty, odd, too long or holding a NUL. */
static int hex_decode(const char *in, char *out, size_t out_size)
{
    size_t n = strlen(in);
    if (n == 0 || n % 2 || n / 2 >= out_size)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in[i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        if (v == 0)
            return -1;
        out[i / 2] = (char)v;
    }
    out[n / 2] = '\0';
    return 0;
}

static void hex_encode(const char *in, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && k + 2 < out_size; p++) {
        out[k++] = digits[*p >> 4];
        out[k++] = digits[*p & 15];
    }
    out[k] = '\0';
}

/* An invocation id as ingest accepts it: 1 to 255 characters, no control characters. */
static int invocation_id_ok(const char *s)
{
    if (!s || !*s || utf8_chars(s) > INVOCATION_ID_MAX_CHARS)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* The cursor "<timestamp>|<invocation_id>" (hex): stores its parts in args, or returns -1. */
static int take_cursor(json_t *args, const char *cursor)
{
    char text[64 + INVOCATION_ID_MAX_CHARS * 4 + 2];
    if (hex_decode(cursor, text, sizeof text) != 0)
        return -1;
    char *bar = strchr(text, '|');
    double epoch;
    if (!bar)
        return -1;
    *bar = '\0';
    if (csa_parse_rfc3339(text, &epoch) != 0 || !invocation_id_ok(bar + 1))
        return -1;
    json_t *ts = json_string(text), *id = json_string(bar + 1);
    if (!ts || !id) { /* not UTF-8 */
        json_decref(ts);
        json_decref(id);
        return -1;
    }
    json_object_set_new(args, "cursor_ts", ts);
    json_object_set_new(args, "cursor_id", id);
    json_object_del(args, "cursor");
    return 0;
}

json_t *csa_cold_starts_check_args(json_t *args, csa_cold_starts_read read, int max_window_days, double now)
{
    json_t *errors = json_array();
    if (read == CSA_COLD_STARTS_ONE) {
        const char *id = json_string_value(json_object_get(args, "invocation_id"));
        if (!id)
            add_error(errors, "invocation_id", "Field required: the invocation_id of one of the function's cold starts",
                      "missing");
        else if (!invocation_id_ok(id))
            add_error(errors, "invocation_id", "Input should be 1 to 255 characters without control characters",
                      "string_type");
        goto out;
    }
    static const char *const names[] = {"from", "to"};
    double at[2] = {0, 0};
    int bad_time = 0;
    for (int i = 0; i < 2; i++) {
        const char *v = json_string_value(json_object_get(args, names[i]));
        if (v && csa_parse_rfc3339(v, &at[i]) != 0) {
            add_error(errors, names[i], "Input should be an RFC 3339 date-time with a time zone", "datetime_format");
            bad_time = 1;
        }
    }
    if (!bad_time) {
        double t1 = json_object_get(args, "to") ? at[1] : now;
        double t0 = json_object_get(args, "from") ? at[0] : t1 - 7 * 86400.0;
        if (t0 >= t1)
            add_error(errors, "from", "Input should be earlier than to", "value_error");
        else if (t1 - t0 > (double)max_window_days * 86400.0) {
            char msg[160];
            snprintf(msg, sizeof msg, "The window from..to spans %.0f days; at most %d days can be read at once",
                     (t1 - t0) / 86400.0, max_window_days);
            add_error(errors, "from", msg, "window_too_wide");
        }
    }
    if (read != CSA_COLD_STARTS_LIST)
        goto out;
    const char *limit = json_string_value(json_object_get(args, "limit"));
    long n = CSA_COLD_STARTS_PAGE;
    if (limit) {
        char *end;
        n = strtol(limit, &end, 10);
        if (!*limit || *end || n < 1 || n > CSA_COLD_STARTS_PAGE_MAX) {
            char msg[80];
            snprintf(msg, sizeof msg, "Input should be an integer from 1 to %d", CSA_COLD_STARTS_PAGE_MAX);
            add_error(errors, "limit", msg, "int_parsing");
        }
    }
    json_object_set_new(args, "limit", json_integer(n));
    const char *cursor = json_string_value(json_object_get(args, "cursor"));
    if (cursor && take_cursor(args, cursor) != 0)
        add_error(errors, "cursor", "Not a cursor returned by this endpoint", "value_error");
out:
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        return NULL;
    }
    return errors;
}

/* ---- the reads ----------------------------------------------------------------------------- */

static const char *arg(const json_t *args, const char *name) { return json_string_value(json_object_get(args, name)); }

static csa_status function_not_found(char *detail)
{
    snprintf(detail, CSA_DETAIL_MAX, "Function not found");
    return CSA_ERR_NOT_FOUND;
}

csa_status csa_cold_starts_list(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                                json_t **out, char *detail)
{
    if (!csa_is_uuid(function_id))
        return function_not_found(detail);
    int limit = (int)json_integer_value(json_object_get(args, "limit"));
    if (limit < 1 || limit > CSA_COLD_STARTS_PAGE_MAX)
        limit = CSA_COLD_STARTS_PAGE;
    char limit_plus_one[16];
    snprintf(limit_plus_one, sizeof limit_plus_one, "%d", limit + 1);
    const char *params[] = {
        function_id,   project_id, arg(args, "from"), arg(args, "to"), arg(args, "cursor_ts"), arg(args, "cursor_id"),
        limit_plus_one};
    /* one row per cold start of the page, or one row of NULLs when the page is empty; none when
     * the function is not the project's */
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_cold_starts_list",
        "WITH " WINDOW " SELECT " TS_UTC("w.t0") ", " TS_UTC(
            "w.t1") ", c.* FROM f CROSS JOIN w LEFT JOIN LATERAL ("
                    "   SELECT " COLD_START_COLUMNS ", i.timestamp AS at FROM invocations i"
                    "   WHERE i.function_id = f.id AND i.project_id = f.project_id AND i.cold_start"
                    "     AND i.timestamp >= w.t0 AND i.timestamp < w.t1"
                    "     AND ($5::timestamptz IS NULL OR (i.timestamp <= $5::timestamptz"
                    "          AND (i.timestamp, i.invocation_id COLLATE \"C\") < ($5::timestamptz, $6::text COLLATE \"C\")))"
                    "   ORDER BY i.timestamp DESC, i.invocation_id COLLATE \"C\" DESC LIMIT $7::int) c ON true"
                    " ORDER BY c.at DESC, c.invocation_id COLLATE \"C\" DESC",
        7, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "cold starts", detail);
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return function_not_found(detail);
    }
    json_t *list = json_array();
    int shown = 0;
    for (int r = 0; r < rows && shown < limit; r++) {
        if (PQgetisnull(res, r, 2))
            continue;
        json_array_append_new(list, cold_start_json(res, r, 2));
        shown++;
    }
    json_t *next = json_null();
    if (rows > limit) {
        const int last = limit - 1;
        char key[64 + INVOCATION_ID_MAX_CHARS * 4 + 2];
        char cursor[2 * sizeof key + 1];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(res, last, 2 + 3), PQgetvalue(res, last, 2));
        hex_encode(key, cursor, sizeof cursor);
        next = json_string(cursor);
    }
    json_t *window = json_pack("{s:o, s:o}", "from", col_str(res, 0, 0), "to", col_str(res, 0, 1));
    PQclear(res);
    *out = json_pack("{s:o, s:o, s:o}", "window", window, "cold_starts", list, "next_cursor", next);
    return CSA_OK;
}

csa_status csa_cold_starts_typical(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                                   json_t **out, char *detail)
{
    if (!csa_is_uuid(function_id))
        return function_not_found(detail);
    const char *params[] = {function_id, project_id, arg(args, "from"), arg(args, "to")};
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_cold_starts_typical",
        "WITH " WINDOW ","
        " m AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY i.init_duration_ms) AS median, count(*) AS n,"
        "         count(*) FILTER (WHERE i.module_tree IS NOT NULL) AS with_tree"
        "       FROM f CROSS JOIN w JOIN invocations i ON i.function_id = f.id AND i.project_id = f.project_id"
        "       WHERE " REAL_COLD " AND i.timestamp >= w.t0 AND i.timestamp < w.t1)"
        " SELECT " TS_UTC("w.t0") ", " TS_UTC(
            "w.t1") ", m.median, m.n, m.with_tree, c.*"
                    " FROM f CROSS JOIN w CROSS JOIN m LEFT JOIN LATERAL ("
                    "   SELECT " COLD_START_COLUMNS ", i.module_tree::text FROM invocations i"
                    "   WHERE i.function_id = f.id AND i.project_id = f.project_id AND " REAL_COLD
                    "     AND i.timestamp >= w.t0 AND i.timestamp < w.t1"
                    "     AND i.module_tree IS NOT NULL AND i.init_duration_ms IS NOT NULL"
                    "   ORDER BY abs(i.init_duration_ms - m.median), i.timestamp DESC, i.invocation_id COLLATE \"C\" DESC"
                    "   LIMIT 1) c ON true",
        4, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "typical cold start", detail);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return function_not_found(detail);
    }
    json_t *median = PQgetisnull(res, 0, 2) ? json_null() : json_real(strtod(PQgetvalue(res, 0, 2), NULL));
    json_t *cold = json_null();
    if (!PQgetisnull(res, 0, 5)) {
        cold = cold_start_json(res, 0, 5);
        json_object_set_new(cold, "module_tree", tree_json(res, 0, 5 + COLD_START_NCOLS));
    }
    *out = json_pack("{s:{s:o, s:o}, s:o, s:o, s:o, s:o}", "window", "from", col_str(res, 0, 0), "to",
                     col_str(res, 0, 1), "median_init_duration_ms", median, "on_demand_cold_starts", col_int(res, 0, 3),
                     "with_module_tree", col_int(res, 0, 4), "cold_start", cold);
    PQclear(res);
    return CSA_OK;
}

csa_status csa_cold_starts_one(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                               json_t **out, char *detail)
{
    if (!csa_is_uuid(function_id))
        return function_not_found(detail);
    const char *params[] = {function_id, project_id, arg(args, "invocation_id")};
    PGresult *res = csa_db_exec_prepared(
        conn, "csa_cold_starts_one",
        "WITH " FUNCTION_ONLY " SELECT c.* FROM f LEFT JOIN LATERAL ("
        "   SELECT " COLD_START_COLUMNS ", i.module_tree::text FROM invocations i"
        "   WHERE i.function_id = f.id AND i.project_id = f.project_id AND i.cold_start AND i.invocation_id = $3"
        "   ORDER BY i.timestamp DESC LIMIT 1) c ON true",
        3, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_failed(conn, res, "cold start", detail);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return function_not_found(detail);
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        snprintf(detail, CSA_DETAIL_MAX,
                 "Cold start not found: the function has no cold start with this invocation_id");
        return CSA_ERR_NOT_FOUND;
    }
    json_t *cold = cold_start_json(res, 0, 0);
    json_object_set_new(cold, "module_tree", tree_json(res, 0, COLD_START_NCOLS));
    PQclear(res);
    *out = json_pack("{s:o}", "cold_start", cold);
    return CSA_OK;
}
