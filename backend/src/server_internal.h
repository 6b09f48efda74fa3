/*
 * server_internal.h: what the files of the HTTP server share (server.h is its public face).
 *
 *   server.c           workers (one event loop each), start-up, signals, the drain, timers
 *   connections.c      connection tracking, deadlines, evhttp's own errors rewritten, the header gate
 *   responses.c        sending a response (JSON, CORS, rate-limit headers, request log)
 *   dispatch.c         the dispatcher: every check before a handler, off-loop work, one exit
 *   routes.c           the route table: one line per route
 *   handlers_ingest.c  POST /api/v1/ingest, /ingest/batch, /ingest/firehose
 *   handlers_query.c   the read API and health
 *   handlers_admin.c   API keys and projects
 *   handlers_alerts.c  alert rules (alerts.h)
 *
 * Threads: everything here runs on a worker's event-loop thread except what is marked
 * "any thread" (the executors' and writer's completion callbacks).
 */
#ifndef CSA_SERVER_INTERNAL_H
#define CSA_SERVER_INTERNAL_H

#include "authfail.h"
#include "config.h"
#include "db.h"
#include "error.h"
#include "executor.h"
#include "firehose.h"
#include "keys.h"
#include "queries.h"
#include "ratelimit.h"
#include "rules.h"
#include "validate.h"
#include "writer.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define CSA__CONN_BUCKETS 4096
/* evhttp's own hard cap on a body is a route's limit plus this: a body a little over the limit
 * is still read so that the dispatcher answers 413 in our format; above it evhttp refuses (and
 * connections.c rewrites its page into our format). */
#define CSA__HARD_BODY_CAP_EXTRA (4 * 1024 * 1024)
/* The header gate (connections.c): a body up to this size is read before its key is checked (the
 * dispatcher then checks it); a larger or chunked one only after. A route that takes no body
 * accepts at most this much. */
#define CSA__GATE_SMALL_BODY (64 * 1024)
#define CSA__GATE_HEAD_MAX (16 * 1024) /* = evhttp's header cap (server.c): beyond it evhttp refuses */
#define CSA__GATE_LINE_MAX 1024        /* longer header lines are skipped: no header we read is that long */

enum { CSA__GATE_HEAD, CSA__GATE_IDLE, CSA__GATE_PENDING };

/* What the gate reads of a request head: just enough to pick the route and check the key. */
typedef struct csa__gate_head {
    char line[CSA__GATE_LINE_MAX]; /* the line being read */
    size_t line_len;
    int line_too_long;
    size_t bytes; /* of the head so far */
    int lines;    /* complete lines so far (0: the request line is next) */
    char method[8];
    char path[128];
    char key[CSA_KEY_LEN + 8];    /* X-API-Key (a longer value is cut: it fails the key check) */
    char fh_key[CSA_KEY_LEN + 8]; /* X-Amz-Firehose-Access-Key */
    char real_ip[CSA_ADDR_MAX];   /* X-Real-IP */
    char forwarded[CSA_ADDR_MAX]; /* the last entry of X-Forwarded-For */
    long long content_length;     /* -1: none */
    int chunked;
} csa__gate_head;

typedef struct csa__worker csa__worker;

/* One accepted connection, tracked from evhttp's bufferevent callback until evhttp frees it. */
typedef struct csa__conn {
    struct bufferevent *bev;       /* we hold one reference, so the pointer stays valid */
    struct csa__conn *hash_next;   /* bucket chain */
    struct csa__conn *prev, *next; /* all connections of the worker */
    double mark;                   /* accept time, or the time of the last response */
    int busy;                      /* a request is in our hands (not reading) */
    int cut;                       /* deadline passed, socket shut down */
    int own_reply;                 /* we are writing a response (see on_output_added) */
    int swallow;                   /* drop everything evhttp still writes: ours replaced it */
    int rewriting;                 /* on_output_added is editing the buffer itself */
    csa__worker *w;
    /* the header gate: the current request's head, read as it arrives, and what was decided */
    int gate;           /* CSA__GATE_HEAD (reading a head), _IDLE, _PENDING (key lookup) */
    unsigned gate_seq;  /* bumped per request, so a late lookup finds its request gone */
    int gate_lookups;   /* lookups in flight: the track outlives its connection until 0 */
    csa_status refusal; /* why evhttp will refuse the body (its 413 is rewritten to this) */
    long refusal_retry; /* Retry-After of a 429 refusal */
    char refusal_detail[128];
    csa__gate_head head;
} csa__conn;

