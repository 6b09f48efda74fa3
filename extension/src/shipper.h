/*
 * shipper.h: sends ready records to the backend in batches, after the function's response.
 *
 * One batch in flight at a time on one keep-alive connection. The batch body is serialised once
 * and re-sent byte for byte on a retry (network error, 408, 429, 5xx), so every retry carries the
 * same invocation_ids and the backend stores each record once. Other answers (400, 401, 413, 422)
 * drop the batch and count it as rejected: sending it again would get the same answer, and so do
 * the records a 2xx "partial" answer lists as failed (the backend validates each record). Backoff
 * doubles from 100 ms to 5 s; csa_shipper_hurry (SHUTDOWN) cuts it to 50 ms.
 */
#ifndef CSA_SHIPPER_H
#define CSA_SHIPPER_H

#include <event2/event.h>

#include "http_client.h"
#include "records.h"

typedef struct csa_shipper csa_shipper;

typedef struct csa_shipper_stats {
    unsigned long long batches;  /* batches accepted by the backend */
    unsigned long long shipped;  /* records in them that the backend accepted */
    unsigned long long attempts; /* POSTs made, retries included */
    unsigned long long retries;  /* failed attempts that will be (or would have been) retried */
    unsigned long long rejected; /* records dropped on a final 4xx or refused in a partial answer */
} csa_shipper_stats;

/*
 * endpoint may be NULL (no usable backend: records are kept until SHUTDOWN, then counted lost).
 * records is borrowed and must outlive the shipper. Returns NULL on allocation failure.
 */
csa_shipper *csa_shipper_create(struct event_base *base, const csa_url *endpoint, const char *api_key,
                                csa_records *records, size_t batch_size);
void csa_shipper_destroy(csa_shipper *s);

/* Schedules a send on the next loop turn (never inside the caller's stack), if one is due. */
void csa_shipper_kick(csa_shipper *s);
/* Uses key when none was configured (the SDK's X-API-Key header). */
void csa_shipper_offer_api_key(csa_shipper *s, const char *key);
/* Short backoff and per-request timeouts bounded by deadline_ms (monotonic) from now on. */
void csa_shipper_hurry(csa_shipper *s, long long deadline_ms);
/* 1 when no batch is in flight or waiting for a retry. */
int csa_shipper_idle(const csa_shipper *s);
/* Records in the batch in flight or waiting for a retry. */
size_t csa_shipper_in_flight(const csa_shipper *s);
const csa_shipper_stats *csa_shipper_stats_get(const csa_shipper *s);

/* Monotonic milliseconds. */
long long csa_now_ms(void);

#endif
