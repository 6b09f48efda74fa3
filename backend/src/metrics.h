/*
 * metrics.h: counters and histograms for Prometheus' text format (GET /metrics on the separate
 * METRICS_PORT listener). Everything is a relaxed atomic: recording costs a few nanoseconds and
 * never takes a lock; a scrape reads values that may be a moment apart from each other.
 */
#ifndef CSA_METRICS_H
#define CSA_METRICS_H

#include <stddef.h>

#define CSA_METRICS_ROUTES 32 /* route indexes; the last one is "unmatched" */

/* Names the routes (index -> path template), once at start; index CSA_METRICS_ROUTES-1 is used
 * for requests that matched no route. */
void csa_metrics_set_route_name(int route, const char *name, const char *method);

void csa_metrics_request(int route, int status, double seconds);
void csa_metrics_rate_limited(int query_class);
void csa_metrics_group(int rows, int ok); /* one writer transaction and its outcome */
void csa_metrics_db_error(void);
void csa_metrics_connections(int delta);
/* One committed Firehose delivery (POST /api/v1/ingest/firehose): its records, its record lines
 * stored and skipped as invalid, and the other log events it carried. */
void csa_metrics_firehose(size_t records, size_t accepted, size_t invalid, size_t ignored);

/* Renders everything; `queue_rows` and `pool_in_use`/`pool_size` are sampled by the caller.
 * Returns a malloc'd string (caller frees). */
char *csa_metrics_render(int queue_rows, int pool_in_use, int pool_size);

#endif
