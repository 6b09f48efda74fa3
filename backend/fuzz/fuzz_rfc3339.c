/*
 * fuzz_rfc3339.c: libFuzzer target for csa_parse_rfc3339 (timestamps of ingest records and the
 * from/to query parameters). Checks that an accepted timestamp gives a finite epoch.
 */
#include "validate.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1); /* exact-size copy, so ASan sees any read past the terminator */
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    double epoch = NAN;
    if (csa_parse_rfc3339(s, &epoch) == 0 && !isfinite(epoch))
        abort();
    free(s);
    return 0;
}
