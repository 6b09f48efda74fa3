/* server.c: see server.h. */
#include "server.h"

#include "authfail.h"
#include "db.h"
#include "error.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"
#include "writer.h"
#include "executor.h"
#include "firehose.h"
#include "projects.h"
#include "queries.h"
#include "ratelimit.h"
#include "rules.h"
#include "deployments.h"
#include "coldstarts.h"
#include "ui.h"
#include "alerts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_INTERVAL_MS 100
#define CONN_BUCKETS 4096
#define ROLLUP_FOLD_INTERVAL_S 5 /* folding the rollup deltas (migrations/002) */
#define AUTH_THREADS 2            /* key lookups that miss the cache, each with its own connection */
/* evhttp's own hard cap on a body; above it evhttp answers 413 itself (not in our JSON format).
 * Our limits (MAX_BODY_SINGLE / MAX_BODY_BATCH) sit below it and answer in the spec's format. */
#define HARD_BODY_CAP_EXTRA (4 * 1024 * 1024)
/* The header gate (see "authenticate before the body"): a body up to this size is read before its
 * key is checked (the check is then on_request's); a larger or chunked one only after. A request
 * to a route that takes no body may send at most this much. */
#define GATE_SMALL_BODY (64 * 1024)
#define GATE_HEAD_MAX (16 * 1024) /* = evhttp's header cap (worker_init): beyond it evhttp refuses */
#define GATE_LINE_MAX 1024        /* longer header lines are skipped: no header we read is that long */

enum { GATE_HEAD, GATE_IDLE, GATE_PENDING };

/* What the gate reads of a request head: just enough to pick the route and check the key. */
typedef struct gate_head {
    char line[GATE_LINE_MAX]; /* the line being read */
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
} gate_head;

typedef struct worker worker;

/* One accepted connection, tracked from evhttp's bufferevent callback until evhttp frees it. */
typedef struct conn_track {
    struct bufferevent *bev;        /* we hold one reference, so the pointer stays valid */
    struct conn_track *hash_next;   /* bucket chain */
    struct conn_track *prev, *next; /* all connections of the worker */
    double mark;                    /* accept time, or the time of the last response */
    int busy;                       /* a request is in our hands (not reading) */
    int cut;                        /* deadline passed, socket shut down */
    int own_reply;                  /* we are writing a response (see on_output_added) */
    int swallow;                    /* drop everything evhttp still writes: ours replaced it */
    int rewriting;                  /* on_output_added is editing the buffer itself */
    worker *w;
    /* the header gate: the current request's head, read as it arrives, and what was decided */
    int gate;           /* GATE_HEAD (reading a head), GATE_IDLE, GATE_PENDING (key lookup) */
    unsigned gate_seq;  /* bumped per request, so a late lookup finds its request gone */
    int gate_lookups;   /* lookups in flight: the track outlives its connection until 0 */
    csa_status refusal; /* why evhttp will refuse the body (its 413 is rewritten to this) */
    long refusal_retry; /* Retry-After of a 429 refusal */
    char refusal_detail[128];
    gate_head head;
} conn_track;

struct worker {
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sweep;
    struct event *stop_ev;
    struct event *maintain_ev;      /* worker 0 only: hourly partition upkeep */
    struct event *fold_ev;          /* worker 0 only: folds the rollup deltas every few seconds */
    struct evhttp *metrics_http;    /* worker 0 only: the METRICS_PORT listener */
    struct event *done_ev;          /* wakes the loop when the writer reported on requests */
    pthread_mutex_t done_lock;
    struct request_ctx *done_head;  /* requests the writer has reported on, not yet answered */
    struct gate_job *gate_done;     /* key lookups of the header gate, reported, not yet acted on */
    conn_track *buckets[CONN_BUCKETS];
    conn_track *all;
    int live;            /* tracked connections */
    int cap;             /* connection cap of this worker */
    int paused;          /* listener disabled because live >= cap */
    unsigned long long request_seq;
    const csa_config *cfg;
};

static struct {
    const csa_config *cfg;
    csa_db_pool *pool;
    csa_keycache *keys;
    csa_writer *writer;
    csa_executor *executor;
    csa_executor *auth_executor; /* key lookups, on their own threads and connections */
    csa_db_pool *auth_pool;
    csa_executor *health_executor; /* health's database check: its own thread and connection, so
                                      that it never waits behind key lookups or reads */
    csa_db_pool *health_pool;
    csa_ratelimit *limits;
    csa_authfail *authfail; /* failed authentications per client address */
    csa_rules *rules;
    worker *workers;
    int nworkers;
    atomic_int stopping;
    atomic_int inflight; /* requests waiting for the writer */
    unsigned instance;   /* random per process: request ids stay unique across replicas */
} g;

/* ---- time and connection tracking ----------------------------------------------------------- */

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned bucket_of(const void *p) { return (unsigned)(((uintptr_t)p >> 4) * 2654435761u) % CONN_BUCKETS; }

static conn_track *track_find(worker *w, const struct bufferevent *bev)
{
    for (conn_track *t = w->buckets[bucket_of(bev)]; t; t = t->hash_next)
        if (t->bev == bev)
            return t;
    return NULL;
}

static void track_remove(worker *w, conn_track *t)
{
    conn_track **pp = &w->buckets[bucket_of(t->bev)];
    while (*pp != t)
        pp = &(*pp)->hash_next;
    *pp = t->hash_next;
    if (t->prev)
        t->prev->next = t->next;
    else
        w->all = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->live--;
}

static void update_listener(worker *w)
{
    if (!w->bound)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);
    if (!w->paused && w->live >= w->cap) {
        evconnlistener_disable(l);
        w->paused = 1;
        csa_logf(CSA_LOG_WARN, "worker %d: connection cap %d reached, not accepting", w->index, w->cap);
    } else if (w->paused && w->live < w->cap) {
        evconnlistener_enable(l);
        w->paused = 0;
    }
}

/* Removes the last n bytes of an output buffer and appends `replacement` (may be NULL). */
static void replace_tail(conn_track *t, struct evbuffer *out, size_t n, const char *replacement)
{
    t->rewriting = 1;
    struct evbuffer *keep = evbuffer_new();
    if (keep) {
        evbuffer_remove_buffer(out, keep, evbuffer_get_length(out) - n);
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_buffer(out, keep);
        evbuffer_free(keep);
    }
    if (replacement)
        evbuffer_add(out, replacement, strlen(replacement));
    t->rewriting = 0;
}

static void log_evhttp_error(worker *w, const char *request_id, int status);

/*
 * libevent 2.1 answers some bad requests itself (a declared body over its hard cap, a malformed
 * request line or header, an unknown method) with an HTML page, and has no hook to change that.
 * Every response we write is marked (own_reply); a status line of 400 or more that appears in a
 * connection's output without that mark is evhttp's error page. It is replaced by the same error
 * in our JSON format, and the rest of evhttp's page is dropped (such errors always close the
 * connection, so nothing else follows on it).
 */
static void on_output_added(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    conn_track *t = arg;
    if (info->n_added == 0 || t->rewriting)
        return;
    if (t->swallow) {
        replace_tail(t, out, info->n_added, NULL);
        return;
    }
    if (t->own_reply || info->n_added < 12 || info->n_added > 200)
        return;
    char line[201];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(out, &pos, evbuffer_get_length(out) - info->n_added, EVBUFFER_PTR_SET);
    ev_ssize_t got = evbuffer_copyout_from(out, &pos, line, info->n_added);
    if (got < 12)
        return;
    line[got] = '\0';
    int status = 0;
    if (strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 9, "%3d", &status) != 1 || status < 400)
        return;
    csa_status code = status == 413 && t->refusal      ? t->refusal
                      : status == 413                  ? CSA_ERR_TOO_LARGE
                      : status == 405                  ? CSA_ERR_METHOD
                      : status == 400                  ? CSA_ERR_VALIDATION
                      : status == 404                  ? CSA_ERR_NOT_FOUND
                      : status >= 500 && status != 501 ? CSA_ERR_INTERNAL
                                                       : CSA_ERR_VALIDATION;
    char detail[160];
    if (status == 413 && t->refusal)
        snprintf(detail, sizeof detail, "%s", t->refusal_detail);
    else if (code == CSA_ERR_TOO_LARGE)
        snprintf(detail, sizeof detail, "Request body exceeds the limit of %zu bytes", t->w->cfg->max_body_batch);
    else if (status == 501)
        snprintf(detail, sizeof detail, "Unknown HTTP method");
    else
        snprintf(detail, sizeof detail, "Malformed HTTP request");
    json_t *body = csa_error_body(code, detail, NULL);
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return;
    char request_id[48];
    snprintf(request_id, sizeof request_id, "%08x-%d-%llx-%llx", g.instance, t->w->index, (unsigned long long)time(NULL),
             ++t->w->request_seq);
    char response[1024], retry[48] = "";
    if (code == CSA_ERR_RATE_LIMIT || code == CSA_ERR_UNAVAILABLE)
        snprintf(retry, sizeof retry, "Retry-After: %ld\r\n", t->refusal_retry > 0 ? t->refusal_retry : 1);
    if (status == 413 && t->refusal)
        status = csa_status_http(code);
    snprintf(response, sizeof response,
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n"
             "%sConnection: close\r\n\r\n%s",
             status, status == 501 ? "Not Implemented" : csa_status_reason(code), strlen(text), request_id, retry,
             text);
    free(text);
    replace_tail(t, out, info->n_added, response);
    t->swallow = 1;
    log_evhttp_error(t->w, request_id, status);
}

static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);
static void gate_reset(conn_track *t);

/* evhttp asks us for each new connection's bufferevent: the one place we see every connection. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    worker *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    conn_track *t = calloc(1, sizeof *t);
    if (!t)
        return bev; /* untracked, still served */
    bufferevent_incref(bev);
    t->bev = bev;
    t->w = w;
    evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, t);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input_added, t);
    t->mark = now_mono();
    unsigned b = bucket_of(bev);
    t->hash_next = w->buckets[b];
    w->buckets[b] = t;
    t->next = w->all;
    if (w->all)
        w->all->prev = t;
    w->all = t;
    w->live++;
    csa_metrics_connections(1);
    update_listener(w);
    return bev;
}

/* Every SWEEP_INTERVAL_MS: release connections evhttp has freed (bufferevent_free clears all
 * callbacks) and cut those past the whole-request deadline. Shutting the socket down makes evhttp
 * see an error and free the connection itself, so we never free what evhttp owns. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    double now = now_mono();
    double limit = w->cfg->request_timeout_s;
    for (conn_track *t = w->all, *next; t; t = next) {
        next = t->next;
        bufferevent_data_cb rcb, wcb;
        bufferevent_event_cb ecb;
        void *cbarg;
        bufferevent_getcb(t->bev, &rcb, &wcb, &ecb, &cbarg);
        if (!rcb && !wcb && !ecb) {
            if (t->gate_lookups > 0) /* a key lookup still points at it */
                continue;
            track_remove(w, t);
            bufferevent_decref(t->bev);
            free(t);
            csa_metrics_connections(-1);
            continue;
        }
        if (!t->busy && !t->cut && now - t->mark > limit) {
            evutil_socket_t s = bufferevent_getfd(t->bev);
            if (s >= 0) {
                shutdown(s, SHUT_RDWR);
                t->cut = 1;
                csa_logf(CSA_LOG_INFO, "closed a connection past the request deadline (%d s)",
                         w->cfg->request_timeout_s);
            }
        }
    }
    update_listener(w);
}

