/*
 * server.h: the HTTP API. WORKERS event-loop threads (libevent evhttp), each with its own
 * SO_REUSEPORT listener; one route table and one dispatcher that checks method, body size,
 * content type and API key before any handler runs; writes go through the group-commit writer.
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
