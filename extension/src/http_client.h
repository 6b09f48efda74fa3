/*
 * http_client.h: the extension's outgoing HTTP (Lambda's APIs and the backend) over evhttp.
 *
 * One request at a time per connection (evhttp queues the rest). The callback runs exactly once,
 * with status 0 when no answer came (refused, reset, timed out). Lambda's APIs are plain HTTP; the
 * backend may be https:// (shipper.c builds TLS connections when compiled with CSA_TLS).
 */
#ifndef CSA_HTTP_CLIENT_H
#define CSA_HTTP_CLIENT_H

#include <event2/http.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct csa_url {
    char host[256];     /* host name or address, no brackets */
    int port;           /* 80 when not given */
    char prefix[256];   /* path prefix without trailing slash ("" for none) */
    char hostport[300]; /* "host:port" for the Host header */
    int tls;            /* https:// */
} csa_url;

/*
 * Parses "http[s]://host[:port][/prefix]" (or "host:port" when bare_ok). Returns 0, -1 when
 * malformed, -2 for https when this build has no TLS (CSA_TLS off).
 */
int csa_url_parse(const char *text, int bare_ok, csa_url *out);

/* host (an IPv4 or IPv6 address, no brackets) and port as a sockaddr: 0, or -1 for anything else
 * (a host name: the caller resolves it, or binds through evhttp). */
int csa_numeric_address(const char *host, int port, struct sockaddr_storage *ss, int *len);

/*
 * Called once per request. status is the HTTP status or 0 without an answer; body and headers are
 * borrowed (NULL when status is 0) and valid only during the call.
 */
typedef void (*csa_http_done)(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg);

/*
 * Sends method path (the URL's prefix is prepended) with extra headers given as a NULL-terminated
 * list of name, value pairs, and an optional body (copied). Returns 0, or -1 when the request could
 * not even be queued (then `done` is not called).
 */
int csa_http_request(struct evhttp_connection *conn, const csa_url *url, enum evhttp_cmd_type method, const char *path,
                     const char *const *headers, const char *body, size_t len, csa_http_done done, void *arg);

#endif