static conn_track *track_of_request(worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    return evcon ? track_find(w, evhttp_connection_get_bufferevent(evcon)) : NULL;
}

/* ---- requests and responses ----------------------------------------------------------------- */

typedef struct request_ctx request_ctx;
/* Answers a request whose off-loop work is done; returns 0 when the request is finished (the ctx
 * is freed), 1 when it was handed on to more work that now owns the ctx. */
typedef int (*finish_fn)(request_ctx *ctx);

/* What a handler works with. Lives until the response is sent (or the client is gone). */
struct request_ctx {
    worker *w;
    struct evhttp_request *req; /* NULL once the connection closed under us */
    char request_id[48];
    char method[8];
    char path[128];
    char path_id[64];           /* the {id} segment of routes that take one */
    csa_key_identity who;       /* the authenticated key: project, scopes, what rate limits count */
    double started;
    int route_index;            /* for metrics; -1 when no route matched */
    int has_rate;               /* add X-RateLimit-* headers */
    csa_rate_result rate;
    /* work done off the event loop (writer or executor), answered by `finish` */
    csa_write_item item;        /* writes: rows and the writer's verdict */
    finish_fn finish;           /* runs on the event loop once the work is reported */
    request_ctx *done_next;     /* worker's list of reported requests */
    json_t *reply;              /* body to send on success */
    int reply_status;           /* HTTP status of a successful reply (200, 201) */
    csa_status status;          /* query outcome */
    char detail[CSA_DETAIL_MAX];
    json_t *args;               /* query arguments, owned */
    int firehose;               /* a Firehose route: errors in Firehose's response shape */
    char client[CSA_ADDR_MAX];  /* the client's address (client_address), for failed authentications */
    char firehose_request_id[CSA_FIREHOSE_MAX_REQUEST_ID + 1]; /* X-Amz-Firehose-Request-Id, else the body's */
    size_t firehose_counts[4]; /* records, accepted, invalid, ignored: for the metrics once committed */
};

static const char *method_name(enum evhttp_cmd_type m)
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

/* The allowed origin to echo for this request, or NULL. */
static const char *cors_origin(struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin)
        return NULL;
    for (int i = 0; i < g.cfg->ncors; i++) {
        if (strcmp(g.cfg->cors[i], "*") == 0 || strcmp(g.cfg->cors[i], origin) == 0)
            return origin;
    }
    return NULL;
}

static void add_cors_headers(struct evhttp_request *req, struct evkeyvalq *out)
{
    const char *origin = cors_origin(req);
    if (!origin)
        return;
    evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(out, "Vary", "Origin");
    evhttp_add_header(out, "Access-Control-Expose-Headers",
                      "X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset");
}

/* Sends status + JSON body (stolen, may be NULL for no body) and logs the request line. */
static void send_json(request_ctx *ctx, int http_status, const char *reason, json_t *body)
{
    struct evhttp_request *req = ctx->req;
    if (req) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        if (body)
            evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_add_header(out, "X-Request-Id", ctx->request_id);
        if (http_status == 503)
            evhttp_add_header(out, "Retry-After", "1");
        if (ctx->has_rate) {
            char v[32];
            snprintf(v, sizeof v, "%ld", ctx->rate.limit);
            evhttp_add_header(out, "X-RateLimit-Limit", v);
            snprintf(v, sizeof v, "%ld", ctx->rate.remaining);
            evhttp_add_header(out, "X-RateLimit-Remaining", v);
            snprintf(v, sizeof v, "%ld", ctx->rate.reset_s);
            evhttp_add_header(out, "X-RateLimit-Reset", v);
            if (!ctx->rate.allowed)
                evhttp_add_header(out, "Retry-After", v);
        }
        add_cors_headers(req, out);
        if (atomic_load(&g.stopping))
            evhttp_add_header(out, "Connection", "close");
        struct evbuffer *buf = evbuffer_new();
        char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
        if (text) {
            evbuffer_add(buf, text, strlen(text));
            free(text);
        }
        conn_track *t = track_of_request(ctx->w, req);
        if (t) {
            t->busy = 0;
            t->mark = now_mono();
        }
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
        if (t)
            t->own_reply = 1;
        evhttp_send_reply(req, http_status, reason, buf);
        if (t) {
            t->own_reply = 0;
            gate_reset(t); /* what follows on the connection is the next request's head */
        }
        evbuffer_free(buf);
    }
    csa_metrics_request(ctx->route_index, http_status, now_mono() - ctx->started);
    if (ctx->w->cfg->log_requests && csa_log_enabled(CSA_LOG_INFO)) {
        double ms = (now_mono() - ctx->started) * 1000.0;
        json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:f}", "request_id", ctx->request_id, "method", ctx->method,
                              "path", ctx->path, "status", http_status, "duration_ms",
                              (double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
        if (!req)
            json_object_set_new(f, "client_gone", json_true());
        csa_log(CSA_LOG_INFO, "request", f);
    }
    json_decref(body);
}

static void send_error(request_ctx *ctx, csa_status status, const char *detail, json_t *errors)
{
    json_t *body = ctx->firehose ? csa_error_body_firehose(status, detail, ctx->firehose_request_id, errors)
                                 : csa_error_body(status, detail, errors);
    send_json(ctx, csa_status_http(status), csa_status_reason(status), body);
}

static void log_evhttp_error(worker *w, const char *request_id, int status)
{
    if (w->cfg->log_requests && csa_log_enabled(CSA_LOG_INFO))
        csa_log(CSA_LOG_INFO, "request",
                json_pack("{s:s, s:s, s:s, s:i, s:s}", "request_id", request_id, "method", "?", "path", "?", "status",
                          status, "note", "refused by the HTTP parser"));
}

/* One field error in Pydantic's shape, for query-string problems. */
static json_t *query_error(const char *param, const char *msg, const char *type)
{
    return json_pack("[{s:[s,s], s:s, s:s}]", "loc", "query", param, "msg", msg, "type", type);
}

static void ctx_free(request_ctx *ctx)
{
    json_decref(ctx->item.rows);
    json_decref(ctx->reply);
    json_decref(ctx->args);
    free(ctx);
}

/* The client closed its connection while its request waited. */
static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
    request_ctx *ctx = arg;
    ctx->req = NULL;
}

/* Any thread: hand a request whose off-loop work is done back to its event loop. One wake-up per
 * burst and worker, not per request: the loop is only signalled when its list was empty. */
static void report_done(request_ctx *ctx)
{
    worker *w = ctx->w;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL;
    ctx->done_next = w->done_head;
    w->done_head = ctx;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        event_active(w->done_ev, EV_READ, 0);
}

/* A key lookup of the header gate (see "authenticate before the body"). */
typedef struct gate_job {
    worker *w;
    conn_track *t;
    unsigned seq;         /* t->gate_seq when submitted */
    csa_key_identity who; /* key_hash in; project and scopes out */
    csa_status status;
    struct gate_job *next;
} gate_job;

static void gate_resume(gate_job *job);

/* Event-loop thread: answer every request whose work was reported. */
static void on_work_reported(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->done_lock);
    request_ctx *list = w->done_head;
    w->done_head = NULL;
    gate_job *lookups = w->gate_done;
    w->gate_done = NULL;
    pthread_mutex_unlock(&w->done_lock);
    for (gate_job *job = lookups, *next; job; job = next) {
        next = job->next;
        gate_resume(job);
    }
    for (request_ctx *ctx = list, *next; ctx; ctx = next) {
        next = ctx->done_next;
        int handed_on = ctx->finish(ctx);
        atomic_fetch_sub(&g.inflight, 1);
        if (!handed_on)
            ctx_free(ctx);
    }
}

/* Marks the ctx as waiting for off-loop work: counted for the shutdown drain, and told when the
 * client disappears. */
static void begin_wait(request_ctx *ctx)
{
    atomic_fetch_add(&g.inflight, 1);
    evhttp_connection_set_closecb(evhttp_request_get_connection(ctx->req), on_client_gone, ctx);
}

/* Undoes begin_wait when the work could not be handed on (queue full): the answer is given here. */
static void cancel_wait(request_ctx *ctx)
{
    atomic_fetch_sub(&g.inflight, 1);
    evhttp_connection_set_closecb(evhttp_request_get_connection(ctx->req), NULL, NULL);
}

/* ---- ingest --------------------------------------------------------------------------------- */

static void on_write_done(csa_write_item *item) { report_done(item->arg); }

static int finish_write(request_ctx *ctx)
{
    if (ctx->item.status == CSA_OK) {
        json_t *reply = ctx->reply;
        ctx->reply = NULL;
        send_json(ctx, 200, "OK", reply);
    } else if (ctx->item.status == CSA_ERR_UNAVAILABLE) {
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; nothing was stored. Retry later.", NULL);
    } else {
        send_error(ctx, CSA_ERR_INTERNAL, "The records could not be stored.", NULL);
    }
    return 0;
}

/* Queues rows for the writer; the ctx now waits for `finish` (finish_write or one that ends in
 * it). Answers 503 itself and frees the ctx when the writer refuses. */
static void defer_write(request_ctx *ctx, json_t *rows, json_t *reply, finish_fn finish)
{
    ctx->item.rows = rows;
    /* the rows weigh what their body did (their JSON trees a small multiple of it) */
    ctx->item.bytes = ctx->req ? evbuffer_get_length(evhttp_request_get_input_buffer(ctx->req)) : 0;
    ctx->item.done = on_write_done;
    ctx->item.arg = ctx;
    ctx->reply = reply;
    ctx->finish = finish;
    begin_wait(ctx);
    if (csa_writer_submit(g.writer, &ctx->item) < 0) {
        cancel_wait(ctx);
        ctx->item.rows = NULL;
        json_decref(rows);
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; nothing was stored. Retry later.", NULL);
        ctx_free(ctx);
    }
}

