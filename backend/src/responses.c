/*
 * responses.c: sending a response. Every answer of the API goes through csa__send_json: the
 * request id, CORS, rate-limit and Retry-After headers, the connection's bookkeeping (its
 * deadline restarts, the header gate reads the next head) and one log line per request.
 */
#include "server_internal.h"

#include "log.h"
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double csa__now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void csa__request_id(csa__worker *w, char out[48])
{
    snprintf(out, 48, "%08x-%d-%llx-%llx", csa__g.instance, w->index, (unsigned long long)time(NULL), ++w->request_seq);
}

const char *csa__cors_origin(struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin)
        return NULL;
    for (int i = 0; i < csa__g.cfg->ncors; i++) {
        if (strcmp(csa__g.cfg->cors[i], "*") == 0 || strcmp(csa__g.cfg->cors[i], origin) == 0)
            return origin;
    }
    return NULL;
}

static void add_cors_headers(struct evhttp_request *req, struct evkeyvalq *out)
{
    const char *origin = csa__cors_origin(req);
    if (!origin)
        return;
    evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(out, "Vary", "Origin");
    evhttp_add_header(out, "Access-Control-Expose-Headers",
                      "X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset");
}

void csa__send_json(csa__request *ctx, int http_status, const char *reason, json_t *body)
{
    struct evhttp_request *req = ctx->req;
    if (req) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        if (body)
            evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_add_header(out, "X-Request-Id", ctx->request_id);
        if (http_status == 503 && !evhttp_find_header(out, "Retry-After"))
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
        if (atomic_load(&csa__g.stopping))
            evhttp_add_header(out, "Connection", "close");
        struct evbuffer *buf = evbuffer_new();
        char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
        if (text) {
            evbuffer_add(buf, text, strlen(text));
            free(text);
        }
        csa__conn *t = csa__conn_of_request(ctx->w, req);
        if (t) {
            t->busy = 0;
            t->mark = csa__now_mono();
        }
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
        if (t)
            t->own_reply = 1;
        evhttp_send_reply(req, http_status, reason, buf);
        if (t) {
            t->own_reply = 0;
            csa__gate_reset(t); /* what follows on the connection is the next request's head */
        }
        evbuffer_free(buf);
    }
    csa_metrics_request(ctx->route_index, http_status, csa__now_mono() - ctx->started);
    if (ctx->w->cfg->log_requests && csa_log_enabled(CSA_LOG_INFO)) {
        double ms = (csa__now_mono() - ctx->started) * 1000.0;
        json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:f}", "request_id", ctx->request_id, "method", ctx->method, "path",
                              ctx->path, "status", http_status, "duration_ms",
                              (double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
        if (!req)
            json_object_set_new(f, "client_gone", json_true());
        csa_log(CSA_LOG_INFO, "request", f);
    }
    json_decref(body);
}

void csa__send_error(csa__request *ctx, csa_status status, const char *detail, json_t *errors)
{
    json_t *body = ctx->firehose ? csa_error_body_firehose(status, detail, ctx->firehose_request_id, errors)
                                 : csa_error_body(status, detail, errors);
    csa__send_json(ctx, csa_status_http(status), csa_status_reason(status), body);
}

void csa__log_evhttp_error(csa__worker *w, const char *request_id, int status)
{
    if (w->cfg->log_requests && csa_log_enabled(CSA_LOG_INFO))
        csa_log(CSA_LOG_INFO, "request",
                json_pack("{s:s, s:s, s:s, s:i, s:s}", "request_id", request_id, "method", "?", "path", "?", "status",
                          status, "note", "refused by the HTTP parser"));
}

void csa__request_free(csa__request *ctx)
{
    json_decref(ctx->item.rows);
    json_decref(ctx->reply);
    json_decref(ctx->args);
    json_decref(ctx->fields);
    json_decref(ctx->errors);
    free(ctx);
}
