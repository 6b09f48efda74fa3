/* server.c: see server.h. */
#include "server.h"

#include "db.h"
#include "error.h"
#include "keys.h"
#include "log.h"
#include "validate.h"
#include "writer.h"

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
/* evhttp's own hard cap on a body; above it evhttp answers 413 itself (not in our JSON format).
 * Our limits (MAX_BODY_SINGLE / MAX_BODY_BATCH) sit below it and answer in the spec's format. */
#define HARD_BODY_CAP_EXTRA (4 * 1024 * 1024)

typedef struct worker worker;

/* One accepted connection, tracked from evhttp's bufferevent callback until evhttp frees it. */
typedef struct conn_track {
    struct bufferevent *bev;        /* we hold one reference, so the pointer stays valid */
    struct conn_track *hash_next;   /* bucket chain */
    struct conn_track *prev, *next; /* all connections of the worker */
    double mark;                    /* accept time, or the time of the last response */
    int busy;                       /* a request is in our hands (not reading) */
    int cut;                        /* deadline passed, socket shut down */
} conn_track;

struct worker {
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sweep;
    struct event *stop_ev;
    struct event *done_ev;          /* wakes the loop when the writer reported on requests */
    pthread_mutex_t done_lock;
    struct request_ctx *done_head;  /* requests the writer has reported on, not yet answered */
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
    worker *workers;
    int nworkers;
    atomic_int stopping;
    atomic_int inflight; /* requests waiting for the writer */
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
    t->mark = now_mono();
    unsigned b = bucket_of(bev);
    t->hash_next = w->buckets[b];
    w->buckets[b] = t;
    t->next = w->all;
    if (w->all)
        w->all->prev = t;
    w->all = t;
    w->live++;
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
            track_remove(w, t);
            bufferevent_decref(t->bev);
            free(t);
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

/* What a handler works with. Lives until the response is sent (or the client is gone). */
typedef struct request_ctx {
    worker *w;
    struct evhttp_request *req; /* NULL once the connection closed under us */
    char request_id[32];
    char method[8];
    char path[128];
    double started;
    /* deferred ingest */
    csa_write_item item;
    struct request_ctx *done_next; /* worker's list of reported requests */
    json_t *reply;      /* body to send on success */
    int is_batch;
} request_ctx;

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

/* Sends status + JSON body (stolen), logs the request line, and ends the ctx. */
static void send_json(request_ctx *ctx, int http_status, const char *reason, json_t *body)
{
    struct evhttp_request *req = ctx->req;
    if (req) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_add_header(out, "X-Request-Id", ctx->request_id);
        if (http_status == 503)
            evhttp_add_header(out, "Retry-After", "1");
        if (atomic_load(&g.stopping))
            evhttp_add_header(out, "Connection", "close");
        struct evbuffer *buf = evbuffer_new();
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
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
        evhttp_send_reply(req, http_status, reason, buf);
        evbuffer_free(buf);
    }
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
    send_json(ctx, csa_status_http(status), csa_status_reason(status), csa_error_body(status, detail, errors));
}

static void ctx_free(request_ctx *ctx)
{
    json_decref(ctx->item.rows);
    json_decref(ctx->reply);
    free(ctx);
}

/* The client closed its connection while its request waited for the writer. */
static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
    request_ctx *ctx = arg;
    ctx->req = NULL;
}

/* ---- handlers ------------------------------------------------------------------------------- */

typedef void (*handler_fn)(request_ctx *ctx, const char *project_id, json_t *body);

static void handle_health(request_ctx *ctx, const char *project_id, json_t *body)
{
    char ts[40];
    csa_format_now(ts, sizeof ts);
    int ok = 0;
    PGconn *conn = csa_db_pool_acquire(g.pool, 1000);
    if (conn) {
        PGresult *res = PQexec(conn, "SELECT 1");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        csa_db_pool_release(g.pool, conn, !ok);
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "status", ok ? "healthy" : "unhealthy", "version", CSA_VERSION,
                            "timestamp", ts, "database", ok ? "ok" : "unreachable");
    send_json(ctx, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", out);
    ctx_free(ctx);
}

/* Writer thread: hand the outcome back to the request's own event loop. One wake-up per group
 * and worker, not per request: the list is only signalled when it goes from empty to non-empty. */
static void on_write_done(csa_write_item *item)
{
    request_ctx *ctx = item->arg;
    worker *w = ctx->w;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL;
    ctx->done_next = w->done_head;
    w->done_head = ctx;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        event_active(w->done_ev, EV_READ, 0);
}

/* Event-loop thread: answer every request the writer has reported on. */
static void on_writes_reported(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->done_lock);
    request_ctx *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->done_lock);
    for (request_ctx *ctx = list, *next; ctx; ctx = next) {
        next = ctx->done_next;
        if (ctx->item.status == CSA_OK) {
            json_t *reply = ctx->reply;
            ctx->reply = NULL;
            send_json(ctx, 200, "OK", reply);
        } else if (ctx->item.status == CSA_ERR_UNAVAILABLE) {
            send_error(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; nothing was stored. Retry later.", NULL);
        } else {
            send_error(ctx, CSA_ERR_INTERNAL, "The records could not be stored.", NULL);
        }
        atomic_fetch_sub(&g.inflight, 1);
        ctx_free(ctx);
    }
}

/* Queues rows for the writer; the ctx now waits for on_writes_reported. Returns 0, or -1 after
 * answering 503 itself. */
