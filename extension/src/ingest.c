/* ingest.c: see ingest.h. */
#include "ingest.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"

struct csa_ingest {
    struct evhttp *http;
    csa_ingest_hooks hooks;
    struct event *after; /* runs hooks.added on the next loop turn, after the reply went out */
};

int csa_http_listen(struct evhttp *http, const char *host, int port)
{
    struct sockaddr_storage ss;
    int len;
    if (csa_numeric_address(host, port, &ss, &len) != 0)
        return evhttp_bind_socket(http, host, (unsigned short)port); /* a name: the resolver it is */
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0 || listen(fd, 128) != 0 ||
        !evhttp_accept_socket_with_handle(http, fd)) {
        close(fd);
        return -1;
    }
    return 0;
}

static void reply_json(struct evhttp_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *out = evbuffer_new();
    if (text)
        evbuffer_add(out, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status == 202 ? "Accepted" : status == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

/* The error contract shared with the backend: {"detail","error_code","timestamp"}. */
static void reply_error(struct evhttp_request *req, int status, const char *code, const char *detail)
{
    char ts[40];
    csa_format_now(ts, sizeof ts);
    reply_json(req, status, json_pack("{s:s, s:s, s:s}", "detail", detail, "error_code", code, "timestamp", ts));
}

static void on_request(struct evhttp_request *req, void *arg)
{
    csa_ingest *in = arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t path_len = strcspn(uri, "?");
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int single = path_len == strlen("/api/v1/ingest") && strncmp(uri, "/api/v1/ingest", path_len) == 0;
    int batch = path_len == strlen("/api/v1/ingest/batch") && strncmp(uri, "/api/v1/ingest/batch", path_len) == 0;

    if (method == EVHTTP_REQ_GET && strncmp(uri, "/coldstart/v1/status", path_len) == 0 &&
        path_len == strlen("/coldstart/v1/status")) {
        reply_json(req, 200, in->hooks.status(in->hooks.arg));
        return;
    }
    if (!single && !batch) {
        reply_error(req, 404, "NOT_FOUND", "Not Found");
        return;
    }
    if (method != EVHTTP_REQ_POST) {
        reply_error(req, 405, "METHOD_NOT_ALLOWED", "Method Not Allowed");
        return;
    }
    const char *key = evhttp_find_header(evhttp_request_get_input_headers(req), "X-API-Key");
    if (key)
        in->hooks.api_key(key, in->hooks.arg);

    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    json_error_t error;
    json_t *body = json_loadb((const char *)evbuffer_pullup(buf, -1), len, JSON_REJECT_DUPLICATES, &error);
    json_t *list = batch ? json_object_get(body, "invocations") : NULL;
    if (!json_is_object(body) || (batch && !json_is_array(list))) {
        json_decref(body);
        reply_error(req, 422, "VALIDATION_ERROR",
                    batch ? "body must be {\"invocations\": [...]}" : "body must be a JSON object");
        return;
    }
    size_t accepted = 0;
    if (single) {
        in->hooks.add(body, in->hooks.arg); /* ownership moves */
        accepted = 1;
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item)
        {
            if (json_is_object(item)) {
                in->hooks.add(json_incref(item), in->hooks.arg);
                accepted++;
            }
        }
        json_decref(body);
    }
    reply_json(req, 202, json_pack("{s:I}", "accepted", (json_int_t)accepted));
    /* hooks.added may start network work: never before the reply is on its way */
    struct timeval zero = {0, 0};
    evtimer_add(in->after, &zero);
}

static void on_after(evutil_socket_t fd, short what, void *arg)
{
    csa_ingest *in = arg;
    in->hooks.added(in->hooks.arg);
}

csa_ingest *csa_ingest_create(struct event_base *base, const char *host, int port, const csa_ingest_hooks *hooks)
{
    csa_ingest *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->hooks = *hooks;
    in->http = evhttp_new(base);
    in->after = evtimer_new(base, on_after, in);
    if (!in->http || !in->after)
        goto fail;
    evhttp_set_max_body_size(in->http, CSA_INGEST_MAX_BODY);
    evhttp_set_allowed_methods(in->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_timeout(in->http, 30);
    evhttp_set_gencb(in->http, on_request, in);
    if (csa_http_listen(in->http, host, port) != 0) {
        csa_log(CSA_LOG_ERROR, "cannot listen", json_pack("{s:s, s:i}", "host", host, "port", port));
        goto fail;
    }
    return in;
fail:
    csa_ingest_destroy(in);
    return NULL;
}

void csa_ingest_destroy(csa_ingest *in)
{
    if (!in)
        return;
    if (in->http)
        evhttp_free(in->http);
    if (in->after)
        event_free(in->after);
    free(in);
}

typedef struct telemetry_ctx {
    csa_telemetry_body on_body;
    void *arg;
} telemetry_ctx;

static telemetry_ctx g_telemetry; /* one listener per process */

static void on_telemetry(struct evhttp_request *req, void *arg)
{
    telemetry_ctx *ctx = arg;
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    int rc = evhttp_request_get_command(req) == EVHTTP_REQ_POST
                 ? ctx->on_body((const char *)evbuffer_pullup(buf, -1), len, ctx->arg)
                 : -1;
    evhttp_send_reply(req, rc < 0 ? 400 : 200, rc < 0 ? "Bad Request" : "OK", NULL);
}

struct evhttp *csa_telemetry_listen(struct event_base *base, const char *host, int port, csa_telemetry_body on_body,
                                    void *arg)
{
    struct evhttp *http = evhttp_new(base);
    if (!http)
        return NULL;
    g_telemetry = (telemetry_ctx){on_body, arg};
    /* maxBytes is at most 1 MiB per delivery; leave room for the JSON framing */
    evhttp_set_max_body_size(http, 2u << 20);
    evhttp_set_timeout(http, 30);
    evhttp_set_gencb(http, on_telemetry, &g_telemetry);
    if (csa_http_listen(http, host, port) != 0) {
        csa_log(CSA_LOG_ERROR, "cannot listen for telemetry", json_pack("{s:s, s:i}", "host", host, "port", port));
        evhttp_free(http);
        return NULL;
    }
    return http;
}