static void new_invocation_id(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Completes a normalised record for storage: its project and, if the client sent none, an id. */
static void prepare_row(json_t *row, const char *project_id)
{
    json_object_set_new(row, "project_id", json_string(project_id));
    if (!json_is_string(json_object_get(row, "invocation_id"))) {
        char id[37];
        new_invocation_id(id);
        json_object_set_new(row, "invocation_id", json_string(id));
    }
}

static void handle_ingest(request_ctx *ctx, json_t *body)
{
    json_t *errors = json_array();
    json_t *loc = json_pack("[s]", "body");
    json_t *row = csa_validate_record(body, loc, errors, (double)time(NULL));
    json_decref(loc);
    if (!row) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    json_decref(errors);
    prepare_row(row, ctx->who.project_id);
    json_t *reply = json_pack("{s:s, s:O}", "status", "ok", "invocation_id", json_object_get(row, "invocation_id"));
    json_t *rows = json_array();
    json_array_append_new(rows, row);
    defer_write(ctx, rows, reply, finish_write);
}

static void handle_ingest_batch(request_ctx *ctx, json_t *body)
{
    json_t *errors = json_array();
    json_t *items = csa_validate_batch_envelope(body, errors);
    if (!items) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    json_decref(errors);
    double now = (double)time(NULL);
    json_t *rows = json_array();
    json_t *failures = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *item_errors = json_array();
        json_t *loc = json_pack("[s, s, I]", "body", "invocations", (json_int_t)i);
        json_t *row = csa_validate_record(item, loc, item_errors, now);
        json_decref(loc);
        if (row) {
            prepare_row(row, ctx->who.project_id);
            json_array_append_new(rows, row);
            json_decref(item_errors);
        } else {
            json_array_append_new(failures, json_pack("{s:I, s:o}", "index", (json_int_t)i, "errors", item_errors));
        }
    }
    size_t processed = json_array_size(rows), failed = json_array_size(failures);
    json_t *reply = json_pack("{s:s, s:I, s:I, s:o}", "status", failed ? "partial" : "ok", "processed",
                              (json_int_t)processed, "failed", (json_int_t)failed, "failures", failures);
    if (processed == 0) {
        json_decref(rows);
        send_json(ctx, 200, "OK", reply);
        ctx_free(ctx);
        return;
    }
    defer_write(ctx, rows, reply, finish_write);
}

/* A Firehose delivery committed (or not): metrics and Firehose's timestamp, then as any ingest. */
static int finish_firehose_write(request_ctx *ctx)
{
    if (ctx->item.status == CSA_OK) {
        csa_metrics_firehose(ctx->firehose_counts[0], ctx->firehose_counts[1], ctx->firehose_counts[2],
                             ctx->firehose_counts[3]);
        json_object_set_new(ctx->reply, "timestamp", json_integer(csa_epoch_ms()));
    }
    return finish_write(ctx);
}

/*
 * POST /api/v1/ingest/firehose: an Amazon Data Firehose delivery of CloudWatch Logs subscription
 * data (firehose.h). Its record lines become rows through the same validator and writer as
 * /api/v1/ingest/batch; an invalid line is skipped and counted, never fails the delivery (Firehose
 * would send it again until its retry duration runs out). 200 only after the commit, in
 * Firehose's response shape.
 */
static void handle_ingest_firehose(request_ctx *ctx, json_t *body)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *data = len ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
    const char *encoding = evhttp_find_header(evhttp_request_get_input_headers(ctx->req), "Content-Encoding");
    int gzipped = encoding && strcasecmp(encoding, "gzip") == 0;
    csa_firehose_result res;
    csa_firehose_result_init(&res);
    if (encoding && !gzipped && strcasecmp(encoding, "identity") != 0) {
        send_error(ctx, CSA_ERR_MEDIA_TYPE, "Content-Encoding must be gzip or absent", NULL);
        goto done;
    }
    char detail[512];
    csa_status st = csa_firehose_decode(data, len, gzipped, NULL, (double)time(NULL), &res, detail, sizeof detail);
    if (!ctx->firehose_request_id[0])
        snprintf(ctx->firehose_request_id, sizeof ctx->firehose_request_id, "%s", res.request_id);
    if (st != CSA_OK) {
        send_error(ctx, st, detail, NULL);
        goto done;
    }
    if (csa_log_enabled(CSA_LOG_INFO))
        csa_log(CSA_LOG_INFO, "firehose delivery",
                json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "request_id", ctx->request_id,
                          "firehose_request_id", ctx->firehose_request_id, "records", (json_int_t)res.records,
                          "control_messages", (json_int_t)res.control, "log_events", (json_int_t)res.events, "accepted",
                          (json_int_t)res.accepted, "invalid", (json_int_t)res.invalid, "ignored",
                          (json_int_t)res.ignored));
    json_t *reply =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "requestId", ctx->firehose_request_id, "timestamp",
                  (json_int_t)csa_epoch_ms(), "records", (json_int_t)res.records, "control_messages",
                  (json_int_t)res.control, "log_events", (json_int_t)res.events, "accepted", (json_int_t)res.accepted,
                  "invalid", (json_int_t)res.invalid, "ignored", (json_int_t)res.ignored, "failures", res.failures);
    size_t counts[4] = {res.records, res.accepted, res.invalid, res.ignored};
    memcpy(ctx->firehose_counts, counts, sizeof counts);
    if (json_array_size(res.rows) == 0) { /* nothing to commit */
        csa_metrics_firehose(counts[0], counts[1], counts[2], counts[3]);
        send_json(ctx, 200, "OK", reply);
        goto done;
    }
    size_t i;
    json_t *row;
    json_array_foreach(res.rows, i, row) prepare_row(row, ctx->who.project_id);
    json_t *rows = json_incref(res.rows);
    csa_firehose_result_cleanup(&res);
    defer_write(ctx, rows, reply, finish_firehose_write); /* owns ctx from here */
    return;
done:
    csa_firehose_result_cleanup(&res);
    ctx_free(ctx);
}

/* ---- queries (run on the executor) ---------------------------------------------------------- */

typedef csa_status (*query_fn)(PGconn *conn, request_ctx *ctx, json_t **out);

typedef struct query_job {
    request_ctx *ctx;
    query_fn fn;
} query_job;

static void run_query(void *arg)
{
    query_job *job = arg;
    request_ctx *ctx = job->ctx;
    PGconn *conn = csa_db_pool_acquire(g.pool, 5000);
    if (!conn) {
        ctx->status = CSA_ERR_UNAVAILABLE;
        snprintf(ctx->detail, sizeof ctx->detail, "The database is unavailable; retry later.");
        return;
    }
    json_t *out = NULL;
    ctx->status = job->fn(conn, ctx, &out);
    ctx->reply = out;
    csa_db_pool_release(g.pool, conn, ctx->status == CSA_ERR_UNAVAILABLE);
}

static void query_done(void *arg)
{
    query_job *job = arg;
    request_ctx *ctx = job->ctx;
    free(job);
    report_done(ctx);
}

static int finish_query(request_ctx *ctx)
{
    if (ctx->status == CSA_OK) {
        json_t *reply = ctx->reply;
        ctx->reply = NULL;
        send_json(ctx, ctx->reply_status ? ctx->reply_status : 200, ctx->reply_status == 201 ? "Created" : "OK",
                  reply);
    } else {
        send_error(ctx, ctx->status, ctx->detail, NULL);
    }
    return 0;
}

static void defer_query(request_ctx *ctx, query_fn fn)
{
    query_job *job = malloc(sizeof *job);
    ctx->finish = finish_query;
    if (job) {
        job->ctx = ctx;
        job->fn = fn;
        begin_wait(ctx);
        if (csa_executor_submit(g.executor, run_query, query_done, job) == 0)
            return;
        cancel_wait(ctx);
        free(job);
    }
    send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; retry later.", NULL);
    ctx_free(ctx);
}