static int defer_write(request_ctx *ctx, json_t *rows, json_t *reply)
{
    ctx->item.rows = rows;
    ctx->item.done = on_write_done;
    ctx->item.arg = ctx;
    ctx->reply = reply;
    atomic_fetch_add(&g.inflight, 1);
    if (csa_writer_submit(g.writer, &ctx->item) < 0) {
        atomic_fetch_sub(&g.inflight, 1);
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; nothing was stored. Retry later.", NULL);
        ctx_free(ctx);
        return -1;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(ctx->req), on_client_gone, ctx);
    return 0;
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

static void handle_ingest(request_ctx *ctx, const char *project_id, json_t *body)
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
    prepare_row(row, project_id);
    json_t *reply = json_pack("{s:s, s:O}", "status", "ok", "invocation_id", json_object_get(row, "invocation_id"));
    json_t *rows = json_array();
    json_array_append_new(rows, row);
    defer_write(ctx, rows, reply);
}

static void handle_ingest_batch(request_ctx *ctx, const char *project_id, json_t *body)
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
            prepare_row(row, project_id);
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
    defer_write(ctx, rows, reply);
}

/* ---- routing ------------------------------------------------------------------------------- */

#define ROUTE_AUTH 1u       /* needs X-API-Key */
#define ROUTE_JSON_BODY 2u  /* body parsed as JSON before the handler */
#define ROUTE_BATCH_LIMIT 4u /* body limit MAX_BODY_BATCH instead of MAX_BODY_SINGLE */

typedef struct route {
    const char *path;
    enum evhttp_cmd_type method;
    handler_fn handler;
    unsigned flags;
} route;

static const route routes[] = {
    {"/api/v1/health", EVHTTP_REQ_GET, handle_health, 0},
    {"/api/v1/ingest", EVHTTP_REQ_POST, handle_ingest, ROUTE_AUTH | ROUTE_JSON_BODY},
    {"/api/v1/ingest/batch", EVHTTP_REQ_POST, handle_ingest_batch,
     ROUTE_AUTH | ROUTE_JSON_BODY | ROUTE_BATCH_LIMIT},
};

static int content_type_is_json(const char *ct)
{
    if (!ct)
        return 1; /* absent: assume JSON, as curl -d users expect */
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
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
    snprintf(ctx->request_id, sizeof ctx->request_id, "%d-%llx-%llx", w->index,
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
    if (t)
        t->busy = 1;

    const route *r = NULL;
    int path_known = 0;
    char allow[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        path_known = 1;
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 method_name(routes[i].method));
        if (routes[i].method == method)
            r = &routes[i];
    }
    if (!path_known) {
        send_error(ctx, CSA_ERR_NOT_FOUND, "Not found", NULL);
        goto done;
    }
    if (!r) {
        if (ctx->req)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        char detail[128];
        snprintf(detail, sizeof detail, "Method %s is not allowed here; allowed: %s", ctx->method, allow);
        send_error(ctx, CSA_ERR_METHOD, detail, NULL);
        goto done;
    }
    if (atomic_load(&g.stopping) && (r->flags & ROUTE_JSON_BODY)) {
        send_error(ctx, CSA_ERR_UNAVAILABLE, "The server is shutting down; nothing was stored. Retry.", NULL);
        goto done;
    }

    json_t *body = NULL;
    if (r->flags & ROUTE_JSON_BODY) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
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
    char project_id[CSA_UUID_LEN + 1] = "";
    if (r->flags & ROUTE_AUTH) {
        const char *key = evhttp_find_header(evhttp_request_get_input_headers(req), "X-API-Key");
        csa_status st = csa_keycache_authenticate(g.keys, g.pool, key, project_id);
        if (st == CSA_ERR_UNAVAILABLE) {
            send_error(ctx, st, "The database is unavailable; retry later.", NULL);
            goto done;
        }
        if (st != CSA_OK) {
            send_error(ctx, CSA_ERR_AUTH, "Invalid or missing API key", NULL);
            goto done;
        }
    }
    if (r->flags & ROUTE_JSON_BODY) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
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
    r->handler(ctx, project_id, body); /* the handler owns ctx from here */
    json_decref(body);
    return;
done:
    ctx_free(ctx);
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
    w->done_ev = event_new(w->base, -1, 0, on_writes_reported, w);
    pthread_mutex_init(&w->done_lock, NULL);
    return 0;
}

static void worker_cleanup(worker *w)
{
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
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);

    /* signals are taken by sigwait() in this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    g.pool = csa_db_pool_create(cfg->database_url, cfg->database_pool_size);
    g.keys = csa_keycache_create(cfg->key_cache_ttl_s, 4096);
    g.writer = csa_writer_start(cfg->database_url, cfg->writers, cfg->writer_batch_max,
                                cfg->writer_batch_max * 50);
    g.nworkers = cfg->workers;
    g.workers = calloc((size_t)g.nworkers, sizeof *g.workers);
    if (!g.pool || !g.keys || !g.writer || !g.workers) {
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

    for (int i = 0; i < g.nworkers; i++)
        pthread_create(&g.workers[i].thread, NULL, worker_main, &g.workers[i]);
    csa_log(CSA_LOG_INFO, "listening",
            json_pack("{s:s, s:i, s:i, s:s}", "host", cfg->host, "port", cfg->port, "workers", cfg->workers,
                      "version", CSA_VERSION));

    int sig = 0;
    sigwait(&sigs, &sig);
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
    for (int i = 0; i < g.nworkers; i++)
        worker_cleanup(&g.workers[i]);
    if (left > 0)
        csa_logf(CSA_LOG_WARN, "%d requests were still waiting at the drain deadline", left);
    csa_logf(CSA_LOG_INFO, "stopped");
    exit_code = 0;
out:
    csa_writer_stop(g.writer);
    csa_keycache_destroy(g.keys);
    csa_db_pool_destroy(g.pool);
    free(g.workers);
    return exit_code;
}
