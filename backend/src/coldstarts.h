/*
 * coldstarts.h: a function's cold starts one by one (issue 18: the icicle graph of a chosen cold
 * start, or of the window's typical one).
 *
 * A cold start is an invocation row with cold_start true, whatever its start kind (cold, proactive,
 * provisioned). The list is newest first and keyset-paged on (timestamp, invocation_id): the
 * cursor is the hex of "<timestamp with microseconds>|<invocation_id>" of the last row shown, so
 * a page costs the same however deep it is (idx_invocations_function_cold). The typical cold start
 * of a window is the on-demand one (start kind cold or absent, as everywhere) carrying a module
 * tree whose init duration is nearest the median init duration of the window's on-demand cold
 * starts (the detail's init p50); ties go to the newest.
 * Like queries.h: every function takes the caller's project id and filters by it in SQL, returns
 * CSA_OK with a new JSON body in *out (caller frees), or an error with a client message in detail
 * (at most CSA_DETAIL_MAX bytes). A malformed, unknown or other project's function id is
 * CSA_ERR_NOT_FOUND.
 */
#ifndef CSA_COLDSTARTS_H
#define CSA_COLDSTARTS_H

#include "error.h"

#include <jansson.h>
#include <libpq-fe.h>

#define CSA_COLD_STARTS_PAGE 50      /* default page size */
#define CSA_COLD_STARTS_PAGE_MAX 200 /* largest page */

/* Which read a query string is for: what csa_cold_starts_check_args accepts. */
typedef enum {
    CSA_COLD_STARTS_LIST,    /* from, to, limit, cursor */
    CSA_COLD_STARTS_TYPICAL, /* from, to */
    CSA_COLD_STARTS_ONE,     /* invocation_id (required) */
} csa_cold_starts_read;

/*
 * Checks and normalises the query string of one of the reads. args (name -> string, from the
 * query string) is updated in place: "limit" becomes an integer (default CSA_COLD_STARTS_PAGE),
 * a valid "cursor" is replaced by "cursor_ts" and "cursor_id". from/to are RFC 3339 date-times
 * (default: the 7 days up to now); the window must be non-empty and at most max_window_days long.
 * now is the current time in seconds since the epoch. Returns NULL when valid, else a new array
 * of errors in Pydantic's shape, each naming its parameter (loc ["query", name]).
 */
json_t *csa_cold_starts_check_args(json_t *args, csa_cold_starts_read read, int max_window_days, double now);

/* GET /api/v1/functions/{id}/cold-starts: args as normalised by csa_cold_starts_check_args. */
csa_status csa_cold_starts_list(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                                json_t **out, char *detail);

/* GET /api/v1/functions/{id}/cold-starts/typical: the window's typical cold start with its module
 * tree ("cold_start" null when no on-demand cold start in the window carries a tree). */
csa_status csa_cold_starts_typical(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                                   json_t **out, char *detail);

/* GET /api/v1/functions/{id}/cold-starts/tree?invocation_id=: one cold start with its module tree
 * (the newest, should a client have reused an invocation id); CSA_ERR_NOT_FOUND when the function
 * has no cold start of that id. */
csa_status csa_cold_starts_one(PGconn *conn, const char *project_id, const char *function_id, const json_t *args,
                               json_t **out, char *detail);

#endif
