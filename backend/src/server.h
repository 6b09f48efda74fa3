/*
 * server.h: the HTTP API. WORKERS event-loop threads (libevent evhttp), each with its own
 * SO_REUSEPORT listener; one route table (routes.c) and one dispatcher (dispatch.c) that checks
 * method, body size, content type, API key, scope, rate limits and the route's field rules before
 * any handler runs; writes go through the group-commit writer. server_internal.h lists the files.
 *
 * Slow clients: every connection must complete each request within REQUEST_TIMEOUT of being
 * accepted or of its previous response (evhttp alone only times out idle reads, so a client
 * trickling one byte at a time would otherwise hold its connection forever), and each worker
 * stops accepting while it holds MAX_CONNECTIONS / WORKERS connections.
 */
#ifndef CSA_SERVER_H
#define CSA_SERVER_H

#include "config.h"

/* Serves until SIGTERM or SIGINT, then drains in-flight requests and returns the exit code. */
int csa_server_run(const csa_config *cfg);

#endif