typedef struct csa__request csa__request;
typedef struct csa__gate_job csa__gate_job;

struct csa__worker {
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sweep;
    struct event *stop_ev;
    struct event *maintain_ev;   /* worker 0 only: hourly partition upkeep */
    struct event *fold_ev;       /* worker 0 only: folds the rollup deltas every few seconds */
    struct evhttp *metrics_http; /* worker 0 only: the METRICS_PORT listener */
    struct event *done_ev;       /* wakes the loop when off-loop work reported */
    pthread_mutex_t done_lock;
    csa__request *done_head;  /* requests whose off-loop work is done, not yet answered */
    csa__gate_job *gate_done; /* key lookups of the header gate, reported, not yet acted on */
    csa__conn *buckets[CSA__CONN_BUCKETS];
    csa__conn *all;
    int live;   /* tracked connections */
    int cap;    /* connection cap of this worker */
    int paused; /* listener disabled because live >= cap */
    unsigned long long request_seq;
    const csa_config *cfg;
};

/* The server's shared state, set up by csa_server_run. */
typedef struct csa__server {
    const csa_config *cfg;
    csa_db_pool *pool; /* reads and key management (statement_timeout applies) */
    csa_keycache *keys;
    csa_writer *writer;
    csa_executor *executor;      /* reads, on QUERY_THREADS threads */
    csa_executor *auth_executor; /* key lookups, on their own threads and connections */
    csa_db_pool *auth_pool;
    csa_executor *health_executor; /* health's database check: its own thread and connection, so
                                      that it never waits behind key lookups or reads */
    csa_db_pool *health_pool;
    csa_ratelimit *limits;
    csa_authfail *authfail; /* failed authentications per client address */
    csa_rules *rules;
    csa__worker *workers;
    int nworkers;
    atomic_int stopping;
    atomic_int inflight; /* requests waiting for off-loop work */
    unsigned instance;   /* random per process: request ids stay unique across replicas */
} csa__server;

extern csa__server csa__g;

/* ---- requests ------------------------------------------------------------------------------- */

/*
 * The one shape of a handler, and of the step that finishes off-loop work:
 *   - CSA_OK after setting ctx->reply (and ctx->reply_status, default 200; a NULL reply sends no
 *     body), or after handing the request to off-loop work (csa__defer_query, csa__defer_write:
 *     the work owns ctx until it reports);
 *   - an error status, with ctx->detail (csa__fail) and for validation ctx->errors.
 * The dispatcher answers and frees the request in one place (csa__complete). A handler never
 * sends or frees; `body` is the parsed JSON body (borrowed; NULL for routes without one).
 */
typedef csa_status (*csa__handler)(csa__request *ctx, json_t *body);
typedef csa_status (*csa__finish_fn)(csa__request *ctx);

/* What a handler works with. Lives until the response is sent (or the client is gone). */
struct csa__request {
    csa__worker *w;
    struct evhttp_request *req; /* NULL once the connection closed under us */
    char request_id[48];
    char method[8];
    char path[128];
    char path_id[64];     /* the {id} segment of routes that take one */
    csa_key_identity who; /* the authenticated key: project, scopes, what rate limits count */
    double started;
    int route_index; /* for metrics; -1 when no route matched */
    int has_rate;    /* add X-RateLimit-* headers */
    csa_rate_result rate;
    json_t *args;   /* the query string, normalised by the route's rules (owned) */
    json_t *fields; /* the JSON body, normalised by the route's rules (owned; NULL without rules) */
    /* the outcome (see csa__handler) */
    json_t *reply;     /* body to send on success (owned) */
    int reply_status;  /* HTTP status of a successful reply; 0 = 200 */
    csa_status status; /* off-loop work's outcome */
    char detail[512];  /* an error's message (at least CSA_DETAIL_MAX for queries.h) */
    json_t *errors;    /* an error's field errors (owned) */
    /* work done off the event loop (writer or executor), answered by `finish` */
    int deferred;              /* handed to off-loop work, which owns the request */
    csa_write_item item;       /* writes: rows and the writer's verdict */
    csa__finish_fn finish;     /* runs on the event loop once the work is reported */
    csa__request *done_next;   /* worker's list of reported requests */
    int firehose;              /* a Firehose route: errors in Firehose's response shape */
    char client[CSA_ADDR_MAX]; /* the client's address (csa__client_address), for failed authentications */
    char firehose_request_id[CSA_FIREHOSE_MAX_REQUEST_ID + 1]; /* X-Amz-Firehose-Request-Id, else the body's */
    size_t firehose_counts[4]; /* records, accepted, invalid, ignored: for the metrics once committed */
};

