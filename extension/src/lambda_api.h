/*
 * lambda_api.h: the Extensions API (register, next-event loop, error reports) and the Telemetry API
 * subscription, as AWS documents them:
 *   POST /2020-01-01/extension/register   Lambda-Extension-Name: <file name>  {"events":[...]}
 *        (["SHUTDOWN"], or ["INVOKE","SHUTDOWN"] with invoke_events)
 *        -> Lambda-Extension-Identifier: <id>
 *   GET  /2020-01-01/extension/event/next Lambda-Extension-Identifier: <id>   (long poll)
 *   PUT  /2022-07-01/telemetry            Lambda-Extension-Identifier: <id>   {schemaVersion,...}
 *   POST /2020-01-01/extension/init/error Lambda-Extension-Function-Error-Type: Extension.<Reason>
 * The order is register, subscribe, then next: Lambda ends the init phase when every extension
 * has asked for its next event. The next-event request has no timeout: the environment may be
 * frozen for hours while it waits.
 */
#ifndef CSA_LAMBDA_API_H
#define CSA_LAMBDA_API_H

#include <event2/event.h>
#include <stddef.h>

#include "telemetry.h"

typedef enum { CSA_EVENT_INVOKE = 1, CSA_EVENT_SHUTDOWN = 2 } csa_event_type;

typedef struct csa_lambda_event {
    csa_event_type type;
    char request_id[CSA_ID_MAX]; /* INVOKE */
    char reason[32];             /* SHUTDOWN: spindown, timeout, failure */
    long long deadline_ms;       /* epoch milliseconds; 0 when absent */
} csa_lambda_event;

/* Parses a next-event body. Returns 0, or -1 when it is not an INVOKE or SHUTDOWN event. */
int csa_lambda_parse_event(const char *body, size_t len, csa_lambda_event *out);

typedef struct csa_lambda_handlers {
    void (*on_registered)(void *arg);                           /* register answered (may be NULL) */
    void (*on_ready)(void *arg);                                /* registered and subscribed */
    void (*on_event)(const csa_lambda_event *event, void *arg); /* INVOKE or SHUTDOWN */
    void (*on_fatal)(const char *what, void *arg);              /* cannot go on: exit */
    void *arg;
} csa_lambda_handlers;

typedef struct csa_lambda_config {
    const char *runtime_api;   /* AWS_LAMBDA_RUNTIME_API, "host:port" */
    const char *name;          /* our file name in /opt/extensions */
    const char *telemetry_uri; /* "http://sandbox.localdomain:7243", NULL = do not subscribe */
    int buffer_max_items;      /* 25..10000 */
    int buffer_max_bytes;      /* 262144..1048576 */
    int buffer_timeout_ms;     /* 25..30000 */
    int invoke_events;         /* register for INVOKE as well as SHUTDOWN (see main.c) */
} csa_lambda_config;

typedef struct csa_lambda csa_lambda;

/* Returns NULL on a bad runtime_api or allocation failure. Strings in cfg are copied. */
csa_lambda *csa_lambda_create(struct event_base *base, const csa_lambda_config *cfg, const csa_lambda_handlers *h);
/* No telemetry subscription after all (the listener could not be bound): call before the loop runs. */
void csa_lambda_skip_telemetry(csa_lambda *l);
/* Starts registration; the rest follows from the callbacks. */
int csa_lambda_start(csa_lambda *l);
/* 1 once Lambda has accepted the telemetry subscription (platform reports will come). */
int csa_lambda_telemetry_active(const csa_lambda *l);
/* Asks for the next event (after on_event has handled an INVOKE). */
void csa_lambda_next(csa_lambda *l);
/* Reports an init error (before the first next) so that Lambda fails the init with a reason. */
void csa_lambda_init_error(csa_lambda *l, const char *reason);
void csa_lambda_destroy(csa_lambda *l);

#endif
