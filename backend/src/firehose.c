/* firehose.c: see firehose.h. */
#include "firehose.h"

#include "uuid.h"
#include "validate.h"

#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const csa_firehose_limits csa_firehose_default_limits = {
    .max_body_inflated = (size_t)64 * 1024 * 1024,
    .max_record_inflated = (size_t)8 * 1024 * 1024,
    .max_total_inflated = (size_t)32 * 1024 * 1024,
    .max_rows = 20000,
};

#define ZLIB_CHUNK ((size_t)1 << 30) /* zlib counts in uInt: larger buffers are fed in parts */

void csa_firehose_result_init(csa_firehose_result *r)
{
    memset(r, 0, sizeof *r);
    r->rows = json_array();
    r->failures = json_array();
}

void csa_firehose_result_cleanup(csa_firehose_result *r)
{
    json_decref(r->rows);
    json_decref(r->failures);
    r->rows = NULL;
    r->failures = NULL;
}

int csa_is_gzip(const unsigned char *data, size_t len) { return len >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

/* ---- gunzip ---------------------------------------------------------------------------------- */

/*
 * The output buffer grows by doubling up to max_out + 1 bytes of data: producing that last byte
 * proves the data inflates past max_out, without ever holding more than the cap (+1).
 */
int csa_gunzip(const unsigned char *in, size_t len, size_t max_out, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return -3;
    size_t limit = max_out < SIZE_MAX - 2 ? max_out + 1 : SIZE_MAX - 1; /* data capacity at most */
    size_t cap = len < limit / 4 ? len * 4 : limit;
    if (cap < 4096)
        cap = limit < 4096 ? limit : 4096;
    unsigned char *buf = malloc(cap + 1); /* + the NUL */
    int rc = -1;
    size_t used = 0, fed = 0;
    if (!buf) {
        rc = -3;
        goto out;
    }
    for (;;) {
        if (z.avail_in == 0 && fed < len) {
            size_t chunk = len - fed > ZLIB_CHUNK ? ZLIB_CHUNK : len - fed;
            z.next_in = (Bytef *)(uintptr_t)(in + fed); /* zlib does not write its input */
            z.avail_in = (uInt)chunk;
            fed += chunk;
        }
        if (used == cap) {
            if (cap >= limit) {
                rc = -2;
                goto out;
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                rc = -3;
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t room = cap - used > ZLIB_CHUNK ? ZLIB_CHUNK : cap - used;
        z.next_out = buf + used;
        z.avail_out = (uInt)room;
        int ret = inflate(&z, Z_NO_FLUSH);
        used += room - z.avail_out;
        if (used > max_out) {
            rc = -2;
            goto out;
        }
        if (ret == Z_STREAM_END) {
            size_t consumed = fed - z.avail_in;
            if (consumed == len) {
                rc = 0;
                break;
            }
            /* another gzip member may follow (concatenated members are one valid gzip stream);
             * anything else after a member is trailing garbage */
            if (!csa_is_gzip(in + consumed, len - consumed) || inflateReset(&z) != Z_OK)
                goto out;
            continue;
        }
        if (ret == Z_OK)
            continue;
        if (ret == Z_BUF_ERROR && (z.avail_out == 0 || fed < len))
            continue; /* output full (grows above) or more input to feed */
        if (ret == Z_MEM_ERROR)
            rc = -3;
        goto out; /* Z_DATA_ERROR, Z_NEED_DICT, or input ended inside a member (Z_BUF_ERROR) */
    }
out:
    inflateEnd(&z);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *out = buf;
    *out_len = used;
    return 0;
}

/* ---- one log event message ------------------------------------------------------------------ */

static const char MARKER_START[] = "{\"" CSA_FIREHOSE_MARKER "\"";

/* Messages quote the JSON parser, whose text may end inside a UTF-8 sequence (or show bytes of
 * the input): keep them printable ASCII, so that they always make a valid JSON string. */
static void ascii_only(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static size_t trim_eol(const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    return len;
}

/* The value of `obj` when it is exactly {"coldstart_record": value}, else NULL (borrowed). */
static json_t *marker_value(json_t *obj)
{
    if (!json_is_object(obj) || json_object_size(obj) != 1)
        return NULL;
    return json_object_get(obj, CSA_FIREHOSE_MARKER);
}

/* The Node.js runtime's console prefix "<time>\t<request id>\t<LEVEL>\t": on a match stores the
 * offset of what follows it and returns 1. The request id is "undefined" during init. */
static int node_prefix(const char *s, size_t len, size_t *rest)
{
    const char *end = s + len;
    if (len == 0 || s[0] < '0' || s[0] > '9')
        return 0;
    const char *t1 = memchr(s, '\t', len);
    if (!t1)
        return 0;
    const char *t2 = memchr(t1 + 1, '\t', (size_t)(end - t1 - 1));
    if (!t2 || t2 == t1 + 1)
        return 0;
    const char *t3 = memchr(t2 + 1, '\t', (size_t)(end - t2 - 1));
    if (!t3 || t3 == t2 + 1 || t3 - t2 - 1 > 16)
        return 0;
    for (const char *p = t2 + 1; p < t3; p++)
        if (*p < 'A' || *p > 'Z')
            return 0;
    *rest = (size_t)(t3 + 1 - s);
    return 1;
}

/* A message that starts with '{'. `wrapper`: it may be Lambda's JSON log format whose "message"
 * holds the line (not inside one already: one level only). */
static csa_firehose_line_kind json_line(const char *s, size_t len, int wrapper, json_t **record, char *why,
                                        size_t why_size)
{
    char reason[200];
    json_t *v = csa_json_parse(s, len, reason, sizeof reason);
    if (!v) {
        if (len >= sizeof MARKER_START - 1 && memcmp(s, MARKER_START, sizeof MARKER_START - 1) == 0) {
            snprintf(why, why_size, "A %s line that is not valid JSON (cut short?): %s", CSA_FIREHOSE_MARKER, reason);
            if (why_size > 0)
                ascii_only(why);
            return CSA_LINE_MALFORMED;
        }
        return CSA_LINE_OTHER;
    }
    csa_firehose_line_kind kind = CSA_LINE_OTHER;
    json_t *value = marker_value(v);
    json_t *message = wrapper && json_is_object(v) && json_object_get(v, "level") ? json_object_get(v, "message")
                                                                                  : NULL;
    if (value) {
        *record = json_incref(value);
        kind = CSA_LINE_RECORD;
    } else if (json_is_string(message)) {
        const char *m = json_string_value(message);
        size_t mlen = trim_eol(m, json_string_length(message));
        if (mlen > 0 && m[0] == '{')
            kind = json_line(m, mlen, 0, record, why, why_size);
    } else if ((value = marker_value(message))) {
        *record = json_incref(value);
        kind = CSA_LINE_RECORD;
    }
    json_decref(v);
    return kind;
}

csa_firehose_line_kind csa_firehose_line(const char *message, size_t len, json_t **record, char *why, size_t why_size)
{
    *record = NULL;
    if (why_size > 0)
        why[0] = '\0';
    len = trim_eol(message, len);
    /* most events of a log group are not ours: no JSON parse unless the marker is there at all */
    if (!memmem(message, len, CSA_FIREHOSE_MARKER, sizeof CSA_FIREHOSE_MARKER - 1))
        return CSA_LINE_OTHER;
    if (message[0] == '{')
        return json_line(message, len, 1, record, why, why_size);
    size_t rest;
    if (node_prefix(message, len, &rest) && rest < len && message[rest] == '{')
        return json_line(message + rest, len - rest, 0, record, why, why_size);
    return CSA_LINE_OTHER;
}

/* ---- the delivery ------------------------------------------------------------------------- */

/* A record that carries no invocation_id gets one derived from its log event's identity, so that
 * a redelivered event (Firehose retries, CloudWatch's at-least-once delivery) makes no second
 * row: SHA-256 of log group, log stream and event id, in UUID layout (version 5 bits). */
static json_t *event_invocation_id(const char *group, const char *stream, const char *event_id)
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)group, strlen(group) + 1); /* NUL separates */
    crypto_hash_sha256_update(&st, (const unsigned char *)stream, strlen(stream) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)event_id, strlen(event_id));
    crypto_hash_sha256_final(&st, h);
    char id[CSA_UUID_SIZE];
    csa_uuid_format(h, 5, id); /* the first 16 bytes of the hash */
    return json_string(id);
}

