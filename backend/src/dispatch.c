/*
 * dispatch.c: the dispatcher. Every request passes one gate (csa__on_request, continue_request)
 * that does, before any handler runs and in this order, what its route (routes.c) declares:
 * method and path (404, 405, CORS preflight), body size (413) and Content-Type (415), the key or
 * the admin token (401, looked up off the event loop when not cached; 429 for an address with
 * too many failed authentications), the scope (403), the rate limit per key and project (429),
 * the JSON body, and the query and body field rules (400). The handler then does only its job,
 * and every answer, error or not, is sent and the request freed in one place: csa__complete.
 */
#include "server_internal.h"

#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "ui.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- answers -------------------------------------------------------------------------------- */

csa_status csa__fail(csa__request *ctx, csa_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->detail, sizeof ctx->detail, fmt, ap);
    va_end(ap);
    return status;
}

csa_status csa__invalid(csa__request *ctx, json_t *errors)
{
    json_decref(ctx->errors);
    ctx->errors = errors;
    return csa__fail(ctx, CSA_ERR_VALIDATION, "Validation error");
}

static const char *reason_of(int http_status)
{
    switch (http_status) {
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 503: return "Service Unavailable";
    default: return "OK";
    }
}

void csa__complete(csa__request *ctx, csa_status st)
{
    if (st == CSA_OK && ctx->deferred)
        return; /* the off-loop work owns the request and answers when it reports */
    if (st == CSA_OK) {
        int http_status = ctx->reply_status ? ctx->reply_status : 200;
        json_t *reply = ctx->reply;
        ctx->reply = NULL;
        csa__send_json(ctx, http_status, reason_of(http_status), reply);
    } else {
        json_t *errors = ctx->errors;
        ctx->errors = NULL;
        csa__send_error(ctx, st, ctx->detail[0] ? ctx->detail : csa_status_reason(st), errors);
    }
    csa__request_free(ctx);
}

/* ---- off-loop work -------------------------------------------------------------------------- */

/* The client closed its connection while its request waited. */
static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
    csa__request *ctx = arg;
    ctx->req = NULL;
}

/* Any thread. One wake-up per burst and worker, not per request: the loop is only signalled when
 * its list was empty. */
void csa__report_done(csa__request *ctx)
{
    csa__worker *w = ctx->w;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL && w->gate_done == NULL;
    ctx->done_next = w->done_head;
    w->done_head = ctx;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        event_active(w->done_ev, EV_READ, 0);
}

void csa__on_work_reported(evutil_socket_t fd, short what, void *arg)
{
    csa__worker *w = arg;
    pthread_mutex_lock(&w->done_lock);
    csa__request *list = w->done_head;
    w->done_head = NULL;
    csa__gate_job *lookups = w->gate_done;
    w->gate_done = NULL;
    pthread_mutex_unlock(&w->done_lock);
    csa__gate_resume_all(lookups);
    for (csa__request *ctx = list, *next; ctx; ctx = next) {
        next = ctx->done_next;
        ctx->deferred = 0;
        atomic_fetch_sub(&csa__g.inflight, 1);
        csa__complete(ctx, ctx->finish(ctx));
    }
}

void csa__begin_wait(csa__request *ctx)
{
    atomic_fetch_add(&csa__g.inflight, 1);
    ctx->deferred = 1;
    evhttp_connection_set_closecb(evhttp_request_get_connection(ctx->req), on_client_gone, ctx);
}

void csa__cancel_wait(csa__request *ctx)
{
    atomic_fetch_sub(&csa__g.inflight, 1);
    ctx->deferred = 0;
    evhttp_connection_set_closecb(evhttp_request_get_connection(ctx->req), NULL, NULL);
}

typedef struct query_job {
    csa__request *ctx;
    csa__query_fn fn;
} query_job;

/* Executor thread. */
static void run_query(void *arg)
{
    query_job *job = arg;
    csa__request *ctx = job->ctx;
    PGconn *conn = csa_db_pool_acquire(csa__g.pool, 5000);
    if (!conn) {
        ctx->status = csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; retry later.");
        return;
    }
    json_t *out = NULL;
    ctx->status = job->fn(conn, ctx, &out);
    ctx->reply = out;
    csa_db_pool_release(csa__g.pool, conn, ctx->status == CSA_ERR_UNAVAILABLE);
}

