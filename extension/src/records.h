/*
 * records.h: SDK records waiting for their platform figures, and the ready queue for the shipper.
 *
 * A record arrives from the SDK (ingest.c) before Lambda has reported on its request: the report
 * of invocation N usually reaches us when the environment thaws for invocation N+1, or during
 * SHUTDOWN. A record is "pending" until its platform.report is known, then joined (csa_join) and
 * "ready". One that waited through two further INVOKE events and at least `max_wait_ms` goes out
 * unjoined rather than never (wall time alone would expire everything after a long freeze).
 * At most `capacity` records are held in total; beyond that the oldest pending one is dropped and
 * counted. Records are jansson objects owned by this module until csa_records_take hands them over.
 */
#ifndef CSA_RECORDS_H
#define CSA_RECORDS_H

#include <jansson.h>

#include "telemetry.h"

typedef struct csa_records csa_records;

typedef struct csa_records_stats {
    unsigned long long received; /* records accepted from the SDK */
    unsigned long long joined;   /* ready with platform figures */
    unsigned long long unjoined; /* ready without (no report came) */
    unsigned long long dropped;  /* pushed out by the capacity bound */
} csa_records_stats;

/* Returns a new store or NULL; free with csa_records_destroy. */
csa_records *csa_records_create(size_t capacity, long long max_wait_ms);
void csa_records_destroy(csa_records *r);

/* Takes ownership of `record` (a JSON object) received while invoke number `invoke_seq` ran. */
void csa_records_add(csa_records *r, json_t *record, unsigned long long invoke_seq, long long now_ms);

/*
 * Joins every pending record whose report is in p and moves it to the ready queue; with
 * `everything`, the rest follows unjoined. Returns how many became ready.
 */
size_t csa_records_settle(csa_records *r, const csa_platform *p, unsigned long long invoke_seq, long long now_ms,
                          int everything);

/* Up to n ready records as a new JSON array owned by the caller, or NULL when none is ready. */
json_t *csa_records_take(csa_records *r, size_t n);

size_t csa_records_pending(const csa_records *r);
size_t csa_records_ready(const csa_records *r);
const csa_records_stats *csa_records_stats_get(const csa_records *r);

/*
 * Overwrites the SDK's estimates in `record` with the platform's figures (init_duration_ms,
 * billed_duration_ms, memory_used_mb, memory_allocated_mb, init_type) and adds a "platform" object
 * that the backend stores or ignores. report may be NULL (then only "platform": {"joined": false}).
 */
void csa_join(json_t *record, const csa_report *report, const csa_init_info *init);

#endif
