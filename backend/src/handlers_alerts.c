/*
 * handlers_alerts.c: GET, POST /api/v1/alerts and DELETE /api/v1/alerts/{id}. The alert module
 * (alerts.h) checks the request (its body rules live there, with the rules' own semantics) and
 * runs it on the executor like every other read.
 */
#include "server_internal.h"

#include "alerts.h"

#include <string.h>

static csa_status q_alerts(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_alerts_run(conn, ctx->method, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

csa_status csa__handle_alerts(csa__request *ctx, json_t *body)
{
    json_t *errors = csa_alerts_check_request(ctx->method, body, ctx->args, csa__g.cfg->alert_allow_private_webhooks);
    if (errors)
        return csa__invalid(ctx, errors);
    ctx->reply_status = strcmp(ctx->method, "POST") == 0 ? 201 : 0;
    return csa__defer_query(ctx, q_alerts);
}
