/*
 * fuzz_telemetry.c: fuzzes the two parsers that read what Lambda sends us, the Telemetry API body
 * (csa_telemetry_ingest) and the next-event body (csa_lambda_parse_event), plus the join.
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
#include "telemetry.h"

static csa_platform g_platform;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        csa_platform_init(&g_platform);
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
};

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    unsigned seed = argc > 2 ? (unsigned)atol(argv[2]) : 1;
    srand(seed);
    static const char tokens[] = "[]{}\",:0123456789.eE-+ truefalsnul\\u00";
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
    printf("fuzz smoke: %ld inputs, %llu events accepted, %llu malformed\n", iterations,
           g_platform.stats.events, g_platform.stats.malformed);
    return 0;
}
#endif