typedef struct decode_ctx {
    const csa_firehose_limits *limits;
    double now;
    csa_firehose_result *out;
    size_t inflated; /* bytes of record data inflated so far */
    char *detail;
    size_t detail_size;
} decode_ctx;

#define FAIL(code, ...) \
    do { \
        snprintf(d->detail, d->detail_size, __VA_ARGS__); \
        st = (code); \
        goto out; \
    } while (0)

/* One log event of record i: a record line becomes a row or a counted failure; anything else is
 * counted as ignored. Fails the delivery only past max_rows (or out of memory). */
static csa_status take_event(decode_ctx *d, json_t *event, size_t i, size_t j, const char *group, const char *stream)
{
    csa_status st = CSA_OK;
    csa_firehose_result *out = d->out;
    json_t *message = json_object_get(event, "message");
    json_t *record = NULL, *loc = NULL, *errors = NULL, *row = NULL;
    char why[300];
    csa_firehose_line_kind kind = csa_firehose_line(json_string_value(message), json_string_length(message), &record,
                                                    why, sizeof why);
    if (kind == CSA_LINE_OTHER) {
        out->ignored++;
        return CSA_OK;
    }
    if (out->accepted + out->invalid >= d->limits->max_rows)
        FAIL(CSA_ERR_TOO_LARGE,
             "records[%zu].logEvents[%zu]: more than %zu %s lines in one delivery; lower the stream's buffering size",
             i, j, d->limits->max_rows, CSA_FIREHOSE_MARKER);
    loc = json_pack("[s, I, s, I, s]", "records", (json_int_t)i, "logEvents", (json_int_t)j, CSA_FIREHOSE_MARKER);
    errors = json_array();
    if (!loc || !errors)
        FAIL(CSA_ERR_INTERNAL, "Out of memory");
    if (kind == CSA_LINE_RECORD)
        row = csa_validate_record(record, loc, errors, d->now);
    else
        json_array_append_new(errors, json_pack("{s:O, s:s, s:s}", "loc", loc, "msg", why, "type", "json_invalid"));
    if (row) {
        const char *event_id = json_string_value(json_object_get(event, "id"));
        if (!json_is_string(json_object_get(row, "invocation_id")) && event_id)
            json_object_set_new(row, "invocation_id", event_invocation_id(group, stream, event_id));
        json_array_append_new(out->rows, row);
        out->accepted++;
    } else {
        out->invalid++;
        if (json_array_size(out->failures) < CSA_FIREHOSE_MAX_FAILURES) {
            json_array_append_new(out->failures, json_pack("{s:I, s:I, s:O}", "record", (json_int_t)i, "event",
                                                           (json_int_t)j, "errors", errors));
        }
    }
out:
    json_decref(errors);
    json_decref(loc);
    json_decref(record);
    return st;
}