/* ---- routes.c: the route table -------------------------------------------------------------- */

typedef enum csa__body_kind {
    CSA__BODY_NONE,          /* none: at most CSA__GATE_SMALL_BODY bytes are read, then ignored */
    CSA__BODY_JSON,          /* a JSON body, parsed before the handler */
    CSA__BODY_JSON_OPTIONAL, /* the same, or empty */
    CSA__BODY_RAW,           /* Content-Type checked as for JSON; the handler reads the bytes */
} csa__body_kind;

typedef enum csa__body_limit {
    CSA__LIMIT_SINGLE, /* MAX_BODY_SINGLE */
    CSA__LIMIT_BATCH,  /* MAX_BODY_BATCH */
} csa__body_limit;

#define CSA__ROUTE_ADMIN_TOKEN 1u /* needs the APP_SECRET_KEY bearer token instead of a key */
#define CSA__ROUTE_FIREHOSE 2u    /* key also in X-Amz-Firehose-Access-Key; errors in Firehose's shape */

#define CSA__RATE_NONE (-1) /* not rate limited */

/*
 * A route, and what the dispatcher checks before its handler runs, in this order: method and
 * path, body size and Content-Type, the key (X-API-Key) or the admin token, the key's scope (403),
 * the rate limit of its class per key and per project (429), the JSON body, the query rules and
 * the body rules (400). A route with scope 0 and without CSA__ROUTE_ADMIN_TOKEN needs nothing.
 */
typedef struct csa__route {
    enum evhttp_cmd_type method;
    const char *path;             /* "{id}" stands for one path segment, copied to ctx->path_id */
    unsigned scope;               /* CSA_SCOPE_* the key must have; 0 = no key */
    int rate_class;               /* CSA_RATE_INGEST, CSA_RATE_QUERY or CSA__RATE_NONE */
    csa__body_kind body;          /* what the body is */
    csa__body_limit limit;        /* its size limit (CSA__BODY_NONE: CSA__GATE_SMALL_BODY) */
    const csa_param_rule *query;  /* rules of the query string (validate.h); NULL: none read */
    const csa_param_rule *fields; /* rules of a JSON body's fields; NULL: the handler validates */
    csa__handler handler;
    unsigned flags; /* CSA__ROUTE_* */
} csa__route;

extern const csa__route csa__routes[];
extern const size_t csa__nroutes;

/* Does path match route r? For a route with {id}, copies the segment into id (cut to id_size). */
int csa__route_matches(const csa__route *r, const char *path, char *id, size_t id_size);
/* The byte limit of a route's body. */
size_t csa__route_body_limit(const csa__route *r);
const char *csa__method_name(enum evhttp_cmd_type m);

/* ---- responses.c ---------------------------------------------------------------------------- */

double csa__now_mono(void);
/* Sends status + JSON body (stolen, may be NULL for no body) and logs the request line. */
void csa__send_json(csa__request *ctx, int http_status, const char *reason, json_t *body);
/* Sends the error body (Firehose's shape on Firehose routes); errors (may be NULL) is stolen. */
void csa__send_error(csa__request *ctx, csa_status status, const char *detail, json_t *errors);
/* The allowed origin to echo for this request, or NULL. */
const char *csa__cors_origin(struct evhttp_request *req);
/* Logs an error evhttp answered itself. */
void csa__log_evhttp_error(csa__worker *w, const char *request_id, int status);
void csa__request_id(csa__worker *w, char out[48]);
void csa__request_free(csa__request *ctx);

/* ---- dispatch.c ----------------------------------------------------------------------------- */

