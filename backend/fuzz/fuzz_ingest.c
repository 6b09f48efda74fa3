/*
 * fuzz_ingest.c: libFuzzer target for the ingest body path of POST /api/v1/ingest and
 * POST /api/v1/ingest/batch: csa_json_parse on the raw bytes, then csa_validate_record on the body
 * as a single record and, when it is a batch envelope, on each of its records.
 * Invariant checked besides memory safety: a record is either normalised or leaves errors behind.
 */
#include "validate.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW 1790000000.0 /* fixed "now" (2026-09-21) so that runs are reproducible */

static void check_record(json_t *record, json_t *loc)
{
    json_t *errors = json_array();
    json_t *row = csa_validate_record(record, loc, errors, FUZZ_NOW);
    if (row) {
        if (json_array_size(errors) != 0)
            abort(); /* success must not leave errors */
        /* the normalised row is what the writer serialises: it must serialise */
        char *s = json_dumps(row, JSON_COMPACT);
        if (!s)
            abort();
        free(s);
        json_decref(row);
    } else if (json_array_size(errors) == 0) {
        abort(); /* failure must say why */
    }
    json_decref(errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    why[0] = 'x';
    json_t *body = csa_json_parse((const char *)data, size, why, sizeof why);
    if (!body) {
        if (!memchr(why, '\0', sizeof why))
            abort(); /* the reason must be NUL-terminated */
        return 0;
    }
    json_t *loc = json_pack("[s]", "body");
    check_record(body, loc);
    json_decref(loc);

    json_t *errors = json_array();
    json_t *items = csa_validate_batch_envelope(body, errors);
    if (items) {
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
            json_t *item_loc = json_pack("[s, s, I]", "body", "invocations", (json_int_t)i);
            check_record(item, item_loc);
            json_decref(item_loc);
        }
    } else if (json_array_size(errors) == 0) {
        abort();
    }
    json_decref(errors);
    json_decref(body);
    return 0;
}