static const char *arg_str(request_ctx *ctx, const char *name)
{
    json_t *v = json_object_get(ctx->args, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static csa_status q_list_functions(PGconn *conn, request_ctx *ctx, json_t **out)
{
    csa_list_params p = {(int)json_integer_value(json_object_get(ctx->args, "limit")), arg_str(ctx, "cursor"),
                         arg_str(ctx, "name_prefix")};
    return csa_query_list_functions(conn, &g.cfg->prices, ctx->who.project_id, &p, out, ctx->detail);
}

static csa_status q_function_detail(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_query_function_detail(conn, g.rules, &g.cfg->prices, ctx->who.project_id, ctx->path_id, arg_str(ctx, "from"),
                                     arg_str(ctx, "to"), out, ctx->detail);
}

static csa_status q_list_keys(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_query_list_keys(conn, ctx->who.project_id, out, ctx->detail);
}

static csa_status q_create_key(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_query_create_key(conn, ctx->who.project_id, arg_str(ctx, "name"),
                                (unsigned)json_integer_value(json_object_get(ctx->args, "scopes")), out, ctx->detail);
}

static csa_status q_revoke_key(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_query_revoke_key(conn, ctx->who.project_id, ctx->path_id, json_is_true(json_object_get(ctx->args, "force")),
                                out, ctx->detail);
}

static csa_status q_create_project(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_query_create_project(conn, arg_str(ctx, "name"), arg_str(ctx, "slug"), out, ctx->detail);
}

/* Reads served by a module of their own (deployments.h): the query string is checked here, the
 * read runs on the executor like every other. */
static csa_status q_deployments(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_deployments_list(conn, &g.cfg->prices, ctx->who.project_id, ctx->path_id, out, ctx->detail);
}

static csa_status q_compare(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_deployments_compare(conn, ctx->who.project_id, ctx->path_id, arg_str(ctx, "base"), arg_str(ctx, "head"),
                                   out, ctx->detail);
}

static void handle_module_read(request_ctx *ctx, query_fn fn)
{
    json_t *errors = csa_deployments_check_args(ctx->args);
    if (errors) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    defer_query(ctx, fn);
}

static void handle_deployments(request_ctx *ctx, json_t *body) { handle_module_read(ctx, q_deployments); }
static void handle_compare(request_ctx *ctx, json_t *body) { handle_module_read(ctx, q_compare); }

/* A function's cold starts one by one (coldstarts.h): the query string is checked there. */
static csa_status q_cold_starts(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_cold_starts_list(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static csa_status q_cold_start_typical(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_cold_starts_typical(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static csa_status q_cold_start_tree(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_cold_starts_one(conn, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static void handle_cold_start_read(request_ctx *ctx, csa_cold_starts_read read, query_fn fn)
{
    json_t *errors = csa_cold_starts_check_args(ctx->args, read, g.cfg->max_read_window_days, (double)time(NULL));
    if (errors) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    defer_query(ctx, fn);
}

static void handle_cold_starts(request_ctx *ctx, json_t *body)
{
    handle_cold_start_read(ctx, CSA_COLD_STARTS_LIST, q_cold_starts);
}

static void handle_cold_start_typical(request_ctx *ctx, json_t *body)
{
    handle_cold_start_read(ctx, CSA_COLD_STARTS_TYPICAL, q_cold_start_typical);
}

static void handle_cold_start_tree(request_ctx *ctx, json_t *body)
{
    handle_cold_start_read(ctx, CSA_COLD_STARTS_ONE, q_cold_start_tree);
}

/* Alert rules (alerts.h): the module checks the request here and runs it on the executor. */
static csa_status q_alerts(PGconn *conn, request_ctx *ctx, json_t **out)
{
    return csa_alerts_run(conn, ctx->method, ctx->who.project_id, ctx->path_id, ctx->args, out, ctx->detail);
}

static void handle_alerts(request_ctx *ctx, json_t *body)
{
    json_t *errors = csa_alerts_check_request(ctx->method, body, ctx->args, g.cfg->alert_allow_private_webhooks);
    if (errors) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    ctx->reply_status = strcmp(ctx->method, "POST") == 0 ? 201 : 0;
    defer_query(ctx, q_alerts);
}

/* Parses the query string into a new object of name -> value (the last value of a repeated name
 * wins). Returns NULL when it is malformed. */
static json_t *query_params(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    json_t *obj = json_object();
    if (!q || !*q)
        return obj;
    if (strstr(q, "%00")) { /* decodes to a NUL that would silently cut the value */
        json_decref(obj);
        return NULL;
    }
    struct evkeyvalq kv;
    kv.tqh_first = NULL;
    kv.tqh_last = &kv.tqh_first;
    if (evhttp_parse_query_str(q, &kv) != 0) {
        evhttp_clear_headers(&kv);
        json_decref(obj);
        return NULL;
    }
    for (struct evkeyval *e = kv.tqh_first; e; e = e->next.tqe_next) {
        json_t *v = json_string(e->value);
        if (!v) { /* not UTF-8 */
            evhttp_clear_headers(&kv);
            json_decref(obj);
            return NULL;
        }
        json_object_set_new(obj, e->key, v);
    }
    evhttp_clear_headers(&kv);
    return obj;
}

/* Characters (code points) of a valid UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int hex_decode(const char *in, char *out, size_t out_size)
{
    size_t n = strlen(in);
    if (n % 2 || n / 2 >= out_size || n == 0)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in[i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        if (v == 0)
            return -1;
        out[i / 2] = (char)v;
    }
    out[n / 2] = '\0';
    return 0;
}

static void handle_list_functions(request_ctx *ctx, json_t *body)
{
    const char *limit = arg_str(ctx, "limit");
    long n = 50;
    if (limit) {
        char *end;
        n = strtol(limit, &end, 10);
        if (!*limit || *end || n < 1 || n > 200) {
            send_error(ctx, CSA_ERR_VALIDATION, "Validation error",
                       query_error("limit", "Input should be an integer from 1 to 200", "int_parsing"));
            ctx_free(ctx);
            return;
        }
    }
    json_object_set_new(ctx->args, "limit", json_integer(n));
    const char *cursor = arg_str(ctx, "cursor");
    if (cursor) {
        char name[1100]; /* a 255-character name is at most 1020 bytes of UTF-8 */
        json_t *decoded = hex_decode(cursor, name, sizeof name) == 0 ? json_string(name) : NULL;
        if (!decoded) {
            send_error(ctx, CSA_ERR_VALIDATION, "Validation error",
                       query_error("cursor", "Not a cursor returned by this endpoint", "value_error"));
            ctx_free(ctx);
            return;
        }
        json_object_set_new(ctx->args, "cursor", decoded);
    }
    const char *prefix = arg_str(ctx, "name_prefix");
    if (prefix && !*prefix)
        json_object_del(ctx->args, "name_prefix");
    else if (prefix && utf8_chars(prefix) > 255) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error",
                   query_error("name_prefix", "Input should have at most 255 characters", "string_too_long"));
        ctx_free(ctx);
        return;
    }
    defer_query(ctx, q_list_functions);
}

/* GET /api/v1/functions/{id}?from&to: RFC 3339 date-times; the window (default the last 7 days,
 * to defaulting to now) may span at most MAX_READ_WINDOW_DAYS, so that one read's work is bounded:
 * a wider one is 400 saying so. */
static void handle_function_detail(request_ctx *ctx, json_t *body)
{
    static const char *const names[] = {"from", "to"};
    double at[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        const char *v = arg_str(ctx, names[i]);
        double *epoch = &at[i];
        if (v && csa_parse_rfc3339(v, epoch) != 0) {
            send_error(ctx, CSA_ERR_VALIDATION, "Validation error",
                       query_error(names[i], "Input should be an RFC 3339 date-time with a time zone",
                                   "datetime_format"));
            ctx_free(ctx);
            return;
        }
    }
    double t1 = arg_str(ctx, "to") ? at[1] : (double)time(NULL);
    double t0 = arg_str(ctx, "from") ? at[0] : t1 - 7 * 86400.0;
    double max_s = (double)g.cfg->max_read_window_days * 86400.0;
    if (t1 - t0 > max_s) {
        char msg[160];
        snprintf(msg, sizeof msg, "The window from..to spans %.0f days; at most %d days can be read at once",
                 (t1 - t0) / 86400.0, g.cfg->max_read_window_days);
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", query_error("from", msg, "window_too_wide"));
        ctx_free(ctx);
        return;
    }
    defer_query(ctx, q_function_detail);
}

static void handle_list_keys(request_ctx *ctx, json_t *body) { defer_query(ctx, q_list_keys); }

/*
 * POST /api/v1/api-keys {"name"?: string, "scopes"?: ["ingest" | "read" | "admin", ...]}.
 * scopes defaults to ["ingest"] (the key for a function). A key can create only keys with scopes
 * it has itself: asking for more is 403 FORBIDDEN, so a leaked key cannot mint a stronger one.
 */
static void handle_create_key(request_ctx *ctx, json_t *body)
{
    json_t *name = body ? json_object_get(body, "name") : NULL;
    json_t *scopes = body ? json_object_get(body, "scopes") : NULL;
    json_t *errors = json_array();
    unsigned wanted = CSA_SCOPE_INGEST;
    if (body && !json_is_object(body)) {
        json_array_append_new(errors, json_pack("{s:[s], s:s, s:s}", "loc", "body", "msg", "Input should be an object",
                                                "type", "model_type"));
        goto invalid;
    }
    if (name && !json_is_null(name) &&
        (!json_is_string(name) || json_string_length(name) == 0 || utf8_chars(json_string_value(name)) > 255))
        json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "body", "name", "msg",
                                                "Input should be a string of 1 to 255 characters", "type",
                                                "string_type"));
    if (scopes && !json_is_null(scopes)) {
        wanted = 0;
        if (!json_is_array(scopes) || json_array_size(scopes) == 0 || json_array_size(scopes) > 3)
            json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "body", "scopes", "msg",
                                                    "Input should be a list of 1 to 3 scopes", "type", "list_type"));
        else {
            size_t i;
            json_t *v;
            json_array_foreach(scopes, i, v) {
                unsigned bit = json_is_string(v) ? csa_scope_from_name(json_string_value(v)) : 0;
                if (!bit)
                    json_array_append_new(errors, json_pack("{s:[s,s,I], s:s, s:s}", "loc", "body", "scopes",
                                                            (json_int_t)i, "msg",
                                                            "Input should be 'ingest', 'read' or 'admin'", "type",
                                                            "enum"));
                wanted |= bit;
            }
        }
    }
    if (json_array_size(errors) > 0)
        goto invalid;
    json_decref(errors);
    if (wanted & ~ctx->who.scopes) {
        char have[40], want[40], detail[200];
        csa_scopes_format(ctx->who.scopes, ", ", have, sizeof have);
        csa_scopes_format(wanted, ", ", want, sizeof want);
        snprintf(detail, sizeof detail,
                 "A key can create only keys with scopes it has itself: asked for %s, this key has %s", want, have);
        send_error(ctx, CSA_ERR_FORBIDDEN, detail, NULL);
        ctx_free(ctx);
        return;
    }
    if (json_is_string(name))
        json_object_set(ctx->args, "name", name);
    json_object_set_new(ctx->args, "scopes", json_integer((json_int_t)wanted));
    ctx->reply_status = 201;
    defer_query(ctx, q_create_key);
    return;
invalid:
    send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
    ctx_free(ctx);
}

static void handle_revoke_key(request_ctx *ctx, json_t *body)
{
    const char *force = arg_str(ctx, "force");
    json_object_set_new(ctx->args, "force", json_boolean(force && strcmp(force, "true") == 0));
    defer_query(ctx, q_revoke_key);
}

static void handle_create_project(request_ctx *ctx, json_t *body)
{
    json_t *errors = json_array();
    json_t *name = json_object_get(body, "name"), *slug = json_object_get(body, "slug");
    if (!json_is_object(body))
        json_array_append_new(errors, json_pack("{s:[s], s:s, s:s}", "loc", "body", "msg", "Input should be an object",
                                                "type", "model_type"));
    else if (!json_is_string(name) || json_string_length(name) == 0 || utf8_chars(json_string_value(name)) > 255)
        json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "body", "name", "msg",
                                                "Input should be a string of 1 to 255 characters", "type",
                                                "string_type"));
    if (json_is_object(body)) {
        if (!csa_slug_valid(json_is_string(slug) ? json_string_value(slug) : NULL))
            json_array_append_new(errors, json_pack("{s:[s,s], s:s, s:s}", "loc", "body", "slug", "msg",
                                                    "Input should be 1 to 100 characters of a-z, 0-9, - and _", "type",
                                                    "string_pattern_mismatch"));
    }
    if (json_array_size(errors) > 0) {
        send_error(ctx, CSA_ERR_VALIDATION, "Validation error", errors);
        ctx_free(ctx);
        return;
    }
    json_decref(errors);
    json_object_set(ctx->args, "name", name);
    json_object_set(ctx->args, "slug", slug);
    ctx->reply_status = 201;
    defer_query(ctx, q_create_project);
}

/* Health's database check runs on a thread and connection of its own: it never holds up an event
 * loop, a query pool busy with slow reads does not make it "unreachable", and a flood of unknown
 * keys queued for the key-lookup threads does not delay it. */
static void run_health(void *arg)
{
    request_ctx *ctx = arg;
    int ok = 0;
    PGconn *conn = csa_db_pool_acquire(g.health_pool, 1000);
    if (conn) {
        PGresult *res = PQexec(conn, "SELECT 1");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        csa_db_pool_release(g.health_pool, conn, !ok);
    }
    ctx->status = ok ? CSA_OK : CSA_ERR_UNAVAILABLE;
}

static void health_done(void *arg) { report_done(arg); }

static int finish_health(request_ctx *ctx)
{
    char ts[40];
    csa_format_now(ts, sizeof ts);
    int ok = ctx->status == CSA_OK;
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "status", ok ? "healthy" : "unhealthy", "version", CSA_VERSION,
                            "timestamp", ts, "database", ok ? "ok" : "unreachable");
    send_json(ctx, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", out);
    return 0;
}

static void handle_health(request_ctx *ctx, json_t *body)
{
    ctx->finish = finish_health;
    begin_wait(ctx);
    if (csa_executor_submit(g.health_executor, run_health, health_done, ctx) == 0)
        return;
    cancel_wait(ctx);
    ctx->status = CSA_ERR_UNAVAILABLE;
    finish_health(ctx);
    ctx_free(ctx);
}

