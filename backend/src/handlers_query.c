/*
 * handlers_query.c: the read API (functions, deployments, comparisons) and health. The query
 * string has passed its route's rules (validate.c) before these run; each read runs on the
 * executor with a pooled connection under statement_timeout.
 */
#include "server_internal.h"

#include "coldstarts.h"
#include "deployments.h"
#include "log.h"
#include "queries.h"

#include <stdio.h>
#include <time.h>

static csa_status q_list_functions(PGconn *conn, csa__request *ctx, json_t **out)
{
    csa_list_params p = {(int)json_integer_value(json_object_get(ctx->args, "limit")), csa__arg_str(ctx, "cursor"),
                         csa__arg_str(ctx, "name_prefix")};
    return csa_query_list_functions(conn, &csa__g.cfg->prices, ctx->who.project_id, &p, out, ctx->detail);
}

static csa_status q_function_detail(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_query_function_detail(conn, csa__g.rules, &csa__g.cfg->prices, ctx->who.project_id, ctx->path_id,
                                     csa__arg_str(ctx, "from"), csa__arg_str(ctx, "to"), csa__g.cfg->max_read_samples,
                                     out, ctx->detail);
}

static csa_status q_deployments(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_deployments_list(conn, &csa__g.cfg->prices, ctx->who.project_id, ctx->path_id, out, ctx->detail);
}

static csa_status q_compare(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_deployments_compare(conn, &csa__g.cfg->prices, ctx->who.project_id, ctx->path_id,
                                   csa__arg_str(ctx, "base"), csa__arg_str(ctx, "head"), out, ctx->detail);
}

/* GET /api/v1/functions?limit&cursor&name_prefix */
csa_status csa__handle_list_functions(csa__request *ctx, json_t *body)
{
    return csa__defer_query(ctx, q_list_functions);
}

/* GET /api/v1/functions/{id}?from&to: the window (default the last 7 days, to defaulting to now)
 * may span at most MAX_READ_WINDOW_DAYS, so that one read's work is bounded: a wider one is 400
 * saying so. */
csa_status csa__handle_function_detail(csa__request *ctx, json_t *body)
{
    json_t *errors = csa_validate_window(ctx->args, csa__g.cfg->max_read_window_days, (double)time(NULL), 0);
    if (errors)
        return csa__invalid(ctx, errors);
    return csa__defer_query(ctx, q_function_detail);
}

/* GET /api/v1/functions/{id}/deployments (deployments.h) */
csa_status csa__handle_deployments(csa__request *ctx, json_t *body) { return csa__defer_query(ctx, q_deployments); }

/* GET /api/v1/functions/{id}/compare?base&head (deployments.h) */
csa_status csa__handle_compare(csa__request *ctx, json_t *body) { return csa__defer_query(ctx, q_compare); }

/* A function's cold starts one by one (coldstarts.h): the query string has passed the route's
 * rules; the list and the typical one read a window (as the detail's, and not empty). */
static csa_status q_cold_starts(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_cold_starts_list(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static csa_status q_cold_start_typical(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_cold_starts_typical(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static csa_status q_cold_start_tree(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_cold_starts_one(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static csa_status cold_start_window_read(csa__request *ctx, csa__query_fn fn)
{
    json_t *errors = csa_validate_window(ctx->args, csa__g.cfg->max_read_window_days, (double)time(NULL), 1);
    if (errors)
        return csa__invalid(ctx, errors);
    return csa__defer_query(ctx, fn);
}

/* GET /api/v1/functions/{id}/cold-starts, .../typical, .../tree */
csa_status csa__handle_cold_starts(csa__request *ctx, json_t *body)
{
    return cold_start_window_read(ctx, q_cold_starts);
}

csa_status csa__handle_cold_start_typical(csa__request *ctx, json_t *body)
{
    return cold_start_window_read(ctx, q_cold_start_typical);
}

csa_status csa__handle_cold_start_tree(csa__request *ctx, json_t *body)
{
    return csa__defer_query(ctx, q_cold_start_tree);
}

/* Health's database check runs on a thread and connection of its own: it never holds up an event
 * loop, a query pool busy with slow reads does not make it "unreachable", and a flood of unknown
 * keys queued for the key-lookup threads does not delay it. */
static void run_health(void *arg)
{
    csa__request *ctx = arg;
    int ok = 0;
    PGconn *conn = csa_db_pool_acquire(csa__g.health_pool, 1000);
    if (conn) {
        PGresult *res = PQexec(conn, "SELECT 1");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        csa_db_pool_release(csa__g.health_pool, conn, !ok);
    }
    ctx->status = ok ? CSA_OK : CSA_ERR_UNAVAILABLE;
}

static void health_done(void *arg) { csa__report_done(arg); }

/* Health answers in its own shape, 200 or 503, never the error body. */
static csa_status finish_health(csa__request *ctx)
{
    char ts[40];
    csa_format_now(ts, sizeof ts);
    int ok = ctx->status == CSA_OK;
    ctx->reply = json_pack("{s:s, s:s, s:s, s:s}", "status", ok ? "healthy" : "unhealthy", "version", CSA_VERSION,
                           "timestamp", ts, "database", ok ? "ok" : "unreachable");
    ctx->reply_status = ok ? 200 : 503;
    return CSA_OK;
}

/* GET /api/v1/health */
csa_status csa__handle_health(csa__request *ctx, json_t *body)
{
    ctx->finish = finish_health;
    csa__begin_wait(ctx);
    if (csa_executor_submit(csa__g.health_executor, run_health, health_done, ctx) == 0)
        return CSA_OK;
    csa__cancel_wait(ctx);
    ctx->status = CSA_ERR_UNAVAILABLE;
    return finish_health(ctx);
}
