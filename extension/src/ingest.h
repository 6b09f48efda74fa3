/*
 * ingest.h: the local endpoint the SDK sends to instead of the internet (127.0.0.1:7242).
 *
 * It speaks the backend's ingest API: POST /api/v1/ingest (one record) and /api/v1/ingest/batch
 * ({"invocations":[...]}), answered 202 as soon as the body is parsed: the records are queued and
 * nothing on this path waits for the network. GET /coldstart/v1/status returns the counters.
 * Records are checked only for being JSON objects: the backend validates them; the extension must
 * not reject what a newer SDK sends. Bodies above CSA_INGEST_MAX_BODY are refused by evhttp (413).
 */
#ifndef CSA_INGEST_H
#define CSA_INGEST_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#define CSA_INGEST_MAX_BODY (8u << 20)

typedef struct csa_ingest_hooks {
    void (*add)(json_t *record, void *arg);      /* takes ownership of one record */
    void (*added)(void *arg);                    /* after a body's records, the reply already queued */
    json_t *(*status)(void *arg);                /* new object for GET /coldstart/v1/status */
    void (*api_key)(const char *key, void *arg); /* X-API-Key seen on a request */
    void *arg;
    /* the stream only (stream.h), each may be NULL: */
    int (*offer)(void *arg); /* 1 when an SDK may leave its warm records to the extension (once) */
    /* an SDK leaves them: the template (borrowed), its sample rate; owner identifies its connection */
    void (*delegate)(json_t *record, double sample_rate, const void *owner, void *arg);
    void (*closed)(const void *owner, void *arg); /* that connection has ended */
} csa_ingest_hooks;

typedef struct csa_ingest csa_ingest;

/*
 * Listens on host:port for evhttp. A numeric address is bound directly: evhttp_bind_socket goes
 * through getaddrinfo, whose interface scan (a netlink round trip) costs ~0.3 ms of start-up per
 * listener. A host name still takes that path. Returns 0, or -1 when the address cannot be bound.
 */
int csa_http_listen(struct evhttp *http, const char *host, int port);

/* Binds host:port. Returns NULL (and logs) when the address cannot be bound. */
csa_ingest *csa_ingest_create(struct event_base *base, const char *host, int port, const csa_ingest_hooks *hooks);
void csa_ingest_destroy(csa_ingest *in);

/* Telemetry listener: every POST body goes to on_body; answers 200, or 400 when on_body returns < 0. */
typedef int (*csa_telemetry_body)(const char *body, size_t len, void *arg);
struct evhttp *csa_telemetry_listen(struct event_base *base, const char *host, int port, csa_telemetry_body on_body,
                                    void *arg);

#endif