/* ---- routing ------------------------------------------------------------------------------- */

typedef void (*handler_fn)(request_ctx *ctx, json_t *body);

#define ROUTE_JSON_BODY 2u     /* body parsed as JSON before the handler */
#define ROUTE_BATCH_LIMIT 4u   /* body limit MAX_BODY_BATCH instead of MAX_BODY_SINGLE */
#define ROUTE_ID 8u            /* path ends in /{id}, or has {id} as one segment */
#define ROUTE_ADMIN_TOKEN 64u  /* needs the APP_SECRET_KEY bearer token instead of a key */
#define ROUTE_BODY_OPTIONAL 128u
#define ROUTE_RAW_BODY 256u /* body limit and Content-Type checked as for JSON; the handler reads it */
#define ROUTE_FIREHOSE 512u /* key also in X-Amz-Firehose-Access-Key; errors in Firehose's shape */

#define RATE_NONE (-1) /* not rate limited */

/*
 * Every route, and what the dispatcher (on_request, continue_request) checks before its handler
 * runs, in this order: method and path, body size and Content-Type, the key (X-API-Key) or the
 * admin token, the key's scope (403 FORBIDDEN), the rate limit of its class per key and per
 * project (429), the JSON body. A route with scope 0 and no ROUTE_ADMIN_TOKEN needs nothing.
 */
typedef struct route {
    const char *path; /* for ROUTE_ID: the prefix before the id, ending in '/' */
    enum evhttp_cmd_type method;
    unsigned scope;   /* CSA_SCOPE_* the key must have; 0 = no key */
    int rate_class;   /* CSA_RATE_INGEST, CSA_RATE_QUERY or RATE_NONE */
    handler_fn handler;
    unsigned flags;
} route;

static const route routes[] = {
    {"/api/v1/health", EVHTTP_REQ_GET, 0, RATE_NONE, handle_health, 0},
    {"/api/v1/ingest", EVHTTP_REQ_POST, CSA_SCOPE_INGEST, CSA_RATE_INGEST, handle_ingest, ROUTE_JSON_BODY},
    {"/api/v1/ingest/batch", EVHTTP_REQ_POST, CSA_SCOPE_INGEST, CSA_RATE_INGEST, handle_ingest_batch,
     ROUTE_JSON_BODY | ROUTE_BATCH_LIMIT},
    {"/api/v1/ingest/firehose", EVHTTP_REQ_POST, CSA_SCOPE_INGEST, CSA_RATE_INGEST, handle_ingest_firehose,
     ROUTE_RAW_BODY | ROUTE_BATCH_LIMIT | ROUTE_FIREHOSE},
    {"/api/v1/functions", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_list_functions, 0},
    {"/api/v1/functions/", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_function_detail, ROUTE_ID},
    {"/api/v1/functions/{id}/deployments", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_deployments, ROUTE_ID},
    {"/api/v1/functions/{id}/compare", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_compare, ROUTE_ID},
    {"/api/v1/functions/{id}/cold-starts", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_cold_starts,
     ROUTE_ID},
    {"/api/v1/functions/{id}/cold-starts/typical", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY,
     handle_cold_start_typical, ROUTE_ID},
    {"/api/v1/functions/{id}/cold-starts/tree", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_cold_start_tree,
     ROUTE_ID},
    {"/api/v1/api-keys", EVHTTP_REQ_GET, CSA_SCOPE_ADMIN, CSA_RATE_QUERY, handle_list_keys, 0},
    {"/api/v1/api-keys", EVHTTP_REQ_POST, CSA_SCOPE_ADMIN, CSA_RATE_QUERY, handle_create_key,
     ROUTE_JSON_BODY | ROUTE_BODY_OPTIONAL},
    {"/api/v1/api-keys/", EVHTTP_REQ_DELETE, CSA_SCOPE_ADMIN, CSA_RATE_QUERY, handle_revoke_key, ROUTE_ID},
    {"/api/v1/projects", EVHTTP_REQ_POST, 0, RATE_NONE, handle_create_project, ROUTE_ADMIN_TOKEN | ROUTE_JSON_BODY},
    {"/api/v1/alerts", EVHTTP_REQ_GET, CSA_SCOPE_READ, CSA_RATE_QUERY, handle_alerts, 0},
    {"/api/v1/alerts", EVHTTP_REQ_POST, CSA_SCOPE_ADMIN, CSA_RATE_QUERY, handle_alerts, ROUTE_JSON_BODY},
    {"/api/v1/alerts/", EVHTTP_REQ_DELETE, CSA_SCOPE_ADMIN, CSA_RATE_QUERY, handle_alerts, ROUTE_ID},
};

/* Does `path` match route r? For ROUTE_ID routes, copies the id segment into id. */
static int route_matches(const route *r, const char *path, char *id, size_t id_size)
{
    if (!(r->flags & ROUTE_ID))
        return strcmp(r->path, path) == 0;
    const char *slot = strstr(r->path, "{id}");
    size_t n = slot ? (size_t)(slot - r->path) : strlen(r->path);
    if (strncmp(r->path, path, n) != 0)
        return 0;
    const char *rest = path + n, *end = strchr(rest, '/');
    size_t id_len = end ? (size_t)(end - rest) : strlen(rest);
    if (id_len == 0 || strcmp(end ? end : "", slot ? slot + 4 : "") != 0)
        return 0;
    snprintf(id, id_size, "%.*s", (int)id_len, rest); /* longer ids are cut and then fail the UUID check */
    return 1;
}

static int content_type_is_json(const char *ct)
{
    if (!ct)
        return 1; /* absent: assume JSON */
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* APP_SECRET_KEY must be set, 32+ characters and varied enough (csa_secret_strong) for the admin
 * endpoint to exist. */
static int admin_enabled(void)
{
    return g.cfg->admin_secret_ok;
}

static int admin_token_ok(struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    /* compare digests in constant time, so neither content nor length leaks through timing */
    unsigned char a[crypto_hash_sha256_BYTES], b[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(a, (const unsigned char *)auth + 7, strlen(auth + 7));
    crypto_hash_sha256(b, (const unsigned char *)g.cfg->app_secret_key, strlen(g.cfg->app_secret_key));
    return sodium_memcmp(a, b, sizeof a) == 0;
}

/* RFC 9112 6.3: a message whose length is ambiguous (several different Content-Length values, or
 * Content-Length with Transfer-Encoding) must be refused and the connection closed; libevent 2.1
 * frames it by the first Content-Length and would read the rest as another request. */
static int ambiguous_framing(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *length = NULL;
    int has_te = 0;
    for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
        if (strcasecmp(h->key, "Transfer-Encoding") == 0)
            has_te = 1;
        else if (strcasecmp(h->key, "Content-Length") == 0) {
            if (length && strcmp(length, h->value) != 0)
                return 1;
            length = h->value;
        }
    }
    return has_te && length;
}

static void preflight(request_ctx *ctx)
{
    struct evhttp_request *req = ctx->req;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (cors_origin(req)) {
        evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        evhttp_add_header(out, "Access-Control-Allow-Headers", "Content-Type, X-API-Key, Authorization");
        evhttp_add_header(out, "Access-Control-Max-Age", "600");
    }
    send_json(ctx, 204, "No Content", NULL);
}

/* ---- authenticate before the body (the header gate) ----------------------------------------- */

/*
 * evhttp reads a request's whole body before it calls us, and libevent 2.1 has no hook between
 * the headers and the body for a server. So each connection's input buffer is watched (evbuffer
 * callbacks run as bytes arrive, before evhttp's read callback parses them) and the request head
 * is read alongside evhttp: method, path, the key headers, Content-Length. When the head is
 * complete, and before evhttp reads any of the body, the gate sets the connection's body limit
 * (evhttp_connection_set_max_body_size):
 *   - the route's own limit (plus HARD_BODY_CAP_EXTRA, so that on_request words the 413); a
 *     declared length beyond that is refused at once;
 *   - for a keyed route with a body over GATE_SMALL_BODY (or chunked): a key known valid passes;
 *     a missing, malformed or known-bad key is refused (401) and counts against the client's
 *     address; an address over AUTH_FAIL_LIMIT is refused (429) without a lookup; an unknown key
 *     is looked up on the key threads while the connection does not read (GATE_PENDING), and
 *     the body is read only once it is found valid.
 * A refusal sets the body limit to 0: evhttp then answers 413 itself and closes, and
 * on_output_added rewrites that page into the refusal's JSON error. The gate only guards
 * resources: on_request authenticates every request again, in full.
 */

/* The evhttp connection of a tracked bufferevent (evhttp passes it as its callbacks' argument). */
static struct evhttp_connection *evcon_of(conn_track *t)
{
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;
    void *cbarg = NULL;
    bufferevent_getcb(t->bev, &rcb, &wcb, &ecb, &cbarg);
    return rcb ? cbarg : NULL;
}

/* Is `peer` one of TRUSTED_PROXIES? Both in canonical text form. */
static int trusted_proxy(const char *peer)
{
    unsigned char bin[16];
    char canon[CSA_ADDR_MAX];
    int family = strchr(peer, ':') ? AF_INET6 : AF_INET;
    if (g.cfg->nproxies == 0 || inet_pton(family, peer, bin) != 1 || !inet_ntop(family, bin, canon, sizeof canon))
        return 0;
    for (int i = 0; i < g.cfg->nproxies; i++)
        if (strcmp(g.cfg->proxies[i], canon) == 0)
            return 1;
    return 0;
}

/* Copies the last comma-separated entry of an X-Forwarded-For value (the one the nearest proxy
 * appended), trimmed, into out. */
static void last_forwarded(const char *xff, char out[CSA_ADDR_MAX])
{
    const char *p = strrchr(xff, ',');
    p = p ? p + 1 : xff;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    snprintf(out, CSA_ADDR_MAX, "%.*s", (int)(n < CSA_ADDR_MAX ? n : CSA_ADDR_MAX - 1), p);
}

/*
 * The client's address, as the failed-authentication limit counts it: the peer's; or, when the
 * peer is a trusted proxy (TRUSTED_PROXIES, none by default), X-Real-IP, else the last entry of
 * X-Forwarded-For. Headers from other peers are ignored: a client cannot pick its own address.
 */
static void client_address(struct evhttp_connection *evcon, const char *real_ip, const char *forwarded,
                           char out[CSA_ADDR_MAX])
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    out[0] = '\0';
    if (evcon)
        evhttp_connection_get_peer(evcon, &peer, &port);
    if (!peer)
        return;
    if (trusted_proxy(peer) && real_ip && *real_ip)
        snprintf(out, CSA_ADDR_MAX, "%s", real_ip);
    else if (trusted_proxy(peer) && forwarded && *forwarded)
        snprintf(out, CSA_ADDR_MAX, "%s", forwarded);
    else
        snprintf(out, CSA_ADDR_MAX, "%s", peer);
}

