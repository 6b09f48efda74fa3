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
 *
 * Two-phase records: the SDK sends a cold-start record at the start of the invocation with
 * "complete": false (no execution_duration_ms, billed_duration_ms, memory_used_mb), and the full
 * record (same invocation_id and timestamp, no "complete" or true) at its end. While both are held
 * here they become one: the full copy's fields win and the platform join is kept. When the first
 * copy has already been handed to the shipper, the full one is held and shipped on its own (the
 * backend completes the stored row). When only the first copy ever comes (the function crashed or
 * timed out) and its platform.report does, the report's durationMs becomes execution_duration_ms
 * and "complete" is dropped: the record is then complete (platform.completed_from_report).
 *
 * Warm records from the platform: an SDK that leaves its warm records to the extension (the
 * "delegate" line of the stream, stream.h) sends only its cold-start record, and a template of the
 * fields that are the same for every invocation of its process. csa_records_from_platform then
 * builds each warm record from the template and the platform's report for the request: the
 * function's response is followed by no write at all. A report whose request had a record from
 * the SDK (the last CSA_SEEN_MAX request ids are kept) gets none.
 */
#ifndef CSA_RECORDS_H
#define CSA_RECORDS_H

#include <jansson.h>

#include "telemetry.h"

typedef struct csa_records csa_records;

#define CSA_SEEN_MAX 64 /* request ids of the latest SDK records: no record from the platform for them */

typedef struct csa_records_stats {
    unsigned long long received;       /* records accepted from the SDK */
    unsigned long long joined;         /* ready with platform figures */
    unsigned long long unjoined;       /* ready without (no report came) */
    unsigned long long dropped;        /* pushed out by the capacity bound */
    unsigned long long merged;         /* second copies merged into the one held (two-phase records) */
    unsigned long long completed;      /* incomplete records completed from their platform.report */
    unsigned long long incomplete_out; /* records handed to the shipper still incomplete */
    unsigned long long from_platform;  /* warm records built from the platform's reports */
    unsigned long long sampled_out;    /* reports the SDK's sample rate left without a record */
} csa_records_stats;

/* Returns a new store or NULL; free with csa_records_destroy. */
csa_records *csa_records_create(size_t capacity, long long max_wait_ms);
void csa_records_destroy(csa_records *r);

/*
 * Takes ownership of `record` (a JSON object) received while invoke number `invoke_seq` ran. A
 * second copy of a held two-phase record is merged into it (see above) and counts as received.
 */
void csa_records_add(csa_records *r, json_t *record, unsigned long long invoke_seq, long long now_ms);

/*
 * Joins every pending record whose report is in p and moves it to the ready queue; with
 * `everything`, the rest follows unjoined. Returns how many became ready.
 */
size_t csa_records_settle(csa_records *r, csa_platform *p, unsigned long long invoke_seq, long long now_ms,
                          int everything);

/*
 * Builds a warm record for every report in p not considered yet whose request had no record from
 * the SDK (see above): a deep copy of `template` with request_id, invocation_id (random),
 * timestamp (the request's platform.start), cold_start false, start_kind "warm" and the
 * execution figures of the report, joined (csa_join) and ready. A report without durationMs, or
 * of a cold start (initDurationMs or restoreDurationMs: the SDK records those itself), gets none,
 * nor does one whose request started at or after `until` (a time as in the telemetry, e.g.
 * 2026-11-27T18:42:50.081Z, compared to the millisecond; NULL: no limit). Each is kept with
 * probability sample_rate (the SDK's). Returns how many reports were considered; the newest one's
 * request id goes to last (CSA_ID_MAX bytes) when any was.
 */
size_t csa_records_from_platform(csa_records *r, csa_platform *p, const json_t *template, double sample_rate,
                                 const char *until, char *last);

/* Up to n ready records as a new JSON array owned by the caller, or NULL when none is ready. */
json_t *csa_records_take(csa_records *r, size_t n);

size_t csa_records_pending(const csa_records *r);
size_t csa_records_ready(const csa_records *r);
const csa_records_stats *csa_records_stats_get(const csa_records *r);

/*
 * Overwrites the SDK's estimates in `record` with the platform's figures (init_duration_ms,
 * billed_duration_ms, memory_used_mb, memory_allocated_mb, init_type) and adds a "platform" object
 * that the backend stores or ignores. report may be NULL (then only "platform": {"joined": false}).
 * An incomplete record ("complete": false) joined with a report that has durationMs is completed:
 * execution_duration_ms = durationMs, "complete" removed, platform.completed_from_report = true.
 */
void csa_join(json_t *record, const csa_report *report, const csa_init_info *init);

#endif
