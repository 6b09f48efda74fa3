/*
 * fuzz_telemetry.c: fuzzes the two parsers that read what Lambda sends us, the Telemetry API body
 * (csa_telemetry_ingest) and the next-event body (csa_lambda_parse_event), plus the join and the
 * record store (an input that is a JSON object is also taken as an SDK record: held, merged with
 * a second, incomplete or full copy of itself, settled against the reports, taken), and the
 * stream endpoint's line reader (csa_stream_read: the input as newline-delimited lines, with a
 * small line limit so that over-long lines are exercised too, on a connection that was offered
 * and one that was not: delegate lines), and the warm records built from the reports
 * (csa_records_from_platform, with the input as the template when it is a JSON object).
 *
 * With clang and -DCSA_FUZZ=ON this is a libFuzzer target. Built without libFuzzer (the smoke run
 * in test.sh, under ASan/UBSan), main() mutates a seed corpus for a fixed number of iterations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lambda_api.h"
#include "records.h"
#include "stream.h"
#include "telemetry.h"

static csa_platform g_platform;
static csa_records *g_records;
static unsigned long long g_seq;

static void records_round(const uint8_t *data, size_t size)
{
    json_t *rec = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return;
    }
    /* the other copy of a two-phase record: toggled "complete" */
    json_t *copy = json_deep_copy(rec);
    if (json_is_false(json_object_get(rec, "complete")))
        json_object_del(copy, "complete");
    else
        json_object_set_new(copy, "complete", json_false());
    g_seq++;
    json_incref(rec); /* kept as the template below */
    csa_records_add(g_records, rec, g_seq, (long long)g_seq);
    if (g_seq % 3 == 0)
        csa_records_settle(g_records, &g_platform, g_seq, (long long)g_seq, g_seq % 2);
    csa_records_add(g_records, copy, g_seq, (long long)g_seq);
    csa_records_settle(g_records, &g_platform, g_seq, (long long)g_seq, g_seq % 5 == 0);
    /* the record as a delegating SDK's template; every report not considered yet becomes a record */
    char last[CSA_ID_MAX] = "";
    if (csa_records_from_platform(g_records, &g_platform, rec, (double)(g_seq % 3) / 2,
                                  g_seq % 4 == 0 ? "2026-01-01T00:00:00.010Z" : NULL, last) > 0 && !last[0])
        abort(); /* a report considered has a request id */
    json_decref(rec);
    json_t *batch = csa_records_take(g_records, 1 + g_seq % 4);
    char *text = batch ? json_dumps(batch, 0) : NULL;
    free(text);
    json_decref(batch);
}

static void stream_add(json_t *record, void *arg)
{
    (*(unsigned long long *)arg)++;
    json_decref(record);
}
static void stream_added(void *arg) {}
static json_t *stream_status(void *arg) { return NULL; }
static void stream_api_key(const char *key, void *arg) { (void)strlen(key); }
static unsigned long long g_stream_delegations;
static void stream_delegate(json_t *record, double rate, const void *owner, void *arg)
{
    if (!json_is_object(record) || !(rate >= 0 && rate <= 1) || !owner)
        abort();
    char *text = json_dumps(record, 0);
    free(text);
    g_stream_delegations++;
}
static void stream_reject(unsigned long long line, const char *reason, void *arg) { (void)strlen(reason); }

static unsigned long long g_stream_records, g_stream_rejected, g_stream_too_long;

/* The input as what one connection sent: in one read, then again in two pieces, as on_read does. */
static void stream_round(const uint8_t *data, size_t size)
{
    csa_ingest_hooks hooks = {stream_add, stream_added, stream_status, stream_api_key, &g_stream_records,
                              NULL, stream_delegate, NULL};
    size_t max_line = 16 + size % 200;
    /* a connection that was offered (delegate lines are taken) or not (they are records) */
    csa_stream_reader whole = {.offered = size % 2};
    long long used = csa_stream_read(&whole, (const char *)data, size, max_line, &hooks, stream_reject, NULL);
    if (used == CSA_STREAM_TOO_LONG)
        g_stream_too_long++;
    else if (used < 0 || (size_t)used > size)
        abort();
    g_stream_rejected += whole.rejected;
    csa_stream_reader parts = {.offered = size % 2};
    size_t cut = size ? (size_t)data[0] % size : 0;
    used = csa_stream_read(&parts, (const char *)data, cut, max_line, &hooks, stream_reject, NULL);
    if (used >= 0) {
        /* the unconsumed rest of the first piece is read again with the second, as in on_read */
        used = csa_stream_read(&parts, (const char *)data + used, size - (size_t)used, max_line, &hooks, stream_reject, NULL);
        if (used != CSA_STREAM_TOO_LONG && parts.taken != whole.taken)
            abort(); /* the same lines whatever the cut */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        csa_platform_init(&g_platform);
        g_records = csa_records_create(16, 0);
        initialised = 1;
    }
    csa_telemetry_ingest(&g_platform, (const char *)data, size);
    csa_lambda_event ev;
    (void)csa_lambda_parse_event((const char *)data, size, &ev);
    const csa_report *r = csa_platform_find(&g_platform, "req-1");
    json_t *record = json_pack("{s:s, s:b}", "request_id", "req-1", "cold_start", 1);
    csa_join(record, r, &g_platform.init);
    char *text = json_dumps(record, 0);
    free(text);
    json_decref(record);
    records_round(data, size);
    stream_round(data, size);
    return 0;
}

