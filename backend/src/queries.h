/*
 * queries.h: the read API and key management, as functions of a database connection. Each takes
 * the caller's project id (from its API key) and filters by it in SQL, so no query can see
 * another project's rows. Each returns CSA_OK with a new JSON body in *out, or an error status
 * with a short client-facing message in detail (database messages go to the log only).
 */
#ifndef CSA_QUERIES_H
#define CSA_QUERIES_H

#include "cost.h"
#include "error.h"
#include "rules.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#define CSA_DETAIL_MAX 256

typedef struct csa_list_params {
    int limit;               /* 1..200 */
    const char *cursor;      /* opaque, from a previous page's next_cursor; NULL for the first */
    const char *name_prefix; /* NULL for all */
} csa_list_params;

/* GET /api/v1/functions; prices: the configured price per GB-second for the init cost (cost.h). */
csa_status csa_query_list_functions(PGconn *conn, const csa_prices *prices, const char *project_id,
                                    const csa_list_params *params, json_t **out, char *detail);

/* GET /api/v1/functions/{id}; from/to are RFC 3339 strings or NULL (default: the last 7 days).
 * A malformed id, an unknown id and another project's id all give CSA_ERR_NOT_FOUND. Whole UTC
 * days come from the day sketches (day_sketches.h), the rest from the rows; the module breakdown
 * aggregates at most max_samples module timings read row by row (its memory bound: about 16
 * bytes each); a window that holds more is CSA_ERR_VALIDATION, saying so, and nothing more is
 * read. */
csa_status csa_query_function_detail(PGconn *conn, const csa_rules *rules, const csa_prices *prices,
                                     const char *project_id, const char *function_id, const char *from, const char *to,
                                     long long max_samples, json_t **out, char *detail);

/* GET /api/v1/api-keys */
csa_status csa_query_list_keys(PGconn *conn, const char *project_id, json_t **out, char *detail);
/* POST /api/v1/api-keys: name may be NULL; scopes are CSA_SCOPE_* bits (keys.h), checked by the
 * caller against the creating key's. The new key is in the body, once. */
csa_status csa_query_create_key(PGconn *conn, const char *project_id, const char *name, unsigned scopes, json_t **out,
                                char *detail);
/* DELETE /api/v1/api-keys/{id}: refuses to revoke the project's last active key with the admin
 * scope unless force (nobody could manage keys afterwards). */
csa_status csa_query_revoke_key(PGconn *conn, const char *project_id, const char *key_id, int force, json_t **out,
                                char *detail);
/* POST /api/v1/projects (admin): creates a project and its two keys (projects.h): "api_key" is the
 * admin key (all scopes), "ingest_key" the ingest-only key. */
csa_status csa_query_create_project(PGconn *conn, const char *name, const char *slug, json_t **out, char *detail);

#endif
