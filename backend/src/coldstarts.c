/* coldstarts.c: see coldstarts.h. */
#include "coldstarts.h"

#include "cursor.h"
#include "db.h"
#include "queries.h"
#include "uuid.h"

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

/* ---- the reads ----------------------------------------------------------------------------- */

static const char *arg(const json_t *args, const char *name) { return json_string_value(json_object_get(args, name)); }

/* Part i of the keyset cursor [timestamp, invocation_id] (validate.h's CSA_PARAM_KEYSET), or NULL. */
static const char *cursor_part(const json_t *args, size_t i)
{
    return json_string_value(json_array_get(json_object_get(args, "cursor"), i));
}

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
    const char *params[] = {function_id,          project_id,           arg(args, "from"), arg(args, "to"),
                            cursor_part(args, 0), cursor_part(args, 1), limit_plus_one};
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
        char key[CSA_CURSOR_NAME_MAX]; /* a timestamp of about 30 bytes, '|', an id of at most 1020 bytes */
        char cursor[CSA_CURSOR_MAX];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(res, last, 2 + 3), PQgetvalue(res, last, 2));
        csa_cursor_encode(key, cursor, sizeof cursor);
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