static size_t route_body_limit(const route *r)
{
    return (r->flags & ROUTE_BATCH_LIMIT) ? g.cfg->max_body_batch : g.cfg->max_body_single;
}

/* Makes evhttp refuse the body (413, rewritten into `status` with `detail`) before reading it. */
static void gate_refuse(conn_track *t, struct evhttp_connection *evcon, csa_status status, long retry,
                        const char *detail)
{
    t->refusal = status;
    t->refusal_retry = retry;
    snprintf(t->refusal_detail, sizeof t->refusal_detail, "%s", detail);
    evhttp_connection_set_max_body_size(evcon, 0);
}

static void run_gate_lookup(void *arg)
{
    gate_job *job = arg;
    job->status = csa_keycache_fetch(g.keys, g.auth_pool, &job->who);
}

/* Any thread: hands a finished lookup to its worker's loop (as report_done does for requests). */
static void gate_lookup_done(void *arg)
{
    gate_job *job = arg;
    worker *w = job->w;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL && w->gate_done == NULL;
    job->next = w->gate_done;
    w->gate_done = job;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        event_active(w->done_ev, EV_READ, 0);
}

/* Event loop: a lookup of the gate came back. Frees the job. */
static void gate_resume(gate_job *job)
{
    conn_track *t = job->t;
    t->gate_lookups--;
    struct evhttp_connection *evcon = evcon_of(t);
    if (evcon && t->gate == GATE_PENDING && t->gate_seq == job->seq) {
        t->gate = GATE_IDLE;
        if (job->status == CSA_ERR_AUTH) {
            char addr[CSA_ADDR_MAX];
            client_address(evcon, t->head.real_ip, t->head.forwarded, addr);
            csa_authfail_record(g.authfail, addr, time(NULL));
            gate_refuse(t, evcon, CSA_ERR_AUTH, 0, "Invalid or missing API key");
        } else if (job->status != CSA_OK) {
            gate_refuse(t, evcon, CSA_ERR_UNAVAILABLE, 1, "The database is unavailable; retry later.");
        }
        /* valid: the body may come; refused: evhttp answers on the next bytes of it */
        bufferevent_enable(t->bev, EV_READ);
    }
    free(job);
}

/* The head is complete: decide what evhttp may read of the body (see the block comment above). */
static void gate_decide(conn_track *t)
{
    gate_head *h = &t->head;
    t->gate = GATE_IDLE;
    struct evhttp_connection *evcon = evcon_of(t);
    if (!evcon)
        return;
    const route *r = NULL;
    char id[64];
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !r; i++)
        if (strcmp(method_name(routes[i].method), h->method) == 0 && route_matches(&routes[i], h->path, id, sizeof id))
            r = &routes[i];
    char detail[128];
    if (!r || !(r->flags & (ROUTE_JSON_BODY | ROUTE_RAW_BODY))) {
        snprintf(detail, sizeof detail, "Request body exceeds the limit of %d bytes for %.8s requests here",
                 GATE_SMALL_BODY, h->method);
        t->refusal = CSA_ERR_TOO_LARGE; /* if evhttp refuses a longer body, it says this */
        snprintf(t->refusal_detail, sizeof t->refusal_detail, "%s", detail);
        evhttp_connection_set_max_body_size(evcon, GATE_SMALL_BODY);
        return;
    }
    /* An authenticated body a little over the route's limit is still read, so that on_request
     * answers 413 in full and the client reads it (rather than a reset while it sends); beyond
     * HARD_BODY_CAP_EXTRA more, or before the key is known good, nothing is read. */
    size_t limit = route_body_limit(r);
    if (h->content_length > (long long)(limit + HARD_BODY_CAP_EXTRA)) {
        snprintf(detail, sizeof detail, "Request body of %lld bytes exceeds the limit of %zu bytes", h->content_length,
                 limit);
        gate_refuse(t, evcon, CSA_ERR_TOO_LARGE, 0, detail);
        return;
    }
    t->refusal = CSA_ERR_TOO_LARGE; /* a chunked body that grows past the cap */
    snprintf(t->refusal_detail, sizeof t->refusal_detail, "Request body exceeds the limit of %zu bytes", limit);
    evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)(limit + HARD_BODY_CAP_EXTRA));
    if (!r->scope || (!h->chunked && h->content_length <= GATE_SMALL_BODY))
        return; /* a small body: on_request checks the key */
    const char *key = (r->flags & ROUTE_FIREHOSE) && h->fh_key[0] ? h->fh_key : h->key[0] ? h->key : NULL;
    csa_key_identity who;
    char touch[CSA_UUID_LEN + 1];
    csa_status st = csa_keycache_check(g.keys, key, &who, touch);
    if (st == CSA_OK)
        return;
    char addr[CSA_ADDR_MAX];
    client_address(evcon, h->real_ip, h->forwarded, addr);
    time_t now = time(NULL);
    if (st != CSA_ERR_NOT_FOUND) {
        csa_authfail_record(g.authfail, addr, now);
        gate_refuse(t, evcon, CSA_ERR_AUTH, 0, "Invalid or missing API key");
        return;
    }
    long retry = 0;
    if (!who.stale && csa_authfail_blocked(g.authfail, addr, now, &retry)) {
        gate_refuse(t, evcon, CSA_ERR_RATE_LIMIT, retry, "Too many failed authentications from this address");
        return;
    }
    gate_job *job = calloc(1, sizeof *job);
    if (job) {
        job->w = t->w;
        job->t = t;
        job->seq = t->gate_seq;
        job->who = who;
        if (csa_executor_submit(g.auth_executor, run_gate_lookup, gate_lookup_done, job) == 0) {
            t->gate = GATE_PENDING;
            t->gate_lookups++;
            bufferevent_disable(t->bev, EV_READ);
            return;
        }
        free(job);
    }
    gate_refuse(t, evcon, CSA_ERR_UNAVAILABLE, 1, "The server is overloaded; retry later.");
}

/* Copies src into dst (size bytes), cut to fit, always NUL-terminated. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* One complete line of the head (without its line ending). */
static void gate_line(gate_head *h, const char *line, size_t len)
{
    if (h->lines == 0) { /* METHOD SP target SP version */
        size_t m = strcspn(line, " ");
        snprintf(h->method, sizeof h->method, "%.*s", (int)(m < sizeof h->method ? m : sizeof h->method - 1), line);
        const char *target = line[m] ? line + m + 1 : "";
        size_t n = strcspn(target, " ?#");
        snprintf(h->path, sizeof h->path, "%.*s", (int)(n < sizeof h->path ? n : sizeof h->path - 1), target);
        return;
    }
    if (line[0] == ' ' || line[0] == '\t')
        return; /* an obsolete folded continuation: none of ours */
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    char value[GATE_LINE_MAX];
    snprintf(value, sizeof value, "%.*s", (int)vlen, v);
    if (header_is(line, name_len, "X-API-Key"))
        copy_cut(h->key, sizeof h->key, value);
    else if (header_is(line, name_len, "X-Amz-Firehose-Access-Key"))
        copy_cut(h->fh_key, sizeof h->fh_key, value);
    else if (header_is(line, name_len, "X-Real-IP"))
        copy_cut(h->real_ip, sizeof h->real_ip, value);
    else if (header_is(line, name_len, "X-Forwarded-For"))
        last_forwarded(value, h->forwarded);
    else if (header_is(line, name_len, "Transfer-Encoding"))
        h->chunked = 1;
    else if (header_is(line, name_len, "Content-Length")) {
        char *end;
        long long n = strtoll(value, &end, 10);
        if (end != value && n > h->content_length)
            h->content_length = n; /* the largest, if several (on_request refuses those) */
    }
}

/* Reads head bytes; decides once the blank line that ends the head arrives. */
static void gate_feed(conn_track *t, const char *p, size_t n)
{
    gate_head *h = &t->head;
    for (size_t i = 0; i < n && t->gate == GATE_HEAD; i++) {
        if (++h->bytes > GATE_HEAD_MAX) {
            t->gate = GATE_IDLE; /* evhttp refuses a head this long itself */
            return;
        }
        if (p[i] != '\n') {
            if (h->line_len < sizeof h->line - 1)
                h->line[h->line_len++] = p[i];
            else
                h->line_too_long = 1;
            continue;
        }
        size_t len = h->line_len;
        if (len > 0 && h->line[len - 1] == '\r')
            len--;
        h->line[len] = '\0';
        int too_long = h->line_too_long;
        h->line_len = 0;
        h->line_too_long = 0;
        if (len == 0 && h->lines == 0)
            continue; /* blank lines before a request line are tolerated */
        if (len == 0) {
            gate_decide(t);
            return;
        }
        if (!too_long)
            gate_line(h, h->line, len);
        else if (h->lines == 0) {
            t->gate = GATE_IDLE; /* a request line this long: evhttp refuses it */
            return;
        }
        h->lines++;
    }
}

/* Feeds the gate whatever of `in` from offset `from` on. */
static void gate_feed_buffer(conn_track *t, struct evbuffer *in, size_t from)
{
    char chunk[4096];
    size_t len = evbuffer_get_length(in);
    while (from < len && t->gate == GATE_HEAD) {
        struct evbuffer_ptr pos;
        if (evbuffer_ptr_set(in, &pos, from, EVBUFFER_PTR_SET) != 0)
            return;
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, chunk, sizeof chunk);
        if (got <= 0)
            return;
        gate_feed(t, chunk, (size_t)got);
        from += (size_t)got;
    }
}

/* Bytes arrived on a connection, evhttp has not parsed them yet. */
static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn_track *t = arg;
    if (info->n_added == 0)
        return;
    if (t->gate == GATE_PENDING) { /* evhttp re-enables reading after a 100 Continue: not yet */
        bufferevent_disable(t->bev, EV_READ);
        return;
    }
    if (t->gate == GATE_HEAD)
        gate_feed_buffer(t, in, evbuffer_get_length(in) - info->n_added);
}

/* A request was answered: the gate reads the next head, from what is already buffered on. */
static void gate_reset(conn_track *t)
{
    t->gate_seq++;
    t->gate = GATE_HEAD;
    t->refusal = CSA_OK;
    memset(&t->head, 0, sizeof t->head);
    t->head.content_length = -1;
    struct evhttp_connection *evcon = evcon_of(t);
    if (evcon) /* until a head is decided: evhttp's own cap, as for a connection's first request */
        evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)(g.cfg->max_body_batch + HARD_BODY_CAP_EXTRA));
    gate_feed_buffer(t, bufferevent_get_input(t->bev), 0);
}

/* ---- authentication off the event loop ------------------------------------------------------ */

static void continue_request(request_ctx *ctx);

/* Auth executor: looks a key the cache does not hold up in PostgreSQL, so the worker's event loop
 * keeps serving other requests meanwhile. Its threads have connections of their own: slow read
 * queries holding the query pool never hold up ingest's key lookups. */
