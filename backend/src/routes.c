/*
 * routes.c: the route table of the HTTP API, one line per route (server_internal.h says what each
 * column means and dispatch.c checks it all before the handler runs).
 *
 * Adding a route: write its handler (csa__handler) in a handlers_*.c file and declare it in
 * server_internal.h, put the rules of its query string and JSON body in validate.c, and add its
 * line here. Routes are matched in order: a longer path with {id} after its shorter sibling.
 */
#include "server_internal.h"

#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define DELETE EVHTTP_REQ_DELETE
#define NO_KEY 0
#define INGEST CSA_SCOPE_INGEST
#define READ CSA_SCOPE_READ
#define ADMIN CSA_SCOPE_ADMIN
#define NO_RATE CSA__RATE_NONE
#define NO_BODY CSA__BODY_NONE, CSA__LIMIT_SINGLE
#define JSON_SINGLE CSA__BODY_JSON, CSA__LIMIT_SINGLE
#define JSON_OPTIONAL CSA__BODY_JSON_OPTIONAL, CSA__LIMIT_SINGLE
#define JSON_BATCH CSA__BODY_JSON, CSA__LIMIT_BATCH
#define RAW_BATCH CSA__BODY_RAW, CSA__LIMIT_BATCH

/* clang-format off */
const csa__route csa__routes[] = {
    /* method path                                 scope   rate class       body           query rules                body rules               handler                          flags */
    {GET,    "/api/v1/health",                     NO_KEY, NO_RATE,         NO_BODY,       NULL,                      NULL,                    csa__handle_health,              0},
    {POST,   "/api/v1/ingest",                     INGEST, CSA_RATE_INGEST, JSON_SINGLE,   NULL,                      NULL,                    csa__handle_ingest,              0},
    {POST,   "/api/v1/ingest/batch",               INGEST, CSA_RATE_INGEST, JSON_BATCH,    NULL,                      NULL,                    csa__handle_ingest_batch,        0},
    {POST,   "/api/v1/ingest/firehose",            INGEST, CSA_RATE_INGEST, RAW_BATCH,     NULL,                      NULL,                    csa__handle_ingest_firehose,     CSA__ROUTE_FIREHOSE},
    {GET,    "/api/v1/functions",                  READ,   CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_LIST_FUNCTIONS,  NULL,                    csa__handle_list_functions,      0},
    {GET,    "/api/v1/functions/{id}",             READ,   CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_FUNCTION_DETAIL, NULL,                    csa__handle_function_detail,     0},
    {GET,    "/api/v1/functions/{id}/deployments", READ,   CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_COMPARE,         NULL,                    csa__handle_deployments,         0},
    {GET,    "/api/v1/functions/{id}/compare",     READ,   CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_COMPARE,         NULL,                    csa__handle_compare,             0},
    {GET,    "/api/v1/functions/{id}/cold-starts", READ,   CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_COLD_STARTS,     NULL,                    csa__handle_cold_starts,         0},
    {GET,    "/api/v1/functions/{id}/cold-starts/typical", READ, CSA_RATE_QUERY, NO_BODY,     CSA_QUERY_FUNCTION_DETAIL, NULL,                    csa__handle_cold_start_typical,  0},
    {GET,    "/api/v1/functions/{id}/cold-starts/tree", READ, CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_COLD_START_TREE, NULL,                    csa__handle_cold_start_tree,     0},
    {GET,    "/api/v1/api-keys",                   ADMIN,  CSA_RATE_QUERY,  NO_BODY,       NULL,                      NULL,                    csa__handle_list_keys,           0},
    {POST,   "/api/v1/api-keys",                   ADMIN,  CSA_RATE_QUERY,  JSON_OPTIONAL, NULL,                      CSA_BODY_CREATE_KEY,     csa__handle_create_key,          0},
    {DELETE, "/api/v1/api-keys/{id}",              ADMIN,  CSA_RATE_QUERY,  NO_BODY,       CSA_QUERY_REVOKE_KEY,      NULL,                    csa__handle_revoke_key,          0},
    {POST,   "/api/v1/projects",                   NO_KEY, NO_RATE,         JSON_SINGLE,   NULL,                      CSA_BODY_CREATE_PROJECT, csa__handle_create_project,      CSA__ROUTE_ADMIN_TOKEN},
    {GET,    "/api/v1/alerts",                     READ,   CSA_RATE_QUERY,  NO_BODY,       NULL,                      NULL,                    csa__handle_alerts,              0},
    {POST,   "/api/v1/alerts",                     ADMIN,  CSA_RATE_QUERY,  JSON_SINGLE,   NULL,                      NULL,                    csa__handle_alerts,              0},
    {DELETE, "/api/v1/alerts/{id}",                ADMIN,  CSA_RATE_QUERY,  NO_BODY,       NULL,                      NULL,                    csa__handle_alerts,              0},
};
/* clang-format on */

const size_t csa__nroutes = sizeof csa__routes / sizeof csa__routes[0];

int csa__route_matches(const csa__route *r, const char *path, char *id, size_t id_size)
{
    const char *slot = strstr(r->path, "{id}");
    if (!slot)
        return strcmp(r->path, path) == 0;
    size_t n = (size_t)(slot - r->path);
    if (strncmp(r->path, path, n) != 0)
        return 0;
    const char *rest = path + n, *end = strchr(rest, '/');
    size_t id_len = end ? (size_t)(end - rest) : strlen(rest);
    if (id_len == 0 || strcmp(end ? end : "", slot + 4) != 0)
        return 0;
    snprintf(id, id_size, "%.*s", (int)id_len, rest); /* longer ids are cut and then fail the UUID check */
    return 1;
}

size_t csa__route_body_limit(const csa__route *r)
{
    if (r->body == CSA__BODY_NONE)
        return CSA__GATE_SMALL_BODY;
    return r->limit == CSA__LIMIT_BATCH ? csa__g.cfg->max_body_batch : csa__g.cfg->max_body_single;
}

const char *csa__method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "OTHER";
}
