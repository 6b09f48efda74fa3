/*
 * handlers_admin.c: API keys (scope admin) and projects (the APP_SECRET_KEY token). Bodies have
 * passed their route's rules (validate.c) and are read from ctx->fields.
 */
#include "server_internal.h"

#include "keys.h"
#include "queries.h"

#include <stdio.h>

static const char *field_str(const csa__request *ctx, const char *name)
{
    return json_string_value(json_object_get(ctx->fields, name));
}

static csa_status q_list_keys(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_query_list_keys(conn, ctx->who.project_id, out, ctx->detail);
}

static csa_status q_create_key(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_query_create_key(conn, ctx->who.project_id, field_str(ctx, "name"),
                                (unsigned)json_integer_value(json_object_get(ctx->fields, "scopes")), out, ctx->detail);
}

static csa_status q_revoke_key(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_query_revoke_key(conn, ctx->who.project_id, ctx->path_id,
                                json_is_true(json_object_get(ctx->args, "force")), out, ctx->detail);
}

static csa_status q_create_project(PGconn *conn, csa__request *ctx, json_t **out)
{
    return csa_query_create_project(conn, field_str(ctx, "name"), field_str(ctx, "slug"), out, ctx->detail);
}

/* GET /api/v1/api-keys */
csa_status csa__handle_list_keys(csa__request *ctx, json_t *body) { return csa__defer_query(ctx, q_list_keys); }

/*
 * POST /api/v1/api-keys {"name"?: string, "scopes"?: ["ingest" | "read" | "admin", ...]}.
 * scopes defaults to ["ingest"] (the key for a function). A key can create only keys with scopes
 * it has itself: asking for more is 403 FORBIDDEN, so a leaked key cannot mint a stronger one.
 */
csa_status csa__handle_create_key(csa__request *ctx, json_t *body)
{
    unsigned wanted = (unsigned)json_integer_value(json_object_get(ctx->fields, "scopes"));
    if (wanted & ~ctx->who.scopes) {
        char have[40], want[40];
        csa_scopes_format(ctx->who.scopes, ", ", have, sizeof have);
        csa_scopes_format(wanted, ", ", want, sizeof want);
        return csa__fail(ctx, CSA_ERR_FORBIDDEN,
                         "A key can create only keys with scopes it has itself: asked for %s, this key has %s", want,
                         have);
    }
    ctx->reply_status = 201;
    return csa__defer_query(ctx, q_create_key);
}

/* DELETE /api/v1/api-keys/{id}?force=true */
csa_status csa__handle_revoke_key(csa__request *ctx, json_t *body) { return csa__defer_query(ctx, q_revoke_key); }

/* POST /api/v1/projects {"name", "slug"}: one implementation with `coldstartd create-project`
 * (projects.h). */
csa_status csa__handle_create_project(csa__request *ctx, json_t *body)
{
    ctx->reply_status = 201;
    return csa__defer_query(ctx, q_create_project);
}