/* Record i: base64, gunzip when gzipped, subscription JSON, its log events. */
static csa_status take_record(decode_ctx *d, json_t *item, size_t i)
{
    csa_status st = CSA_OK;
    const csa_firehose_limits *lim = d->limits;
    unsigned char *raw = NULL, *plain = NULL;
    json_t *doc = NULL;
    d->out->records++;
    json_t *data = json_object_get(item, "data");
    if (!json_is_string(data))
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: an object with a string \"data\" was expected", i);
    size_t b64_len = json_string_length(data);
    if (b64_len > CSA_FIREHOSE_MAX_DATA_B64)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: data is longer than Firehose's maximum of %d characters", i,
             CSA_FIREHOSE_MAX_DATA_B64);
    if (b64_len == 0) /* Firehose permits empty records: nothing in them */
        goto out;
    size_t raw_cap = b64_len / 4 * 3 + 3, raw_len = 0;
    raw = malloc(raw_cap);
    if (!raw)
        FAIL(CSA_ERR_INTERNAL, "Out of memory");
    /* b64_end NULL: any character outside the alphabet (or missing padding) fails */
    if (sodium_base642bin(raw, raw_cap, json_string_value(data), b64_len, NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: data is not valid base64", i);
    size_t room = lim->max_total_inflated - d->inflated;
    size_t cap = lim->max_record_inflated < room ? lim->max_record_inflated : room;
    const unsigned char *bytes = raw;
    size_t n = raw_len;
    int over = n > cap; /* plain data (Firehose's decompression on) counts against the same caps */
    if (csa_is_gzip(raw, raw_len)) {
        int rc = csa_gunzip(raw, raw_len, cap, &plain, &n);
        if (rc == -3)
            FAIL(CSA_ERR_INTERNAL, "Out of memory");
        if (rc == -1)
            FAIL(CSA_ERR_VALIDATION, "records[%zu]: data is not valid gzip (corrupt or cut short)", i);
        over = rc == -2;
        bytes = plain;
    }
    if (over && cap == lim->max_record_inflated)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: data inflates to more than %zu bytes (the cap per record)", i,
             lim->max_record_inflated);
    if (over)
        FAIL(CSA_ERR_VALIDATION,
             "records[%zu]: the records inflate to more than %zu bytes together (the cap per request)", i,
             lim->max_total_inflated);
    d->inflated += n;
    char why[200];
    doc = csa_json_parse((const char *)bytes, n, why, sizeof why);
    free(raw);
    free(plain);
    raw = plain = NULL;
    if (!doc)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: data is not CloudWatch Logs subscription JSON: %s", i, why);
    const char *type = json_string_value(json_object_get(doc, "messageType"));
    if (!type)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: data has no messageType: not CloudWatch Logs subscription data", i);
    if (strcmp(type, "CONTROL_MESSAGE") == 0) { /* CloudWatch Logs checking the destination */
        d->out->control++;
        goto out;
    }
    if (strcmp(type, "DATA_MESSAGE") != 0)
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: messageType must be DATA_MESSAGE or CONTROL_MESSAGE", i);
    const char *group = json_string_value(json_object_get(doc, "logGroup"));
    const char *stream = json_string_value(json_object_get(doc, "logStream"));
    json_t *events = json_object_get(doc, "logEvents");
    if (!group || !stream || !json_is_array(events))
        FAIL(CSA_ERR_VALIDATION, "records[%zu]: a DATA_MESSAGE needs logGroup, logStream and logEvents", i);
    size_t j;
    json_t *event;
    json_array_foreach(events, j, event) {
        if (!json_is_string(json_object_get(event, "message")))
            FAIL(CSA_ERR_VALIDATION, "records[%zu].logEvents[%zu]: a log event needs a string \"message\"", i, j);
        d->out->events++;
        st = take_event(d, event, i, j, group, stream);
        if (st != CSA_OK)
            goto out;
    }
out:
    free(raw);
    free(plain);
    json_decref(doc);
    return st;
}