static void query_done(void *arg)
{
    query_job *job = arg;
    csa__request *ctx = job->ctx;
    free(job);
    csa__report_done(ctx);
}

static csa_status finish_query(csa__request *ctx) { return ctx->status; }

csa_status csa__defer_query(csa__request *ctx, csa__query_fn fn)
{
    query_job *job = malloc(sizeof *job);
    ctx->finish = finish_query;
    if (job) {
        job->ctx = ctx;
        job->fn = fn;
        csa__begin_wait(ctx);
        if (csa_executor_submit(csa__g.executor, run_query, query_done, job) == 0)
            return CSA_OK;
        csa__cancel_wait(ctx);
        free(job);
    }
    return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; retry later.");
}

/* ---- the request's parts -------------------------------------------------------------------- */

json_t *csa__query_params(struct evhttp_request *req)
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

const char *csa__arg_str(const csa__request *ctx, const char *name)
{
    json_t *v = json_object_get(ctx->args, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
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

static int admin_token_ok(struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    /* compare digests in constant time, so neither content nor length leaks through timing */
    unsigned char a[crypto_hash_sha256_BYTES], b[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(a, (const unsigned char *)auth + 7, strlen(auth + 7));
    crypto_hash_sha256(b, (const unsigned char *)csa__g.cfg->app_secret_key, strlen(csa__g.cfg->app_secret_key));
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

static csa_status preflight(csa__request *ctx)
{
    struct evhttp_request *req = ctx->req;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (csa__cors_origin(req)) {
        evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        evhttp_add_header(out, "Access-Control-Allow-Headers", "Content-Type, X-API-Key, Authorization");
        evhttp_add_header(out, "Access-Control-Max-Age", "600");
    }
    ctx->reply_status = 204;
    return CSA_OK;
}

/* ---- authentication off the event loop ------------------------------------------------------ */

static csa_status continue_request(csa__request *ctx);

/* Auth executor: looks a key the cache does not hold up in PostgreSQL, so the worker's event loop
 * keeps serving other requests meanwhile. Its threads have connections of their own: slow read
 * queries holding the query pool never hold up ingest's key lookups. */
static void run_auth(void *arg)
{
    csa__request *ctx = arg;
    ctx->status = csa_keycache_fetch(csa__g.keys, csa__g.auth_pool, &ctx->who);
}

static void auth_done(void *arg) { csa__report_done(arg); }

static csa_status finish_auth(csa__request *ctx)
{
    if (!ctx->req) /* the client left meanwhile */
        return csa__fail(ctx, CSA_ERR_AUTH, "Invalid or missing API key");
    if (ctx->status == CSA_ERR_UNAVAILABLE)
        return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; retry later.");
    if (ctx->status != CSA_OK) {
        csa_authfail_record(csa__g.authfail, ctx->client, time(NULL));
        return csa__fail(ctx, CSA_ERR_AUTH, "Invalid or missing API key");
    }
    return continue_request(ctx);
}

static csa_status defer_auth(csa__request *ctx)
{
    ctx->finish = finish_auth;
    csa__begin_wait(ctx);
    if (csa_executor_submit(csa__g.auth_executor, run_auth, auth_done, ctx) == 0)
        return CSA_OK;
    csa__cancel_wait(ctx);
    return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; retry later.");
}

static void run_touch(void *arg)
{
    csa_keycache_touch(csa__g.auth_pool, arg);
    free(arg);
}

static void touch_done(void *arg) {}

/* last_used_at of a cached key, written off the event loop (best effort) */
static void submit_touch(const char *key_id)
{
    char *id = strdup(key_id);
    if (id && csa_executor_submit(csa__g.auth_executor, run_touch, touch_done, id) != 0)
        free(id);
}

/* ---- the dispatcher ------------------------------------------------------------------------- */

/* The key of a keyed route: from the cache, else looked up off the loop (CSA_OK, deferred). */
static csa_status authenticate(csa__request *ctx, const csa__route *r)
{
    struct evhttp_request *req = ctx->req;
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    const char *key = (r->flags & CSA__ROUTE_FIREHOSE) ? evhttp_find_header(headers, "X-Amz-Firehose-Access-Key")
                                                       : NULL;
    if (!key)
        key = evhttp_find_header(headers, "X-API-Key");
    char touch[CSA_UUID_LEN + 1];
    csa_status st = csa_keycache_check(csa__g.keys, key, &ctx->who, touch);
    if (touch[0])
        submit_touch(touch);
    if (st != CSA_OK) {
        char forwarded[CSA_ADDR_MAX] = "";
        const char *xff = evhttp_find_header(headers, "X-Forwarded-For");
        if (xff)
            csa__last_forwarded(xff, forwarded);
        csa__client_address(evhttp_request_get_connection(req), evhttp_find_header(headers, "X-Real-IP"), forwarded,
                            ctx->client);
    }
    long retry = 0;
    if (st == CSA_ERR_NOT_FOUND && !ctx->who.stale &&
        csa_authfail_blocked(csa__g.authfail, ctx->client, time(NULL), &retry)) {
        char v[24];
        snprintf(v, sizeof v, "%ld", retry);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
        return csa__fail(ctx, CSA_ERR_RATE_LIMIT, "Too many failed authentications from this address");
    }
    if (st == CSA_ERR_NOT_FOUND) /* not cached: looked up off the event loop */
        return defer_auth(ctx);
    if (st != CSA_OK) {
        csa_authfail_record(csa__g.authfail, ctx->client, time(NULL));
        return csa__fail(ctx, CSA_ERR_AUTH, "Invalid or missing API key");
    }
    return continue_request(ctx);
}

/* Method, path and body checks, then the key. */
static csa_status dispatch(csa__request *ctx)
{
    struct evhttp_request *req = ctx->req;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    /* logged paths are bounded and printable */
    size_t k = 0;
    for (const char *p = path; *p && k < sizeof ctx->path - 1; p++)
        ctx->path[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    if (ambiguous_framing(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        return csa__fail(ctx, CSA_ERR_VALIDATION,
                         "Ambiguous message length: conflicting Content-Length headers, or Content-Length with "
                         "Transfer-Encoding");
    }
    const csa__route *r = NULL;
    int path_known = 0;
    char allow[96] = "";
    for (size_t i = 0; i < csa__nroutes; i++) {
        const csa__route *c = &csa__routes[i];
        if (!csa__route_matches(c, path, ctx->path_id, sizeof ctx->path_id))
            continue;
        path_known = 1;
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 csa__method_name(c->method));
        if ((c->method == method || (method == EVHTTP_REQ_HEAD && c->method == EVHTTP_REQ_GET)) && !r)
            r = c;
    }
    if (r)
        ctx->route_index = (int)(r - csa__routes);
    if (r && (r->flags & CSA__ROUTE_FIREHOSE)) {
        ctx->firehose = 1;
        /* echoed in every answer, as Firehose requires; kept printable and bounded */
        const char *id = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Amz-Firehose-Request-Id");
        size_t n = 0;
        for (const char *p = id ? id : ""; *p && n < sizeof ctx->firehose_request_id - 1; p++)
            ctx->firehose_request_id[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    }
    int ui_status = path_known ? 0 : csa_ui_serve(req, path); /* the web UI's files: no key, see ui.h */
    if (ui_status) {
        ctx->reply_status = ui_status;
        return CSA_OK;
    }
    if (!path_known)
        return csa__fail(ctx, CSA_ERR_NOT_FOUND, "Not found");
    if (!r && method == EVHTTP_REQ_OPTIONS)
        return preflight(ctx);
    if (!r) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        return csa__fail(ctx, CSA_ERR_METHOD, "Method %s is not allowed here; allowed: %s", ctx->method, allow);
    }
    if (atomic_load(&csa__g.stopping) && r->handler != csa__handle_health)
        return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The server is shutting down; nothing was done. Retry.");
    if (r->body != CSA__BODY_NONE) {
        size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
        size_t limit = csa__route_body_limit(r);
        if (len > limit)
            return csa__fail(ctx, CSA_ERR_TOO_LARGE, "Request body of %zu bytes exceeds the limit of %zu bytes", len,
                             limit);
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (!content_type_is_json(ct))
            return csa__fail(ctx, CSA_ERR_MEDIA_TYPE, "Content-Type must be application/json");
    }
    if (r->flags & CSA__ROUTE_ADMIN_TOKEN) {
        /* APP_SECRET_KEY must be set, 32+ characters and varied enough (csa_secret_strong) */
        if (!csa__g.cfg->admin_secret_ok)
            return csa__fail(ctx, CSA_ERR_FORBIDDEN,
                             "Project creation over the API is disabled: APP_SECRET_KEY is unset, shorter than 32 "
                             "characters or too weak");
        if (!admin_token_ok(req))
            return csa__fail(ctx, CSA_ERR_AUTH,
                             "Invalid or missing admin token (Authorization: Bearer APP_SECRET_KEY)");
    }
    if (r->scope)
        return authenticate(ctx, r);
    return continue_request(ctx);
}

/* The rest of a request once its key (if its route needs one) is known: scope, rate limit, body,
 * field rules, handler. */
static csa_status continue_request(csa__request *ctx)
{
    const csa__route *r = &csa__routes[ctx->route_index];
    struct evhttp_request *req = ctx->req;
    if (r->scope && !(ctx->who.scopes & r->scope)) {
        char have[40], need[16];
        csa_scopes_format(ctx->who.scopes, ", ", have, sizeof have);
        csa_scopes_format(r->scope, ", ", need, sizeof need);
        return csa__fail(ctx, CSA_ERR_FORBIDDEN, "This API key lacks the scope %s needed here (its scopes: %s)", need,
                         have);
    }
    if (r->scope && r->rate_class != CSA__RATE_NONE) {
        ctx->rate = csa_ratelimit_hit_key(csa__g.limits, ctx->who.key_hash, ctx->who.project_id,
                                          (csa_rate_class)r->rate_class, time(NULL));
        ctx->has_rate = 1;
        if (!ctx->rate.allowed) {
            csa_metrics_rate_limited(r->rate_class == CSA_RATE_QUERY);
            return csa__fail(ctx, CSA_ERR_RATE_LIMIT, "Rate limit of %ld requests per %d s exceeded; retry in %ld s",
                             ctx->rate.limit, csa__g.cfg->rate_limit_window_s, ctx->rate.reset_s);
        }
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *body = NULL;
    if ((r->body == CSA__BODY_JSON || r->body == CSA__BODY_JSON_OPTIONAL) &&
        !(len == 0 && r->body == CSA__BODY_JSON_OPTIONAL)) {
        const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
        char why[256];
        body = csa_json_parse(data, len, why, sizeof why);
        if (!body) {
            ctx->errors = json_pack("[{s:[s], s:s, s:s}]", "loc", "body", "msg", why, "type", "json_invalid");
            return csa__fail(ctx, CSA_ERR_VALIDATION, "Malformed JSON body: %s", why);
        }
    }
    json_t *query = csa__query_params(req);
    if (!query) {
        json_decref(body);
        return csa__fail(ctx, CSA_ERR_VALIDATION, "Malformed query string");
    }
    json_t *errors = json_array();
    if (r->query) {
        ctx->args = csa_validate_params(r->query, "query", query, errors);
        json_decref(query);
    } else {
        ctx->args = query;
    }
    if (r->fields)
        ctx->fields = csa_validate_params(r->fields, "body", body, errors);
    if (json_array_size(errors) > 0) {
        json_decref(body);
        return csa__invalid(ctx, errors);
    }
    json_decref(errors);
    csa_status st = r->handler(ctx, body);
    json_decref(body);
    return st;
}

void csa__on_request(struct evhttp_request *req, void *arg)
{
    csa__worker *w = arg;
    csa__request *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    ctx->w = w;
    ctx->req = req;
    ctx->started = csa__now_mono();
    ctx->route_index = -1;
    csa__request_id(w, ctx->request_id);
    snprintf(ctx->method, sizeof ctx->method, "%s", csa__method_name(evhttp_request_get_command(req)));
    csa__conn *t = csa__conn_of_request(w, req);
    if (t) {
        t->busy = 1;
        t->gate = CSA__GATE_IDLE; /* the whole request is in: the gate waits for its answer */
        t->gate_seq++;
    }
    csa__complete(ctx, dispatch(ctx));
}