/* evhttp's request callback (arg: the worker). */
void csa__on_request(struct evhttp_request *req, void *arg);
/* Event loop: answers every request whose off-loop work reported, and resumes gate lookups. */
void csa__on_work_reported(evutil_socket_t fd, short what, void *arg);
/* Any thread: hands a request whose off-loop work is done back to its event loop. */
void csa__report_done(csa__request *ctx);
/* Writes detail (printf format) into ctx->detail and returns status. */
csa_status csa__fail(csa__request *ctx, csa_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a validation error with field errors (stolen). */
csa_status csa__invalid(csa__request *ctx, json_t *errors);
/* Answers (ctx->reply or the error) and frees ctx, unless st is CSA_OK and the work owns it. */
void csa__complete(csa__request *ctx, csa_status st);
/* Marks ctx as waiting for off-loop work: counted for the drain, told when the client leaves.
 * csa__cancel_wait undoes it when the work could not be handed on. */
void csa__begin_wait(csa__request *ctx);
void csa__cancel_wait(csa__request *ctx);

/* A read run on the executor with a pooled connection (statement_timeout applies). */
typedef csa_status (*csa__query_fn)(PGconn *conn, csa__request *ctx, json_t **out);
/* Runs fn off the loop; its reply (or error) is answered when it reports. Returns CSA_OK
 * (deferred) or CSA_ERR_UNAVAILABLE when the executor's queue is full. */
csa_status csa__defer_query(csa__request *ctx, csa__query_fn fn);
/* Parses the query string into a new object of name -> string (the last of a repeated name
 * wins). Returns NULL when it is malformed (or holds %00 or non-UTF-8). */
json_t *csa__query_params(struct evhttp_request *req);
/* A query string's argument as a string, or NULL. */
const char *csa__arg_str(const csa__request *ctx, const char *name);

/* ---- connections.c -------------------------------------------------------------------------- */

/* evhttp's bufferevent callback: the one place we see every connection (arg: the worker). */
struct bufferevent *csa__on_new_connection(struct event_base *base, void *arg);
/* Every sweep interval: releases freed connections, cuts those past the request deadline. */
void csa__on_sweep(evutil_socket_t fd, short what, void *arg);
csa__conn *csa__conn_of_request(csa__worker *w, struct evhttp_request *req);
/* A request was answered: the gate reads the next head. */
void csa__gate_reset(csa__conn *t);
/* Lookups of the gate came back (event loop): acts on each and frees the list. */
void csa__gate_resume_all(csa__gate_job *list);
void csa__gate_jobs_free(csa__gate_job *list);
/* The last entry of an X-Forwarded-For value, trimmed. */
void csa__last_forwarded(const char *xff, char out[CSA_ADDR_MAX]);
/* The client's address as the failed-authentication limit counts it (TRUSTED_PROXIES). */
void csa__client_address(struct evhttp_connection *evcon, const char *real_ip, const char *forwarded,
                         char out[CSA_ADDR_MAX]);

/* ---- handlers ------------------------------------------------------------------------------- */

csa_status csa__handle_health(csa__request *ctx, json_t *body);
csa_status csa__handle_ingest(csa__request *ctx, json_t *body);
csa_status csa__handle_ingest_batch(csa__request *ctx, json_t *body);
csa_status csa__handle_ingest_firehose(csa__request *ctx, json_t *body);
csa_status csa__handle_list_functions(csa__request *ctx, json_t *body);
csa_status csa__handle_function_detail(csa__request *ctx, json_t *body);
csa_status csa__handle_deployments(csa__request *ctx, json_t *body);
csa_status csa__handle_compare(csa__request *ctx, json_t *body);
csa_status csa__handle_cold_starts(csa__request *ctx, json_t *body);
csa_status csa__handle_cold_start_typical(csa__request *ctx, json_t *body);
csa_status csa__handle_cold_start_tree(csa__request *ctx, json_t *body);
csa_status csa__handle_list_keys(csa__request *ctx, json_t *body);
csa_status csa__handle_create_key(csa__request *ctx, json_t *body);
csa_status csa__handle_revoke_key(csa__request *ctx, json_t *body);
csa_status csa__handle_create_project(csa__request *ctx, json_t *body);
csa_status csa__handle_alerts(csa__request *ctx, json_t *body);

#endif
