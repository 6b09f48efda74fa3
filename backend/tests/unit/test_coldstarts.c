/* Unit tests for coldstarts.c: the query-string checks of the cold-start reads (the reads
 * themselves run against PostgreSQL in tests/integration/cold-starts.test.mjs). */
#include "coldstarts.h"

#include <criterion/criterion.h>
#include <string.h>

#define NOW 1767225600.0 /* 2026-01-01T00:00:00Z */

/* args from name=value pairs, as the server's query_params makes them */
static json_t *args_of(const char *const *pairs, size_t n)
{
    json_t *args = json_object();
    for (size_t i = 0; i + 1 < n; i += 2)
        json_object_set_new(args, pairs[i], json_string(pairs[i + 1]));
    return args;
}

/* The one error's parameter and type; fails unless there is exactly one. */
static void expect_error(json_t *errors, const char *param, const char *type)
{
    cr_assert_not_null(errors, "expected an error at %s", param);
    cr_assert_eq(json_array_size(errors), 1, "one error, got %zu", json_array_size(errors));
    json_t *e = json_array_get(errors, 0);
    json_t *loc = json_object_get(e, "loc");
    cr_assert_str_eq(json_string_value(json_array_get(loc, 0)), "query");
    cr_assert_str_eq(json_string_value(json_array_get(loc, 1)), param);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    json_decref(errors);
}

static json_t *check(csa_cold_starts_read read, const char *const *pairs, size_t n, json_t **args_out)
{
    json_t *args = args_of(pairs, n);
    json_t *errors = csa_cold_starts_check_args(args, read, 90, NOW);
    if (args_out)
        *args_out = args;
    else
        json_decref(args);
    return errors;
}

Test(check_args, list_defaults_and_a_decoded_cursor)
{
    json_t *args;
    cr_assert_null(check(CSA_COLD_STARTS_LIST, NULL, 0, &args));
    cr_assert_eq(json_integer_value(json_object_get(args, "limit")), CSA_COLD_STARTS_PAGE);
    json_decref(args);
    /* hex of "2026-01-02T10:30:00.123456Z|a/b|c" */
    const char *hex = "323032362d30312d30325431303a33303a30302e3132333435365a7c612f627c63";
    const char *pairs[] = {"limit", "7", "cursor", hex};
    cr_assert_null(check(CSA_COLD_STARTS_LIST, pairs, 4, &args));
    cr_assert_eq(json_integer_value(json_object_get(args, "limit")), 7);
    cr_assert_null(json_object_get(args, "cursor"));
    cr_assert_str_eq(json_string_value(json_object_get(args, "cursor_ts")), "2026-01-02T10:30:00.123456Z");
    cr_assert_str_eq(json_string_value(json_object_get(args, "cursor_id")), "a/b|c", "split at the first '|'");
    json_decref(args);
}

Test(check_args, bad_limit_cursor_and_window_name_their_parameter)
{
    const char *limit0[] = {"limit", "0"}, *limit201[] = {"limit", "201"}, *limitx[] = {"limit", "5x"};
    expect_error(check(CSA_COLD_STARTS_LIST, limit0, 2, NULL), "limit", "int_parsing");
    expect_error(check(CSA_COLD_STARTS_LIST, limit201, 2, NULL), "limit", "int_parsing");
    expect_error(check(CSA_COLD_STARTS_LIST, limitx, 2, NULL), "limit", "int_parsing");
    const char *not_hex[] = {"cursor", "zz"}, *upper[] = {"cursor", "3A"}, *no_bar[] = {"cursor", "6162"},
               *nul[] = {"cursor", "00"};
    expect_error(check(CSA_COLD_STARTS_LIST, not_hex, 2, NULL), "cursor", "value_error");
    expect_error(check(CSA_COLD_STARTS_LIST, upper, 2, NULL), "cursor", "value_error");
    expect_error(check(CSA_COLD_STARTS_LIST, no_bar, 2, NULL), "cursor", "value_error");
    expect_error(check(CSA_COLD_STARTS_LIST, nul, 2, NULL), "cursor", "value_error");
    const char *bad_from[] = {"from", "yesterday"};
    expect_error(check(CSA_COLD_STARTS_TYPICAL, bad_from, 2, NULL), "from", "datetime_format");
    const char *reversed[] = {"from", "2026-01-02T00:00:00Z", "to", "2026-01-01T00:00:00Z"};
    expect_error(check(CSA_COLD_STARTS_TYPICAL, reversed, 4, NULL), "from", "value_error");
    const char *wide[] = {"from", "2025-01-01T00:00:00Z", "to", "2025-04-02T00:00:01Z"};
    expect_error(check(CSA_COLD_STARTS_LIST, wide, 4, NULL), "from", "window_too_wide");
    const char *ninety[] = {"from", "2025-01-01T00:00:00Z", "to", "2025-04-01T00:00:00Z"};
    cr_assert_null(check(CSA_COLD_STARTS_LIST, ninety, 4, NULL), "90 days is allowed");
    /* to alone: the 7 days before it; a to 8 days ago is fine, a from after now without to is not */
    const char *future_from[] = {"from", "2026-01-02T00:00:00Z"};
    expect_error(check(CSA_COLD_STARTS_LIST, future_from, 2, NULL), "from", "value_error");
    /* the typical read takes no limit or cursor: they are ignored */
    cr_assert_null(check(CSA_COLD_STARTS_TYPICAL, limit0, 2, NULL));
}

Test(check_args, one_needs_an_invocation_id_as_ingest_accepts_it)
{
    expect_error(check(CSA_COLD_STARTS_ONE, NULL, 0, NULL), "invocation_id", "missing");
    const char *empty[] = {"invocation_id", ""}, *control[] = {"invocation_id", "a\tb"};
    expect_error(check(CSA_COLD_STARTS_ONE, empty, 2, NULL), "invocation_id", "string_type");
    expect_error(check(CSA_COLD_STARTS_ONE, control, 2, NULL), "invocation_id", "string_type");
    char long_id[3 * 256 + 1] = "";
    for (int i = 0; i < 255; i++)
        strcat(long_id, "\xe2\x82\xac"); /* 255 euro signs: 255 characters, 765 bytes */
    const char *ok[] = {"invocation_id", long_id};
    cr_assert_null(check(CSA_COLD_STARTS_ONE, ok, 2, NULL), "255 characters");
    strcat(long_id, "x");
    expect_error(check(CSA_COLD_STARTS_ONE, ok, 2, NULL), "invocation_id", "string_type");
    /* the window does not apply to one cold start */
    const char *with_window[] = {"invocation_id", "abc", "from", "nope"};
    cr_assert_null(check(CSA_COLD_STARTS_ONE, with_window, 4, NULL));
}
