/*
 * deployments.h: a function's deployments and the comparison of two of them (issue 17).
 *
 * A deployment is a function's code_id, else 'version:' || function_version (migrations/004);
 * function_deployments lists them with first and last time seen. A deployment's counts, init
 * percentiles, init cost and per-package self times come from its day sketches (day_sketches.h,
 * migrations/006) plus its cold starts not folded yet (exact), so that one read's work does not
 * grow with the traffic; the comparison's statistical test runs on the same read: every on-demand
 * init duration of each deployment, from its day sketches (compare.h: csa_compare_sketches), or
 * exactly while none of either deployment's days is folded. Init percentiles count
 * on-demand cold starts only (start_kind "cold" or absent): provisioned and proactive inits delay no request and are
 * reported as counts. Init cost is counted as cost.h says, over each deployment's life (all its cold starts, first to
 * last seen). Like queries.h: every function takes the caller's project id and filters by it in SQL, returns CSA_OK
 * with a new JSON body in *out (caller frees), or an error with a client message in detail (at most CSA_DETAIL_MAX
 * bytes).
 */
#ifndef CSA_DEPLOYMENTS_H
#define CSA_DEPLOYMENTS_H

#include "cost.h"
#include "error.h"

#include <jansson.h>
#include <libpq-fe.h>

#define CSA_DEPLOYMENTS_PAGE 100       /* deployments listed, newest first */
#define CSA_DEPLOYMENT_MODE_SAMPLES 20 /* newest cold starts whose most common runtime, memory, arch is shown */
/* The newest on-demand cold starts per side that Grafana's regression rule tests
 * (grafana/provisioning/alerting/cold-start-alerts.yml, in SQL over the rows); the API's comparison
 * tests all of them, from the day sketches (compare.h). */
#define CSA_DEPLOYMENT_MAX_SAMPLES 2000
#define CSA_DEPLOYMENT_ID_MAX 80 /* 'version:' + 64 characters fits */

/* GET /api/v1/functions/{id}/deployments; prices: the configured price per GB-second (cost.h). */
csa_status csa_deployments_list(PGconn *conn, const csa_prices *prices, const char *project_id, const char *function_id,
                                json_t **out, char *detail);

/* GET /api/v1/functions/{id}/compare?base&head: base and head are deployment ids or NULL (head:
 * the latest deployment; base: the one first seen before head); prices price the change's
 * init_cost and each package's share of it. */
csa_status csa_deployments_compare(PGconn *conn, const csa_prices *prices, const char *project_id,
                                   const char *function_id, const char *base, const char *head, json_t **out,
                                   char *detail);

#endif
