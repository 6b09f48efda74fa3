/*
 * fuzz_firehose.c: libFuzzer target for the decoding of POST /api/v1/ingest/firehose (firehose.c).
 * Each input is used three ways: as one log event message (csa_firehose_line), as a whole request
 * body (csa_firehose_decode; Content-Encoding gzip when it starts with the gzip magic), and as the
 * data of a record (wrapped in base64 in a delivery, so that the subscription JSON and the lines
 * in it are reached without the fuzzer having to produce base64). Small caps keep runs fast.
 * Invariants besides memory safety: success accounts for every log event and row; failure says why.
 */
#include "firehose.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW 1796550000.0 /* fixed "now" (2026-12-06) so that runs are reproducible */

static const csa_firehose_limits LIMITS = {1 << 20, 256 << 10, 1 << 20, 200};

static void check_decode(const unsigned char *body, size_t len, int gzipped)
{
    csa_firehose_result r;
    char detail[512];
    detail[0] = 'x';
    csa_firehose_result_init(&r);
    csa_status st = csa_firehose_decode(body, len, gzipped, &LIMITS, FUZZ_NOW, &r, detail, sizeof detail);
    if (st == CSA_OK) {
        if (r.accepted + r.invalid + r.ignored != r.events || json_array_size(r.rows) != r.accepted)
            abort(); /* every log event is accounted for once */
        if (json_array_size(r.failures) > CSA_FIREHOSE_MAX_FAILURES || r.accepted + r.invalid > LIMITS.max_rows)
            abort();
        char *s = json_dumps(r.rows, JSON_COMPACT); /* what the writer serialises */
        if (!s)
            abort();
        free(s);
    } else if (!memchr(detail, '\0', sizeof detail) || detail[0] == '\0') {
        abort(); /* failure must say why, NUL-terminated */
    } else {
        for (const char *p = detail; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                abort(); /* printable ASCII: always a valid JSON string */
    }
    csa_firehose_result_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = sodium_init() >= 0;

    json_t *record = NULL;
    char why[200];
    csa_firehose_line_kind kind = csa_firehose_line((const char *)data, size, &record, why, sizeof why);
    if ((kind == CSA_LINE_RECORD) != (record != NULL))
        abort();
    json_decref(record);

    check_decode(data, size, csa_is_gzip(data, size));

    size_t b64_size = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL);
    char *body = malloc(b64_size + 64);
    if (!body)
        return 0;
    int n = snprintf(body, 64, "{\"requestId\":\"f\",\"records\":[{\"data\":\"");
    sodium_bin2base64(body + n, b64_size, data, size, sodium_base64_VARIANT_ORIGINAL);
    strcat(body + n, "\"}]}");
    check_decode((const unsigned char *)body, strlen(body), 0);
    free(body);
    return 0;
}
