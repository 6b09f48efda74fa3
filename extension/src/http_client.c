/* http_client.c: see http_client.h. */
#include "http_client.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int csa_url_parse(const char *text, int bare_ok, csa_url *out)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return -1;
    const char *p = text;
    if (strncmp(p, "https://", 8) == 0) {
#ifndef CSA_TLS
        return -2;
#endif
        out->tls = 1;
        p += 8;
    } else if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (!bare_ok)
        return -1;
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0 || hostlen >= sizeof out->host)
        return -1;
    memcpy(out->host, p, hostlen);
    p += hostlen;
    out->port = out->tls ? 443 : 80;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return -1;
        out->port = (int)port;
        p = end;
    }
    if (*p && *p != '/')
        return -1;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof out->prefix)
        return -1;
    memcpy(out->prefix, p, plen);
    snprintf(out->hostport, sizeof out->hostport, "%s:%d", out->host, out->port);
    return 0;
}

int csa_numeric_address(const char *host, int port, struct sockaddr_storage *ss, int *len)
{
    char text[300];
    *len = (int)sizeof *ss;
    snprintf(text, sizeof text, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return evutil_parse_sockaddr_port(text, (struct sockaddr *)ss, len);
}

typedef struct request_ctx {
    csa_http_done done;
    void *arg;
    int called;
} request_ctx;

static void on_response(struct evhttp_request *req, void *arg)
{
    request_ctx *ctx = arg;
    if (ctx->called)
        return;
    ctx->called = 1;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status == 0) {
        ctx->done(0, NULL, 0, NULL, ctx->arg);
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
        ctx->done(status, body, len, evhttp_request_get_input_headers(req), ctx->arg);
    }
    free(ctx);
}

int csa_http_request(struct evhttp_connection *conn, const csa_url *url, enum evhttp_cmd_type method, const char *path,
                     const char *const *headers, const char *body, size_t len, csa_http_done done, void *arg)
{
    request_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -1;
    ctx->done = done;
    ctx->arg = arg;
    struct evhttp_request *req = evhttp_request_new(on_response, ctx);
    if (!req) {
        free(ctx);
        return -1;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Host", url->hostport);
    evhttp_add_header(out, "User-Agent", "coldstart-extension/" CSA_EXT_VERSION);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        evhttp_add_header(out, headers[i], headers[i + 1]);
    if (body) {
        evhttp_add_header(out, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    }
    char uri[1024];
    snprintf(uri, sizeof uri, "%s%s", url->prefix, path);
    if (evhttp_make_request(conn, req, method, uri) != 0) {
        /* evhttp_make_request frees req on failure without calling back */
        free(ctx);
        return -1;
    }
    return 0;
}
