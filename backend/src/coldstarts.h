/*
 * coldstarts.h: a function's cold starts one by one (issue 18: the icicle graph of a chosen cold
 * start, or of the window's typical one).
 *
 * A cold start is an invocation row with cold_start true, whatever its start kind (cold, proactive,
 * provisioned). The list is newest first and keyset-paged on (timestamp, invocation_id): the
 * cursor is "<timestamp with microseconds>|<invocation_id>" of the last row shown in the page
 * cursor codec (cursor.h), so
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

/* GET /api/v1/functions/{id}/cold-starts: args as normalised by the route's rules
 * (CSA_QUERY_COLD_STARTS, validate.c): "limit" an integer, "cursor" absent or
 * [timestamp, invocation_id], "from"/"to" absent or RFC 3339. */
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
