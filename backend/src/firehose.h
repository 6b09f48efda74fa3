/*
 * firehose.h: decoding of an Amazon Data Firehose HTTP endpoint delivery whose records are
 * CloudWatch Logs subscription data, down to the ingest records of POST /api/v1/ingest/firehose.
 *
 * body (gzip when Content-Encoding says so) -> {"requestId", "timestamp", "records": [{"data"}]}
 * -> each data: base64 -> gzip (or plain, with Firehose's decompression on) -> {"messageType",
 * "logGroup", "logStream", "logEvents": [{"id", "timestamp", "message"}]} -> each message: one
 * {"coldstart_record": {...}} line (raw, after the Node.js console prefix, or inside Lambda's JSON
 * log format) -> csa_validate_record, the same validator as every other ingest route.
 *
 * Every stage is bounded (csa_firehose_limits). The module does no I/O: the HTTP handler stores
 * the rows it returns through the writer like any other ingest.
 */
#ifndef CSA_FIREHOSE_H
#define CSA_FIREHOSE_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>

#define CSA_FIREHOSE_MAX_RECORDS 10000         /* Firehose's own maximum of records per request */
#define CSA_FIREHOSE_MAX_DATA_B64 1365336      /* Firehose's maximum "data" length (1024000 bytes) */
#define CSA_FIREHOSE_MAX_REQUEST_ID 256        /* longer requestId values are refused (Firehose's are GUIDs) */
#define CSA_FIREHOSE_MAX_FAILURES 20           /* invalid lines described one by one in the response */
#define CSA_FIREHOSE_MARKER "coldstart_record" /* the one key of a record line; the filter pattern */

/* Caps on what one delivery may inflate to. Past a cap decoding stops at once: a decompression
 * bomb costs at most the cap in memory and the time to inflate that much. */
typedef struct csa_firehose_limits {
    size_t max_body_inflated;   /* the request body after Content-Encoding: gzip (413 past it) */
    size_t max_record_inflated; /* one record's data after gunzip (400, naming the record) */
    size_t max_total_inflated;  /* all records' data after gunzip, together (400, naming the record) */
    size_t max_rows;            /* record lines in one delivery (413 past it) */
} csa_firehose_limits;

/* 64 MiB body (Firehose's own maximum before compression), 8 MiB per record (a CloudWatch Logs
 * batch carries at most 1 MiB of events; JSON escaping can grow it), 32 MiB of records in all,
 * 20000 record lines. */
extern const csa_firehose_limits csa_firehose_default_limits;

/* What a delivery held. init before use, cleanup after; the caller owns what cleanup frees. */
typedef struct csa_firehose_result {
    char request_id[CSA_FIREHOSE_MAX_REQUEST_ID + 1]; /* the body's requestId ("" if absent) */
    json_t *rows;     /* normalised records (validate.h) with invocation_id set, no project_id */
    json_t *failures; /* [{"record", "event", "errors"}] of the first CSA_FIREHOSE_MAX_FAILURES invalid lines */
    size_t records;   /* Firehose records */
    size_t control;   /* of which CONTROL_MESSAGE (acknowledged, skipped) */
    size_t events;    /* log events in the DATA_MESSAGE records */
    size_t accepted;  /* record lines that passed validation (= rows) */
    size_t invalid;   /* record lines that did not (skipped, counted, described in failures) */
    size_t ignored;   /* every other log event (START/END/REPORT, the function's own logs) */
} csa_firehose_result;

void csa_firehose_result_init(csa_firehose_result *r);
void csa_firehose_result_cleanup(csa_firehose_result *r);

/*
 * Decodes a delivery. `gzipped`: the body carries Content-Encoding: gzip. now_epoch is passed to
 * csa_validate_record. Returns CSA_OK with `out` filled; or CSA_ERR_VALIDATION (400: not JSON, no
 * records, bad base64, corrupt gzip, an inflation cap, data that is not subscription JSON) or
 * CSA_ERR_TOO_LARGE (413: the inflated body or the number of record lines over its cap), with a
 * message naming the record (and log event) index in `detail` (always NUL-terminated). A record
 * line that fails validation is never an error of the delivery: it is counted in out->invalid.
 * Messages quote no content of the body beyond the parser's position.
 */
csa_status csa_firehose_decode(const unsigned char *body, size_t len, int gzipped, const csa_firehose_limits *limits,
                               double now_epoch, csa_firehose_result *out, char *detail, size_t detail_size);

/*
 * Gunzips `len` bytes (one or more concatenated gzip members) into a new buffer of at most
 * max_out bytes (NUL-terminated one past *out_len; caller frees). Returns 0, -1 when the data is
 * not valid gzip (corrupt, truncated, trailing garbage), -2 when it inflates past max_out, -3 when
 * memory runs out. *out is NULL unless 0 is returned.
 */
int csa_gunzip(const unsigned char *in, size_t len, size_t max_out, unsigned char **out, size_t *out_len);

/* 1 when the bytes start with the gzip magic (1f 8b). */
int csa_is_gzip(const unsigned char *data, size_t len);

typedef enum csa_firehose_line_kind {
    CSA_LINE_OTHER = 0, /* not a record line: skipped */
    CSA_LINE_RECORD,    /* *record is the value of "coldstart_record" (new reference) */
    CSA_LINE_MALFORMED, /* starts like a record line but is not JSON (e.g. truncated): why is set */
} csa_firehose_line_kind;

/*
 * Classifies one log event message (`len` bytes, any trailing CR/LF ignored): a record line is a
 * JSON object whose one key is "coldstart_record", raw, after the Node.js console prefix
 * "<time>\t<request id>\t<LEVEL>\t", or as the "message" (a string, or the object itself) of
 * Lambda's JSON log format {"timestamp", "level", "requestId", "message"}.
 */
csa_firehose_line_kind csa_firehose_line(const char *message, size_t len, json_t **record, char *why, size_t why_size);

#endif