#ifndef CSA_LIBFUZZER
static const char *const SEEDS[] = {
    "[{\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"req-1\","
    "\"status\":\"success\",\"metrics\":{\"durationMs\":12.5,\"billedDurationMs\":13,\"memorySizeMB\":512,"
    "\"maxMemoryUsedMB\":77,\"initDurationMs\":180.2}}}]",
    "[{\"type\":\"platform.initStart\",\"record\":{\"initializationType\":\"on-demand\",\"phase\":\"init\"}},"
    "{\"type\":\"platform.initReport\",\"record\":{\"initializationType\":\"snap-start\",\"phase\":\"invoke\","
    "\"status\":\"error\",\"metrics\":{\"durationMs\":3.25}}},{\"type\":\"platform.restoreReport\",\"record\":"
    "{\"status\":\"success\",\"metrics\":{\"durationMs\":1e308}}}]",
    "{\"eventType\":\"INVOKE\",\"deadlineMs\":1700000000000,\"requestId\":\"req-1\",\"invokedFunctionArn\":\"a\"}",
    "{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"spindown\",\"deadlineMs\":1.7e12}",
    "{\"function_name\":\"f\",\"invocation_id\":\"i-1\",\"request_id\":\"req-1\",\"timestamp\":\"t\","
    "\"cold_start\":true,\"complete\":false,\"module_timings\":{\"a\":1}}",
    "{\"function_name\":\"f\",\"invocation_id\":\"i-1\",\"request_id\":\"req-1\",\"timestamp\":\"t\","
    "\"cold_start\":true,\"execution_duration_ms\":5,\"platform\":{\"joined\":true,\"billed_duration_ms\":\"x\"}}",
    "{\"coldstart\":\"hello\",\"api_key\":\"k\"}\n{\"invocation_id\":\"i-1\",\"cold_start\":false}\r\n\n[1]\n"
    "{\"invocation_id\":\"i-2\",\"module_timings\":{\"a\":1}}\n{\"partial",
    "{\"coldstart\":\"hello\",\"api_key\":\"k\",\"warm\":\"platform\"}\n{\"coldstart\":\"delegate\",\"record\":"
    "{\"function_name\":\"f\",\"sdk_version\":\"1\"},\"sample_rate\":0.5}\n{\"coldstart\":\"delegate\"}\n",
    "[{\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"req-2\"}},"
    "{\"time\":\"2026-01-01T00:00:00.020Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"req-2\","
    "\"status\":\"success\",\"metrics\":{\"durationMs\":2.5,\"billedDurationMs\":3,\"maxMemoryUsedMB\":70}}}]",
};

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    unsigned seed = argc > 2 ? (unsigned)atol(argv[2]) : 1;
    srand(seed);
    static const char tokens[] = "[]{}\",:0123456789.eE-+ truefalsnul\\u00\n";
    char buf[4096];
    for (long i = 0; i < iterations; i++) {
        const char *s = SEEDS[rand() % (int)(sizeof SEEDS / sizeof SEEDS[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + rand() % 8;
        for (int e = 0; e < edits; e++) {
            size_t at = n ? (size_t)rand() % n : 0;
            switch (rand() % 4) {
            case 0: buf[at] = tokens[rand() % (int)(sizeof tokens - 1)]; break;        /* replace */
            case 1: buf[at] = (char)(rand() % 256); break;                            /* random byte */
            case 2: if (n > 1) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break; /* delete */
            case 3: if (n + 1 < sizeof buf) { memmove(buf + at + 1, buf + at, n - at); buf[at] = tokens[rand() % 8]; n++; } break;
            }
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, rand() % 16 == 0 ? (size_t)rand() % (n + 1) : n);
    }
    const csa_records_stats *rs = csa_records_stats_get(g_records);
    printf("fuzz smoke: %ld inputs, %llu events accepted, %llu malformed; %llu records, %llu merged, %llu completed, "
           "%llu from the platform; stream: %llu records, %llu rejected lines, %llu over-long, %llu delegate lines\n",
           iterations, g_platform.stats.events, g_platform.stats.malformed, rs->received, rs->merged, rs->completed,
           rs->from_platform, g_stream_records, g_stream_rejected, g_stream_too_long, g_stream_delegations);
    csa_records_destroy(g_records);
    return 0;
}
#endif