csa_status csa_firehose_decode(const unsigned char *body, size_t len, int gzipped, const csa_firehose_limits *limits,
                               double now_epoch, csa_firehose_result *out, char *detail, size_t detail_size)
{
    csa_status st = CSA_OK;
    decode_ctx ctx = {limits ? limits : &csa_firehose_default_limits, now_epoch, out, 0, detail, detail_size};
    decode_ctx *d = &ctx;
    unsigned char *inflated = NULL;
    json_t *envelope = NULL;
    if (detail_size > 0)
        detail[0] = '\0';
    if (!out->rows || !out->failures)
        FAIL(CSA_ERR_INTERNAL, "Out of memory");
    if (gzipped) {
        size_t n = 0;
        int rc = csa_gunzip(body, len, d->limits->max_body_inflated, &inflated, &n);
        if (rc == -2)
            FAIL(CSA_ERR_TOO_LARGE, "The request body inflates to more than %zu bytes (Content-Encoding: gzip)",
                 d->limits->max_body_inflated);
        if (rc == -3)
            FAIL(CSA_ERR_INTERNAL, "Out of memory");
        if (rc != 0)
            FAIL(CSA_ERR_VALIDATION, "The request body is not valid gzip (Content-Encoding: gzip)");
        body = inflated;
        len = n;
    }
    char why[200];
    envelope = csa_json_parse((const char *)body, len, why, sizeof why);
    if (!envelope)
        FAIL(CSA_ERR_VALIDATION, "Malformed JSON body: %s", why);
    free(inflated); /* the parsed envelope is all that is needed from here on */
    inflated = NULL;
    if (!json_is_object(envelope))
        FAIL(CSA_ERR_VALIDATION, "The body must be a Firehose delivery: an object with requestId and records");
    json_t *request_id = json_object_get(envelope, "requestId");
    if (!json_is_string(request_id) || json_string_length(request_id) == 0 ||
        json_string_length(request_id) > CSA_FIREHOSE_MAX_REQUEST_ID)
        FAIL(CSA_ERR_VALIDATION, "requestId must be a string of 1 to %d characters", CSA_FIREHOSE_MAX_REQUEST_ID);
    snprintf(out->request_id, sizeof out->request_id, "%s", json_string_value(request_id));
    json_t *records = json_object_get(envelope, "records");
    if (!json_is_array(records) || json_array_size(records) == 0 || json_array_size(records) > CSA_FIREHOSE_MAX_RECORDS)
        FAIL(CSA_ERR_VALIDATION, "records must be an array of 1 to %d records", CSA_FIREHOSE_MAX_RECORDS);
    size_t i;
    json_t *item;
    json_array_foreach(records, i, item) {
        st = take_record(d, item, i);
        if (st != CSA_OK)
            goto out;
    }
out:
    free(inflated);
    json_decref(envelope);
    if (st != CSA_OK && detail_size > 0)
        ascii_only(detail);
    return st;
}
