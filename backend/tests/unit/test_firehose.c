/* Unit tests for firehose.c: gunzip and its caps, record lines, and whole deliveries. */
#include "firehose.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define NOW 1796550000.0 /* 2026-12-06 */
#define TS "2026-12-06T10:00:00Z"

/* gzip of len bytes into a new buffer (caller frees). */
static unsigned char *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static char *base64(const unsigned char *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* A delivery of one record whose data is gzip of `subscription`. */
static char *delivery(const char *subscription, int gzipped)
{
    size_t n = strlen(subscription);
    unsigned char *gz = gzipped ? gzip_bytes(subscription, n, &n) : (unsigned char *)strdup(subscription);
    char *b64 = base64(gz, n);
    char *body = malloc(strlen(b64) + 128);
    sprintf(body, "{\"requestId\":\"r-1\",\"timestamp\":1796550000000,\"records\":[{\"data\":\"%s\"}]}", b64);
    free(gz);
    free(b64);
    return body;
}

/* A DATA_MESSAGE whose log events carry `events` (a JSON array text). */
static char *data_message(const char *events)
{
    char *s = malloc(strlen(events) + 256);
    sprintf(s,
            "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"/aws/lambda/f\","
            "\"logStream\":\"2026/12/06/[$LATEST]abc\",\"subscriptionFilters\":[\"cs\"],\"logEvents\":%s}",
            events);
    return s;
}

static csa_status decode(const char *body, csa_firehose_result *r, char *detail, size_t size)
{
    csa_firehose_result_init(r);
    return csa_firehose_decode((const unsigned char *)body, strlen(body), 0, NULL, NOW, r, detail, size);
}

TestSuite(firehose, .init = (void (*)(void))sodium_init);

Test(firehose, gunzip_round_trip_and_concatenated_members)
{
    const char *text = "hello, firehose";
    size_t n1, n2;
    unsigned char *a = gzip_bytes(text, strlen(text), &n1);
    unsigned char *b = gzip_bytes(text, strlen(text), &n2);
    unsigned char *both = malloc(n1 + n2);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    unsigned char *out;
    size_t len;
    cr_assert_eq(csa_gunzip(a, n1, 100, &out, &len), 0);
    cr_assert_eq(len, strlen(text));
    cr_assert_str_eq((char *)out, text);
    free(out);
    cr_assert_eq(csa_gunzip(both, n1 + n2, 100, &out, &len), 0);
    cr_assert_eq(len, 2 * strlen(text));
    free(out);
    /* exactly at the cap is fine, one byte over is not */
    cr_assert_eq(csa_gunzip(a, n1, strlen(text), &out, &len), 0);
    free(out);
    cr_assert_eq(csa_gunzip(a, n1, strlen(text) - 1, &out, &len), -2);
    cr_assert_null(out);
    /* truncated, corrupt, trailing garbage */
    cr_assert_eq(csa_gunzip(a, n1 - 3, 100, &out, &len), -1);
    a[n1 / 2] ^= 0x55;
    cr_assert_eq(csa_gunzip(a, n1, 100, &out, &len), -1);
    memcpy(both + n1, "garbage", 7);
    cr_assert_eq(csa_gunzip(both, n1 + 7, 100, &out, &len), -1);
    free(a);
    free(b);
    free(both);
}

Test(firehose, gunzip_bomb_stops_at_the_cap)
{
    size_t big = 64u * 1024 * 1024, n;
    unsigned char *zeros = calloc(1, big);
    unsigned char *gz = gzip_bytes(zeros, big, &n);
    free(zeros);
    cr_assert_lt(n, 128 * 1024, "64 MiB of zeros compress to %zu bytes", n);
    unsigned char *out;
    size_t len;
    cr_assert_eq(csa_gunzip(gz, n, 1024 * 1024, &out, &len), -2);
    cr_assert_null(out);
    free(gz);
}

static csa_firehose_line_kind line(const char *text, json_t **record)
{
    char why[200];
    return csa_firehose_line(text, strlen(text), record, why, sizeof why);
}

Test(firehose, record_lines_raw_prefixed_and_json_format)
{
    const char *ok[] = {
        "{\"coldstart_record\":{\"function_name\":\"f\"}}",
        "{\"coldstart_record\":{\"function_name\":\"f\"}}\n",
        "2026-12-06T10:00:00.000Z\tc0ffee-1\tINFO\t{\"coldstart_record\":{\"function_name\":\"f\"}}\n",
        "2026-12-06T10:00:00.000Z\tundefined\tWARN\t{\"coldstart_record\":{\"function_name\":\"f\"}}",
        "{\"timestamp\":\"2026-12-06T10:00:00Z\",\"level\":\"INFO\",\"requestId\":\"r\","
        "\"message\":\"{\\\"coldstart_record\\\":{\\\"function_name\\\":\\\"f\\\"}}\\n\"}",
        "{\"timestamp\":\"2026-12-06T10:00:00Z\",\"level\":\"INFO\",\"requestId\":\"r\","
        "\"message\":{\"coldstart_record\":{\"function_name\":\"f\"}}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *record = NULL;
        cr_assert_eq(line(ok[i], &record), CSA_LINE_RECORD, "%s", ok[i]);
        cr_assert_str_eq(json_string_value(json_object_get(record, "function_name")), "f");
        json_decref(record);
    }
}

Test(firehose, other_lines_are_skipped)
{
    const char *other[] = {
        "START RequestId: c0ffee Version: $LATEST",
        "REPORT RequestId: c0ffee\tDuration: 2.00 ms",
        "2026-12-06T10:00:00.000Z\tc0ffee\tINFO\tthe coldstart_record went out",
        "{\"coldstart_record\":{\"function_name\":\"f\"},\"extra\":1}",
        "{\"msg\":\"coldstart_record\"}",
        "[{\"coldstart_record\":{}}]",
        "x\tc0ffee\tINFO\t{\"coldstart_record\":{}}",
        "2026\tc0ffee\tinfo\t{\"coldstart_record\":{}}",
        "{\"level\":\"INFO\",\"message\":\"2026-12-06T10:00:00.000Z\\tr\\tINFO\\t{\\\"coldstart_record\\\":{}}\"}",
        "{\"message\":{\"coldstart_record\":{}}}",
        "",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        json_t *record = NULL;
        cr_assert_eq(line(other[i], &record), CSA_LINE_OTHER, "%s", other[i]);
        cr_assert_null(record);
    }
    json_t *record = NULL;
    cr_assert_eq(line("{\"coldstart_record\":{\"function_name\":\"f\",\"timest", &record), CSA_LINE_MALFORMED);
    cr_assert_null(record);
    /* the reason quotes the parser, kept to printable ASCII (a cut inside a UTF-8 sequence) */
    char why[200];
    const char *cut = "{\"coldstart_record\":{\"function_name\":\"\xc3\xa9\xc3";
    cr_assert_eq(csa_firehose_line(cut, strlen(cut), &record, why, sizeof why), CSA_LINE_MALFORMED);
    for (const char *p = why; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s", why);
}

Test(firehose, a_delivery_becomes_rows_and_counts)
{
    char *events = malloc(4096);
    sprintf(
        events,
        "[{\"id\":\"1\",\"timestamp\":1,\"message\":\"START RequestId: a\"},"
        "{\"id\":\"2\",\"timestamp\":1,\"message\":\"{\\\"coldstart_record\\\":{\\\"function_name\\\":\\\"f\\\","
        "\\\"invocation_id\\\":\\\"i-1\\\",\\\"timestamp\\\":\\\"%s\\\",\\\"cold_start\\\":true,"
        "\\\"execution_duration_ms\\\":5}}\\n\"},"
        "{\"id\":\"3\",\"timestamp\":1,\"message\":\"{\\\"coldstart_record\\\":{\\\"function_name\\\":\\\"f\\\","
        "\\\"timestamp\\\":\\\"%s\\\",\\\"cold_start\\\":false,\\\"execution_duration_ms\\\":5}}\"},"
        "{\"id\":\"4\",\"timestamp\":1,\"message\":\"{\\\"coldstart_record\\\":{\\\"cold_start\\\":\\\"yes\\\"}}\"}]",
        TS, TS);
    char *sub = data_message(events);
    for (int gz = 0; gz <= 1; gz++) {
        char *body = delivery(sub, gz);
        csa_firehose_result r;
        char detail[512];
        cr_assert_eq(decode(body, &r, detail, sizeof detail), CSA_OK, "%s", detail);
        cr_assert_str_eq(r.request_id, "r-1");
        cr_assert_eq(r.records, 1);
        cr_assert_eq(r.events, 4);
        cr_assert_eq(r.accepted, 2);
        cr_assert_eq(r.invalid, 1);
        cr_assert_eq(r.ignored, 1);
        cr_assert_eq(json_array_size(r.rows), 2);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.rows, 0), "invocation_id")), "i-1");
        /* no invocation_id: one derived from the log event, the same on every delivery */
        const char *derived = json_string_value(json_object_get(json_array_get(r.rows, 1), "invocation_id"));
        cr_assert_not_null(derived);
        cr_assert_eq(strlen(derived), 36);
        static char first[37];
        if (!gz)
            snprintf(first, sizeof first, "%s", derived);
        else
            cr_assert_str_eq(derived, first);
        json_t *f = json_array_get(r.failures, 0);
        cr_assert_eq(json_integer_value(json_object_get(f, "record")), 0);
        cr_assert_eq(json_integer_value(json_object_get(f, "event")), 3);
        csa_firehose_result_cleanup(&r);
        free(body);
    }
    free(sub);
    free(events);
}