static void run_auth(void *arg)
{
    request_ctx *ctx = arg;
    ctx->status = csa_keycache_fetch(g.keys, g.auth_pool, &ctx->who);
}

static void auth_done(void *arg) { report_done(arg); }

static int finish_auth(request_ctx *ctx)
{
    if (!ctx->req) { /* the client left meanwhile */
        send_error(ctx, CSA_ERR_AUTH, "Invalid or missing API key", NULL);
        return 0;
    }
    if (ctx->status == CSA_ERR_UNAVAILABLE) {
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; retry later.", NULL);
        return 0;
    }
    if (ctx->status != CSA_OK) {
        csa_authfail_record(g.authfail, ctx->client, time(NULL));
        send_error(ctx, CSA_ERR_AUTH, "Invalid or missing API key", NULL);
        return 0;
    }
    ctx->status = CSA_OK;
    continue_request(ctx);
    return 1;
}

static void defer_auth(request_ctx *ctx)
{
    ctx->finish = finish_auth;
    begin_wait(ctx);
    if (csa_executor_submit(g.auth_executor, run_auth, auth_done, ctx) == 0)
        return;
    cancel_wait(ctx);
    send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; retry later.", NULL);
    ctx_free(ctx);
}

static void run_touch(void *arg)
{
    csa_keycache_touch(g.auth_pool, arg);
    free(arg);
}

static void touch_done(void *arg) {}

/* last_used_at of a cached key, written off the event loop (best effort) */
static void submit_touch(const char *key_id)
{
    char *id = strdup(key_id);
    if (id && csa_executor_submit(g.auth_executor, run_touch, touch_done, id) != 0)
        free(id);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    request_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    ctx->w = w;
    ctx->req = req;
    ctx->started = now_mono();
    snprintf(ctx->request_id, sizeof ctx->request_id, "%08x-%d-%llx-%llx", g.instance, w->index,
             (unsigned long long)time(NULL), ++w->request_seq);
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    snprintf(ctx->method, sizeof ctx->method, "%s", method_name(method));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    /* logged paths are bounded and printable */
    size_t k = 0;
    for (const char *p = path; *p && k < sizeof ctx->path - 1; p++)
        ctx->path[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    conn_track *t = track_of_request(w, req);
    if (t) {
        t->busy = 1;
        t->gate = GATE_IDLE; /* the whole request is in: the gate waits for its answer */
        t->gate_seq++;
    }

    ctx->route_index = -1;
    if (ambiguous_framing(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_error(ctx, CSA_ERR_VALIDATION,
                   "Ambiguous message length: conflicting Content-Length headers, or Content-Length with "
                   "Transfer-Encoding",
                   NULL);
        ctx_free(ctx);
        return;
    }
    const route *r = NULL;
    int path_known = 0;
    char allow[96] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_matches(&routes[i], path, ctx->path_id, sizeof ctx->path_id))
            continue;
        path_known = 1;
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 method_name(routes[i].method));
        if ((routes[i].method == method || (method == EVHTTP_REQ_HEAD && routes[i].method == EVHTTP_REQ_GET)) && !r)
            r = &routes[i];
    }
    if (r)
        ctx->route_index = (int)(r - routes);
    if (r && (r->flags & ROUTE_FIREHOSE)) {
        ctx->firehose = 1;
        /* echoed in every answer, as Firehose requires; kept printable and bounded */
        const char *id = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Amz-Firehose-Request-Id");
        size_t n = 0;
        for (const char *p = id ? id : ""; *p && n < sizeof ctx->firehose_request_id - 1; p++)
            ctx->firehose_request_id[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    }
    json_t *body = NULL;
    int ui_status = path_known ? 0 : csa_ui_serve(req, path); /* the web UI's files: no key, see ui.h */
    if (ui_status) {
        send_json(ctx, ui_status, ui_status == 304 ? "Not Modified" : "OK", NULL);
        goto done;
    }
    if (!path_known) {
        send_error(ctx, CSA_ERR_NOT_FOUND, "Not found", NULL);
        goto done;
    }
    if (!r && method == EVHTTP_REQ_OPTIONS) {
        preflight(ctx);
        goto done;
    }
    if (!r) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        char detail[160];
        snprintf(detail, sizeof detail, "Method %s is not allowed here; allowed: %s", ctx->method, allow);
        send_error(ctx, CSA_ERR_METHOD, detail, NULL);
        goto done;
    }
    if (atomic_load(&g.stopping) && r->handler != handle_health) {
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is shutting down; nothing was done. Retry.", NULL);
        goto done;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (r->flags & (ROUTE_JSON_BODY | ROUTE_RAW_BODY)) {
        size_t limit = (r->flags & ROUTE_BATCH_LIMIT) ? w->cfg->max_body_batch : w->cfg->max_body_single;
        if (len > limit) {
            char detail[128];
            snprintf(detail, sizeof detail, "Request body of %zu bytes exceeds the limit of %zu bytes", len, limit);
            send_error(ctx, CSA_ERR_TOO_LARGE, detail, NULL);
            goto done;
        }
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (!content_type_is_json(ct)) {
            send_error(ctx, CSA_ERR_MEDIA_TYPE, "Content-Type must be application/json", NULL);
            goto done;
        }
    }
    if (r->flags & ROUTE_ADMIN_TOKEN) {
        if (!admin_enabled()) {
            send_error(ctx, CSA_ERR_FORBIDDEN,
                       "Project creation over the API is disabled: APP_SECRET_KEY is unset, shorter than 32 characters "
                       "or too weak",
                       NULL);
            goto done;
        }
        if (!admin_token_ok(req)) {
            send_error(ctx, CSA_ERR_AUTH, "Invalid or missing admin token (Authorization: Bearer APP_SECRET_KEY)", NULL);
            goto done;
        }
    }
    if (r->scope) {
        struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
        const char *key = (r->flags & ROUTE_FIREHOSE) ? evhttp_find_header(headers, "X-Amz-Firehose-Access-Key") : NULL;
        if (!key)
            key = evhttp_find_header(headers, "X-API-Key");
        char touch[CSA_UUID_LEN + 1];
        csa_status st = csa_keycache_check(g.keys, key, &ctx->who, touch);
        if (touch[0])
            submit_touch(touch);
        if (st != CSA_OK) {
            char forwarded[CSA_ADDR_MAX] = "";
            const char *xff = evhttp_find_header(headers, "X-Forwarded-For");
            if (xff)
                last_forwarded(xff, forwarded);
            client_address(evhttp_request_get_connection(req), evhttp_find_header(headers, "X-Real-IP"), forwarded,
                           ctx->client);
        }
        long retry = 0;
        if (st == CSA_ERR_NOT_FOUND && !ctx->who.stale &&
            csa_authfail_blocked(g.authfail, ctx->client, time(NULL), &retry)) {
            char v[24];
            snprintf(v, sizeof v, "%ld", retry);
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
            send_error(ctx, CSA_ERR_RATE_LIMIT, "Too many failed authentications from this address", NULL);
            goto done;
        }
        if (st == CSA_ERR_NOT_FOUND) { /* not cached: looked up off the event loop */
            defer_auth(ctx);
            return;
        }
        if (st != CSA_OK) {
            csa_authfail_record(g.authfail, ctx->client, time(NULL));
            send_error(ctx, CSA_ERR_AUTH, "Invalid or missing API key", NULL);
            goto done;
        }
    }
    continue_request(ctx);
    return;
done:
    json_decref(body);
    ctx_free(ctx);
}

/* The rest of a request once its key (if its route needs one) is known: rate limit, body,
 * query string, handler. Owns ctx. */
static void continue_request(request_ctx *ctx)
{
    const route *r = &routes[ctx->route_index];
    struct evhttp_request *req = ctx->req;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *body = NULL;
    if (r->scope && !(ctx->who.scopes & r->scope)) {
        char have[40], need[16], detail[160];
        csa_scopes_format(ctx->who.scopes, ", ", have, sizeof have);
        csa_scopes_format(r->scope, ", ", need, sizeof need);
        snprintf(detail, sizeof detail, "This API key lacks the scope %s needed here (its scopes: %s)", need, have);
        send_error(ctx, CSA_ERR_FORBIDDEN, detail, NULL);
        goto done;
    }
    if (r->scope && r->rate_class != RATE_NONE) {
        ctx->rate = csa_ratelimit_hit_key(g.limits, ctx->who.key_hash, ctx->who.project_id,
                                          (csa_rate_class)r->rate_class, time(NULL));
        ctx->has_rate = 1;
        if (!ctx->rate.allowed) {
            csa_metrics_rate_limited(r->rate_class == CSA_RATE_QUERY);
            char detail[160];
            snprintf(detail, sizeof detail, "Rate limit of %ld requests per %d s exceeded; retry in %ld s",
                     ctx->rate.limit, g.cfg->rate_limit_window_s, ctx->rate.reset_s);
            send_error(ctx, CSA_ERR_RATE_LIMIT, detail, NULL);
            goto done;
        }
    }
    if ((r->flags & ROUTE_JSON_BODY) && !(len == 0 && (r->flags & ROUTE_BODY_OPTIONAL))) {
        const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
        char why[256];
        body = csa_json_parse(data, len, why, sizeof why);
        if (!body) {
            json_t *errors = json_pack("[{s:[s], s:s, s:s}]", "loc", "body", "msg", why, "type", "json_invalid");
            char detail[300];
            snprintf(detail, sizeof detail, "Malformed JSON body: %s", why);
            send_error(ctx, CSA_ERR_VALIDATION, detail, errors);
            goto done;
        }
    }
    ctx->args = query_params(req);
    if (!ctx->args) {
        send_error(ctx, CSA_ERR_VALIDATION, "Malformed query string", NULL);
        goto done;
    }
    r->handler(ctx, body); /* the handler owns ctx from here */
    json_decref(body);
    return;
done:
    json_decref(body);
    ctx_free(ctx);
}

/* ---- metrics ------------------------------------------------------------------------------- */

/* GET /metrics on the METRICS_PORT listener (worker 0's loop): Prometheus' text format. */
static void on_metrics(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strcmp(path, "/metrics") != 0 || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    char *text = csa_metrics_render(csa_writer_pending(g.writer), csa_db_pool_in_use(g.pool), g.cfg->database_pool_size);
    struct evbuffer *buf = evbuffer_new();
    if (text)
        evbuffer_add(buf, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

static void name_routes_for_metrics(void)
{
    csa_metrics_set_route_name(CSA_METRICS_ROUTES - 1, "unmatched", "any");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && i < CSA_METRICS_ROUTES - 1; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", routes[i].path,
                 (routes[i].flags & ROUTE_ID) && !strstr(routes[i].path, "{id}") ? "{id}" : "");
        csa_metrics_set_route_name((int)i, name, method_name(routes[i].method));
    }
}

