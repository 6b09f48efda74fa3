/*
 * alerts.h: alert rules and their notifications (issue 17; docs/alerts.md, migrations/005).
 *
 * The API half (alerts_api.c: POST/GET/DELETE /api/v1/alerts) checks a rule and stores it with a
 * new signing secret, shown once. The evaluator (alerts.c) runs on a thread of its own with its
 * own database connection, never on an event loop: every ALERT_EVAL_INTERVAL seconds it computes
 * each rule's figure per function and, when a function's state changes (ok -> firing, firing ->
 * ok), writes the notification into alert_outbox in the same transaction as the new state. Every
 * second it sends the outbox's due rows (webhook.h), signed, retried with backoff until delivered
 * or ALERT_MAX_ATTEMPTS: at least once, with a delivery id to deduplicate.
 */
#ifndef CSA_ALERTS_H
#define CSA_ALERTS_H

#include "config.h"
#include "error.h"

#include <jansson.h>
#include <libpq-fe.h>

#define CSA_ALERTS_MAX_PER_PROJECT 100 /* rules a project may hold */
#define CSA_ALERTS_MAX_FUNCTIONS 1000  /* functions one project-wide rule evaluates per round */
#define CSA_ALERT_SECRET_PREFIX "whsec_"

/*
 * Checks a request of the alert routes before its query runs. POST: the body, field by field
 * (unknown fields refused; every error with its place, in Pydantic's shape); when valid, the
 * normalised rule is stored in args under "rule". GET and DELETE take no body or arguments.
 * Returns NULL when valid, else a new array of errors (caller owns it).
 */
json_t *csa_alerts_check_request(const char *method, json_t *body, json_t *args, int allow_private);

/*
 * Runs a checked request for the key's project: POST creates the rule args["rule"] (out: the rule
 * with its secret, the only time it is shown), GET lists the project's rules with the functions
 * firing and the state of their deliveries, DELETE removes rule_id (404 when it is not the
 * project's). Returns CSA_OK with a new body in *out, or an error with a message in detail
 * (CSA_DETAIL_MAX bytes).
 */
csa_status csa_alerts_run(PGconn *conn, const char *method, const char *project_id, const char *rule_id, json_t *args,
                          json_t **out, char *detail);

/* Builds the public JSON of a rule from a row of `SELECT ALERT_RULE_COLUMNS FROM alert_rules r`,
 * starting at column `col`. Shared by the API and the evaluator. */
#define CSA_ALERT_RULE_COLUMNS \
    "r.id, r.name, r.function_id, r.metric, r.threshold, r.window_minutes, r.min_samples, r.webhook_url, " \
    "r.format, to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define CSA_ALERT_RULE_NCOLUMNS 10
json_t *csa_alert_rule_json(const PGresult *res, int row, int col);

/* "http://host:port" (or https://) of a webhook URL: what the API shows (the path may hold a token, as Slack's
 * do). Writes "" when the URL does not parse. */
void csa_alert_webhook_origin(const char *url, char *out, size_t out_size);

typedef struct csa_alerts csa_alerts;

/* Starts the evaluator thread (database: cfg->database_url). Returns NULL when it cannot start
 * (logged). */
csa_alerts *csa_alerts_start(const csa_config *cfg);

/* Stops it: an evaluation or delivery under way is abandoned (a delivery is not counted as an
 * attempt and is sent again later), the thread joined, everything freed. NULL is allowed. */
void csa_alerts_stop(csa_alerts *alerts);

#endif
