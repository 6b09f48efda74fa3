/*
 * telemetry.h: parses the Telemetry API's platform events and keeps the figures the SDK cannot see.
 *
 * Lambda POSTs a JSON array of {"time","type","record"} events to our listener. The parser never
 * trusts a body: anything malformed is counted and skipped, one bad event never drops its
 * neighbours. Per-request figures (platform.report) live in a fixed ring of CSA_REPORTS_MAX
 * entries: the oldest is forgotten first; the init/restore figures are per environment.
 */
#ifndef CSA_TELEMETRY_H
#define CSA_TELEMETRY_H

#include <stddef.h>

#define CSA_REPORTS_MAX 512
#define CSA_STARTS_MAX 64 /* platform.start times kept until their report comes */
#define CSA_ID_MAX 128    /* longest requestId kept; longer ones are malformed */
#define CSA_TIME_MAX 40   /* longest event time kept (RFC 3339, e.g. 2026-11-27T18:33:08.123456Z) */

/* A figure Lambda did not send is CSA_ABSENT. */
#define CSA_ABSENT (-1.0)

typedef struct csa_report {
    char request_id[CSA_ID_MAX];
    char status[24];               /* "success", "error", "failure", "timeout" */
    double duration_ms;            /* metrics.durationMs */
    double billed_duration_ms;     /* metrics.billedDurationMs */
    double memory_size_mb;         /* metrics.memorySizeMB */
    double max_memory_used_mb;     /* metrics.maxMemoryUsedMB */
    double init_duration_ms;       /* metrics.initDurationMs: first invoke of an on-demand environment */
    double restore_duration_ms;    /* metrics.restoreDurationMs: SnapStart */
    char start_time[CSA_TIME_MAX]; /* the time of its platform.start, else of the report; "" if neither */
    unsigned char considered;      /* looked at for a record built from the platform (records.h) */
} csa_report;

/* A platform.start seen: its request and time, until the report takes the time. */
typedef struct csa_start {
    unsigned hash;
    char request_id[CSA_ID_MAX];
    char time[CSA_TIME_MAX];
} csa_start;

typedef struct csa_init_info {
    char type[32];            /* initializationType: on-demand, provisioned-concurrency, snap-start */
    char phase[16];           /* "init", or "invoke" when init was re-run inside the first invoke */
    char status[24];          /* initReport status */
    double init_report_ms;    /* platform.initReport metrics.durationMs */
    double restore_report_ms; /* platform.restoreReport metrics.durationMs */
} csa_init_info;

typedef struct csa_telemetry_stats {
    unsigned long long events;    /* events accepted */
    unsigned long long malformed; /* bodies or events rejected */
    unsigned long long reports;   /* platform.report events stored */
    unsigned long long starts;    /* platform.start events: invocations begun */
} csa_telemetry_stats;

typedef struct csa_platform {
    csa_report reports[CSA_REPORTS_MAX]; /* ring, next slot at `next`; keep it first (see _init) */
    unsigned id_hashes[CSA_REPORTS_MAX]; /* hash of each slot's request_id: what a lookup scans */
    csa_start starts[CSA_STARTS_MAX];    /* ring, next slot at `starts_next` */
    size_t next;
    size_t starts_next;
    size_t starts_count;
    size_t count;
    csa_init_info init;
    csa_telemetry_stats stats;
} csa_platform;

/* Resets p to empty (all figures absent). p is caller-owned; nothing to free. */
void csa_platform_init(csa_platform *p);

/*
 * Parses one Telemetry API body (body[0..len), not NUL-terminated) into p.
 * Returns the number of events accepted (>= 0), or -1 when the body is not a JSON array.
 */
int csa_telemetry_ingest(csa_platform *p, const char *body, size_t len);

/* The newest report for request_id, or NULL. The pointer is valid until the next ingest. */
csa_report *csa_platform_find(csa_platform *p, const char *request_id);

/* FNV-1a of a request id: what the rings are searched by. */
unsigned csa_id_hash(const char *id);

#endif