/* ---- workers, start and stop -------------------------------------------------------------- */

static int open_listener(const char *host, int port, char *err, size_t err_size)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "HOST: cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        /* No Nagle: evhttp writes a response's headers and body separately, and the body would
         * wait for the client's delayed ACK of the headers (40 ms on Linux). Accepted sockets
         * inherit the option from the listener. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
            snprintf(err, err_size, "cannot listen on %s:%d: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    } else {
        snprintf(err, err_size, "socket: %s", strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}

/* Executor job: partition upkeep on a pooled connection. */
static void run_maintenance(void *arg)
{
    PGconn *conn = csa_db_pool_acquire(g.pool, 5000);
    if (!conn)
        return;
    int created = 0, dropped = 0;
    char err[300];
    if (csa_db_maintain(conn, g.cfg->retention_months, &created, &dropped, err, sizeof err) < 0)
        csa_logf(CSA_LOG_WARN, "partition upkeep failed: %s", err);
    else if (created || dropped)
        csa_logf(CSA_LOG_INFO, "partition upkeep: %d created, %d dropped", created, dropped);
    csa_db_pool_release(g.pool, conn, 0);
}

/* Executor job: folds the rollup deltas (migrations/002) so that they stay a few rows long. */
static void run_fold(void *arg)
{
    PGconn *conn = csa_db_pool_acquire(g.pool, 1000);
    if (!conn)
        return;
    char err[300];
    if (csa_db_fold_rollups(conn, err, sizeof err) < 0)
        csa_logf(CSA_LOG_WARN, "rollup fold failed: %s", err);
    csa_db_pool_release(g.pool, conn, 0);
}

static void no_op(void *arg) {}

static void on_fold(evutil_socket_t fd, short what, void *arg)
{
    csa_executor_submit(g.executor, run_fold, no_op, NULL);
}

static void on_maintain(evutil_socket_t fd, short what, void *arg)
{
    csa_executor_submit(g.executor, run_maintenance, no_op, NULL);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound); /* closes the listening socket */
        w->bound = NULL;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(worker *w, int index, const csa_config *cfg, char *err, size_t err_size)
{
    w->index = index;
    w->cfg = cfg;
    w->cap = cfg->max_connections / cfg->workers;
    if (w->cap < 1)
        w->cap = 1;
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (!w->http) {
        snprintf(err, err_size, "cannot create the event loop");
        return -1;
    }
    int fd = open_listener(cfg->host, cfg->port, err, err_size);
    if (fd < 0)
        return -1;
    w->bound = evhttp_accept_socket_with_handle(w->http, fd);
    if (!w->bound) {
        close(fd);
        snprintf(err, err_size, "cannot accept on %s:%d", cfg->host, cfg->port);
        return -1;
    }
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(w->http, 16 * 1024);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)(cfg->max_body_batch + HARD_BODY_CAP_EXTRA));
    evhttp_set_timeout(w->http, cfg->idle_timeout_s);
    evhttp_set_gencb(w->http, on_request, w);
    evhttp_set_bevcb(w->http, on_new_connection, w);
    w->sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    struct timeval tv = {0, SWEEP_INTERVAL_MS * 1000};
    event_add(w->sweep, &tv);
    w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
    w->done_ev = event_new(w->base, -1, 0, on_work_reported, w);
    if (index == 0 && cfg->metrics_port) {
        w->metrics_http = evhttp_new(w->base);
        if (!w->metrics_http || evhttp_bind_socket(w->metrics_http, cfg->metrics_host, (ev_uint16_t)cfg->metrics_port) != 0) {
            snprintf(err, err_size, "METRICS_PORT: cannot listen on %s:%d", cfg->metrics_host, cfg->metrics_port);
            return -1;
        }
        evhttp_set_gencb(w->metrics_http, on_metrics, w);
    }
    if (index == 0) {
        w->maintain_ev = event_new(w->base, -1, EV_PERSIST, on_maintain, w);
        struct timeval hour = {3600, 0};
        event_add(w->maintain_ev, &hour);
        w->fold_ev = event_new(w->base, -1, EV_PERSIST, on_fold, w);
        struct timeval fold = {ROLLUP_FOLD_INTERVAL_S, 0};
        event_add(w->fold_ev, &fold);
    }
    pthread_mutex_init(&w->done_lock, NULL);
    return 0;
}

static void worker_cleanup(worker *w)
{
    for (struct gate_job *job = w->gate_done, *next; job; job = next) { /* reported after the loop ended */
        next = job->next;
        free(job);
    }
    if (w->metrics_http)
        evhttp_free(w->metrics_http);
    if (w->http)
        evhttp_free(w->http);
    for (conn_track *t = w->all, *next; t; t = next) {
        next = t->next;
        bufferevent_decref(t->bev);
        free(t);
    }
    if (w->sweep)
        event_free(w->sweep);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->maintain_ev)
        event_free(w->maintain_ev);
    if (w->fold_ev)
        event_free(w->fold_ev);
    if (w->done_ev) {
        event_free(w->done_ev);
        pthread_mutex_destroy(&w->done_lock);
    }
    if (w->base)
        event_base_free(w->base);
}

int csa_server_run(const csa_config *cfg)
{
    char err[512];
    int exit_code = 1;
    g.cfg = cfg;
    g.instance = randombytes_random();
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);

    /* signals are taken by sigwait() in this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char weak[120];
    if (cfg->app_secret_key[0] && !csa_secret_strong(cfg->app_secret_key, weak, sizeof weak))
        csa_logf(CSA_LOG_WARN,
                 "APP_SECRET_KEY is %s: POST /api/v1/projects stays disabled (generate one with "
                 "openssl rand -base64 32)",
                 weak);
    g.rules = csa_rules_load(cfg->rules_file, err, sizeof err);
    if (!g.rules) {
        fprintf(stderr, "coldstartd: rule file error: %s\n", err);
        return 2;
    }
    g.pool = csa_db_pool_create(cfg->database_url, cfg->database_pool_size);
    if (g.pool) /* bounds the time (and so the work) of one read; partition upkeep included */
        csa_db_pool_set_statement_timeout(g.pool, cfg->query_timeout_ms);
    g.limits = csa_ratelimit_create(cfg->rate_limit_ingest, cfg->rate_limit_query, cfg->rate_limit_window_s, 65536);
    if (g.limits)
        csa_ratelimit_set_project_limits(g.limits, cfg->rate_limit_project_ingest, cfg->rate_limit_project_query);
    g.executor = csa_executor_start(cfg->query_threads, 1000);
    g.auth_pool = csa_db_pool_create(cfg->database_url, AUTH_THREADS);
    g.auth_executor = csa_executor_start(AUTH_THREADS, 1000);
    g.health_pool = csa_db_pool_create(cfg->database_url, 1);
    g.health_executor = csa_executor_start(1, 256);
    g.keys = csa_keycache_create(cfg->key_cache_ttl_s, 4096);
    g.authfail = csa_authfail_create(cfg->auth_fail_limit, cfg->auth_fail_window_s, 65536);
    g.writer = csa_writer_start(cfg->database_url, cfg->writers, cfg->writer_batch_max, cfg->writer_batch_max * 50,
                                cfg->writer_queue_max_bytes);
    name_routes_for_metrics();
    g.nworkers = cfg->workers;
    g.workers = calloc((size_t)g.nworkers, sizeof *g.workers);
    if (!g.pool || !g.keys || !g.writer || !g.workers || !g.limits || !g.executor || !g.auth_pool || !g.auth_executor ||
        !g.health_pool || !g.health_executor || !g.authfail) {
        csa_logf(CSA_LOG_ERROR, "out of memory at start-up");
        goto out;
    }
    for (int i = 0; i < g.nworkers; i++) {
        if (worker_init(&g.workers[i], i, cfg, err, sizeof err) < 0) {
            csa_logf(CSA_LOG_ERROR, "%s", err);
            for (int j = 0; j <= i; j++)
                worker_cleanup(&g.workers[j]);
            goto out;
        }
    }
    /* check the database once, so a wrong DATABASE_URL is visible at start (serving continues:
     * health says unhealthy and the server reconnects by itself) */
    PGconn *probe = csa_db_pool_acquire(g.pool, 1000);
    if (probe)
        csa_db_pool_release(g.pool, probe, 0);
    else
        csa_logf(CSA_LOG_WARN, "database not reachable at start; serving anyway and retrying");

    csa_executor_submit(g.executor, run_maintenance, no_op, NULL);
    for (int i = 0; i < g.nworkers; i++)
        pthread_create(&g.workers[i].thread, NULL, worker_main, &g.workers[i]);
    csa_log(CSA_LOG_INFO, "listening",
            json_pack("{s:s, s:i, s:i, s:s}", "host", cfg->host, "port", cfg->port, "workers", cfg->workers,
                      "version", CSA_VERSION));

    csa_alerts *alerts = csa_alerts_start(cfg); /* the alert evaluator: a thread of its own */
    int sig = 0;
    sigwait(&sigs, &sig);
    csa_alerts_stop(alerts);
    csa_logf(CSA_LOG_INFO, "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&g.stopping, 1);
    for (int i = 0; i < g.nworkers; i++)
        event_active(g.workers[i].stop_ev, EV_READ, 0);
    double deadline = now_mono() + cfg->shutdown_timeout_s;
    while (atomic_load(&g.inflight) > 0 && now_mono() < deadline)
        usleep(10000);
    usleep(200000); /* let the last responses reach their sockets */
    for (int i = 0; i < g.nworkers; i++)
        event_base_loopexit(g.workers[i].base, NULL);
    for (int i = 0; i < g.nworkers; i++)
        pthread_join(g.workers[i].thread, NULL);
    int left = atomic_load(&g.inflight);
    csa_writer_stop(g.writer); /* commits whatever is still queued */
    g.writer = NULL;
    csa_executor_stop(g.executor);
    g.executor = NULL;
    csa_executor_stop(g.auth_executor);
    g.auth_executor = NULL;
    csa_executor_stop(g.health_executor);
    g.health_executor = NULL;
    for (int i = 0; i < g.nworkers; i++)
        worker_cleanup(&g.workers[i]);
    if (left > 0)
        csa_logf(CSA_LOG_WARN, "%d requests were still waiting at the drain deadline", left);
    csa_logf(CSA_LOG_INFO, "stopped");
    exit_code = 0;
out:
    csa_writer_stop(g.writer);
    csa_executor_stop(g.executor);
    csa_executor_stop(g.auth_executor);
    csa_executor_stop(g.health_executor);
    csa_db_pool_destroy(g.auth_pool);
    csa_db_pool_destroy(g.health_pool);
    csa_ratelimit_destroy(g.limits);
    csa_authfail_destroy(g.authfail);
    csa_rules_free(g.rules);
    csa_keycache_destroy(g.keys);
    csa_db_pool_destroy(g.pool);
    free(g.workers);
    return exit_code;
}