Test(firehose, control_messages_are_acknowledged)
{
    char *body = delivery("{\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"CloudwatchLogs\",\"logGroup\":\"\","
                          "\"logStream\":\"\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"\",\"timestamp\":1,"
                          "\"message\":\"CWL CONTROL MESSAGE: Checking health of destination Firehose.\"}]}",
                          1);
    csa_firehose_result r;
    char detail[512];
    cr_assert_eq(decode(body, &r, detail, sizeof detail), CSA_OK, "%s", detail);
    cr_assert_eq(r.control, 1);
    cr_assert_eq(r.events, 0);
    cr_assert_eq(json_array_size(r.rows), 0);
    csa_firehose_result_cleanup(&r);
    free(body);
}

Test(firehose, malformed_deliveries_name_the_record)
{
    char *good = delivery("{\"messageType\":\"CONTROL_MESSAGE\",\"logEvents\":[]}", 1);
    char *b64 = strstr(good, "\"data\":\"") + 8;
    *strchr(b64, '"') = '\0';
    struct {
        const char *body;
        csa_status st;
        const char *fragment;
    } cases[] = {
        {"nope", CSA_ERR_VALIDATION, "Malformed JSON"},
        {"[]", CSA_ERR_VALIDATION, "Malformed JSON"},
        {"{\"records\":[]}", CSA_ERR_VALIDATION, "requestId"},
        {"{\"requestId\":\"r\"}", CSA_ERR_VALIDATION, "records"},
        {"{\"requestId\":\"r\",\"records\":[]}", CSA_ERR_VALIDATION, "records"},
        {"{\"requestId\":\"r\",\"records\":[{\"data\":\"%%%%\"}]}", CSA_ERR_VALIDATION,
         "records[0]: data is not valid base64"},
        {"{\"requestId\":\"r\",\"records\":[{}]}", CSA_ERR_VALIDATION, "records[0]"},
        {"{\"requestId\":\"r\",\"records\":[{\"data\":\"H4sIAAAA\"}]}", CSA_ERR_VALIDATION,
         "records[0]: data is not valid gzip"},
        {"{\"requestId\":\"r\",\"records\":[{\"data\":\"aGVsbG8=\"}]}", CSA_ERR_VALIDATION,
         "records[0]: data is not CloudWatch"},
        {"{\"requestId\":\"r\",\"records\":[{\"data\":\"e30=\"}]}", CSA_ERR_VALIDATION,
         "records[0]: data has no messageType"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csa_firehose_result r;
        char detail[512];
        cr_assert_eq(decode(cases[i].body, &r, detail, sizeof detail), cases[i].st, "%s", cases[i].body);
        cr_assert(strstr(detail, cases[i].fragment), "\"%s\" lacks \"%s\"", detail, cases[i].fragment);
        csa_firehose_result_cleanup(&r);
    }
    /* the second record is the bad one */
    char body[1024];
    snprintf(body, sizeof body, "{\"requestId\":\"r\",\"records\":[{\"data\":\"%s\"},{\"data\":\"%s!\"}]}", b64, b64);
    csa_firehose_result r;
    char detail[512];
    cr_assert_eq(decode(body, &r, detail, sizeof detail), CSA_ERR_VALIDATION);
    cr_assert(strstr(detail, "records[1]: data is not valid base64"), "%s", detail);
    csa_firehose_result_cleanup(&r);
    free(good);
}

Test(firehose, inflation_caps_per_record_and_per_request)
{
    /* a record whose data inflates past the per-record cap */
    size_t big = 9u * 1024 * 1024;
    char *sub = malloc(big + 200);
    int n = sprintf(
        sub, "{\"messageType\":\"DATA_MESSAGE\",\"logGroup\":\"g\",\"logStream\":\"s\",\"logEvents\":[],\"pad\":\"");
    memset(sub + n, 'a', big);
    strcpy(sub + n + big, "\"}");
    char *body = delivery(sub, 1);
    csa_firehose_result r;
    char detail[512];
    cr_assert_eq(decode(body, &r, detail, sizeof detail), CSA_ERR_VALIDATION);
    cr_assert(strstr(detail, "records[0]: data inflates to more than 8388608 bytes"), "%s", detail);
    csa_firehose_result_cleanup(&r);
    /* smaller caps: the request's total, and the body itself */
    csa_firehose_limits lim = {1000, 1000, 200, 10};
    char *small =
        delivery("{\"messageType\":\"CONTROL_MESSAGE\",\"logGroup\":\"0123456789012345678901234567890123456789\","
                 "\"logStream\":\"0123456789012345678901234567890123456789\",\"logEvents\":[]}",
                 1);
    char two[2048];
    char *b64 = strstr(small, "\"data\":\"") + 8;
    *strchr(b64, '"') = '\0';
    snprintf(two, sizeof two, "{\"requestId\":\"r\",\"records\":[{\"data\":\"%s\"},{\"data\":\"%s\"}]}", b64, b64);
    csa_firehose_result_init(&r);
    cr_assert_eq(csa_firehose_decode((unsigned char *)two, strlen(two), 0, &lim, NOW, &r, detail, sizeof detail),
                 CSA_ERR_VALIDATION);
    cr_assert(strstr(detail, "records[1]: the records inflate to more than 200 bytes together"), "%s", detail);
    csa_firehose_result_cleanup(&r);
    size_t gz_len;
    unsigned char *gz = gzip_bytes(two, strlen(two), &gz_len);
    lim.max_body_inflated = 100;
    csa_firehose_result_init(&r);
    cr_assert_eq(csa_firehose_decode(gz, gz_len, 1, &lim, NOW, &r, detail, sizeof detail), CSA_ERR_TOO_LARGE);
    csa_firehose_result_cleanup(&r);
    free(gz);
    free(small);
    free(body);
    free(sub);
}
