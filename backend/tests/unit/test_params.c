/* Unit tests for the route table's field rules (csa_validate_params, validate.h), the read window
 * (csa_validate_window) and the page cursor codec (cursor.h). */
#include "coldstarts.h"
#include "cursor.h"
#include "keys.h"
#include "validate.h"

#include <criterion/criterion.h>
#include <string.h>

static json_t *errors;

static void setup(void) { errors = json_array(); }
static void teardown(void) { json_decref(errors); }

TestSuite(params, .init = setup, .fini = teardown);

/* Runs rules over a JSON text (NULL: no input). */
static json_t *run(const csa_param_rule *rules, const char *where, const char *text)
{
    json_t *in = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (text)
        cr_assert_not_null(in, "bad test JSON: %s", text);
    json_t *out = csa_validate_params(rules, where, in, errors);
    json_decref(in);
    return out;
}

/* errors[i] has loc [where, name(, index)] and type. */
static void assert_error(size_t i, const char *where, const char *name, long index, const char *type)
{
    json_t *e = json_array_get(errors, i);
    cr_assert_not_null(e, "no error %zu", i);
    json_t *loc = json_object_get(e, "loc");
    cr_assert_str_eq(json_string_value(json_array_get(loc, 0)), where);
    cr_assert_str_eq(json_string_value(json_array_get(loc, 1)), name);
    if (index >= 0)
        cr_assert_eq(json_integer_value(json_array_get(loc, 2)), index);
    else
        cr_assert_eq(json_array_size(loc), 2);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
}

Test(params, list_functions_defaults_and_normalised_values)
{
    json_t *out = run(CSA_QUERY_LIST_FUNCTIONS, "query", "{}");
    cr_assert_not_null(out);
    cr_assert_eq(json_integer_value(json_object_get(out, "limit")), 50);
    cr_assert_null(json_object_get(out, "cursor"));
    json_decref(out);

    char cursor[CSA_CURSOR_MAX];
    csa_cursor_encode("orders-api", cursor, sizeof cursor);
    char text[CSA_CURSOR_MAX + 128];
    snprintf(text, sizeof text, "{\"limit\": \"200\", \"cursor\": \"%s\", \"name_prefix\": \"\", \"other\": \"x\"}", cursor);
    out = run(CSA_QUERY_LIST_FUNCTIONS, "query", text);
    cr_assert_not_null(out);
    cr_assert_eq(json_integer_value(json_object_get(out, "limit")), 200);
    cr_assert_str_eq(json_string_value(json_object_get(out, "cursor")), "orders-api");
    cr_assert_null(json_object_get(out, "name_prefix"), "an empty prefix counts as absent");
    cr_assert_null(json_object_get(out, "other"), "unknown parameters are dropped");
    json_decref(out);
}

Test(params, every_bad_parameter_is_reported)
{
    json_t *out = run(CSA_QUERY_LIST_FUNCTIONS, "query", "{\"limit\": \"201\", \"cursor\": \"0g\"}");
    cr_assert_null(out);
    cr_assert_eq(json_array_size(errors), 2);
    assert_error(0, "query", "limit", -1, "int_parsing");
    assert_error(1, "query", "cursor", -1, "value_error");
}

Test(params, limit_bounds)
{
    const char *bad[] = {"0", "-1", "", "1x", "5.0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_pack("{s:s}", "limit", bad[i]);
        cr_assert_null(csa_validate_params(CSA_QUERY_LIST_FUNCTIONS, "query", in, errors), "limit=%s", bad[i]);
        json_decref(in);
    }
    json_t *in = json_pack("{s:s}", "limit", "1");
    json_t *out = csa_validate_params(CSA_QUERY_LIST_FUNCTIONS, "query", in, errors);
    cr_assert_eq(json_integer_value(json_object_get(out, "limit")), 1);
    json_decref(in);
    json_decref(out);
}

Test(params, datetimes_and_tokens)
{
    json_t *out = run(CSA_QUERY_FUNCTION_DETAIL, "query", "{\"from\": \"2026-01-02T00:00:00Z\"}");
    cr_assert_not_null(out);
    json_decref(out);
    cr_assert_null(run(CSA_QUERY_FUNCTION_DETAIL, "query", "{\"to\": \"2026-01-02T00:00:00\"}"));
    assert_error(0, "query", "to", -1, "datetime_format");

    out = run(CSA_QUERY_COMPARE, "query", "{\"base\": \"code:abc\", \"head\": \"version:12\"}");
    cr_assert_not_null(out);
    json_decref(out);
    json_array_clear(errors);
    cr_assert_null(run(CSA_QUERY_COMPARE, "query", "{\"base\": \"has space\"}"));
    assert_error(0, "query", "base", -1, "string_pattern_mismatch");
}

Test(params, flag_is_true_only_for_true)
{
    json_t *out = run(CSA_QUERY_REVOKE_KEY, "query", "{\"force\": \"true\"}");
    cr_assert(json_is_true(json_object_get(out, "force")));
    json_decref(out);
    out = run(CSA_QUERY_REVOKE_KEY, "query", "{\"force\": \"1\"}");
    cr_assert(json_is_false(json_object_get(out, "force")));
    json_decref(out);
    out = run(CSA_QUERY_REVOKE_KEY, "query", "{}");
    cr_assert(json_is_false(json_object_get(out, "force")));
    json_decref(out);
}

Test(params, create_key_body)
{
    json_t *out = run(CSA_BODY_CREATE_KEY, "body", NULL);
    cr_assert_not_null(out, "no body: the defaults");
    cr_assert_eq(json_integer_value(json_object_get(out, "scopes")), CSA_SCOPE_INGEST);
    json_decref(out);

    out = run(CSA_BODY_CREATE_KEY, "body", "{\"name\": \"ci\", \"scopes\": [\"read\", \"admin\"]}");
    cr_assert_eq(json_integer_value(json_object_get(out, "scopes")), CSA_SCOPE_READ | CSA_SCOPE_ADMIN);
    cr_assert_str_eq(json_string_value(json_object_get(out, "name")), "ci");
    json_decref(out);

    cr_assert_null(run(CSA_BODY_CREATE_KEY, "body", "{\"name\": \"\", \"scopes\": [\"read\", \"root\", 3]}"));
    cr_assert_eq(json_array_size(errors), 3);
    assert_error(0, "body", "name", -1, "string_type");
    assert_error(1, "body", "scopes", 1, "enum");
    assert_error(2, "body", "scopes", 2, "enum");

    json_array_clear(errors);
    cr_assert_null(run(CSA_BODY_CREATE_KEY, "body", "{\"scopes\": []}"));
    assert_error(0, "body", "scopes", -1, "list_type");

    json_array_clear(errors);
    cr_assert_null(run(CSA_BODY_CREATE_KEY, "body", "[1]"));
    json_t *loc = json_object_get(json_array_get(errors, 0), "loc");
    cr_assert_eq(json_array_size(loc), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "type")), "model_type");
}

Test(params, create_project_requires_name_and_slug)
{
    cr_assert_null(run(CSA_BODY_CREATE_PROJECT, "body", "{\"name\": null}"));
    cr_assert_eq(json_array_size(errors), 2);
    assert_error(0, "body", "name", -1, "string_type");
    assert_error(1, "body", "slug", -1, "string_pattern_mismatch");
    json_array_clear(errors);
    cr_assert_null(run(CSA_BODY_CREATE_PROJECT, "body", "{\"name\": \"Shop\", \"slug\": \"Shop\"}"));
    assert_error(0, "body", "slug", -1, "string_pattern_mismatch");
    json_t *out = run(CSA_BODY_CREATE_PROJECT, "body", "{\"name\": \"Shop\", \"slug\": \"shop_1\"}");
    cr_assert_not_null(out);
    json_decref(out);
}

Test(cursor, round_trip_and_refusals)
{
    char enc[CSA_CURSOR_MAX], dec[CSA_CURSOR_NAME_MAX];
    csa_cursor_encode("héllo/fn", enc, sizeof enc);
    cr_assert_eq(csa_cursor_decode(enc, dec, sizeof dec), 0);
    cr_assert_str_eq(dec, "héllo/fn");
    const char *bad[] = {"", "a", "0G", "00", "ABCD", "zz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(csa_cursor_decode(bad[i], dec, sizeof dec), -1, "%s", bad[i]);
    cr_assert_eq(csa_cursor_decode("6162", dec, 2), -1, "does not fit");
}

/* ---- the cold-start reads (coldstarts.h): their rules and the window ------------------------ */

#define NOW 1767225600.0 /* 2026-01-01T00:00:00Z */

/* One string parameter through rules; the errors are in `errors`. */
static json_t *run1(const csa_param_rule *rules, const char *name, const char *value)
{
    json_t *in = json_pack("{s:s}", name, value);
    json_t *out = csa_validate_params(rules, "query", in, errors);
    json_decref(in);
    return out;
}

/* Exactly one error, at ["query", name] of type; clears the errors. */
static void assert_one_error(const char *name, const char *type)
{
    cr_assert_eq(json_array_size(errors), 1, "one error at %s, got %zu", name, json_array_size(errors));
    assert_error(0, "query", name, -1, type);
    json_array_clear(errors);
}

Test(params, cold_starts_defaults_and_a_decoded_keyset_cursor)
{
    json_t *out = run(CSA_QUERY_COLD_STARTS, "query", "{}");
    cr_assert_eq(json_integer_value(json_object_get(out, "limit")), CSA_COLD_STARTS_PAGE);
    cr_assert_null(json_object_get(out, "cursor"));
    json_decref(out);
    /* what the list hands out: "<timestamp>|<invocation_id>" through the cursor codec */
    char cursor[CSA_CURSOR_MAX];
    csa_cursor_encode("2026-01-02T10:30:00.123456Z|a/b|c", cursor, sizeof cursor);
    cr_assert_str_eq(cursor, "323032362d30312d30325431303a33303a30302e3132333435365a7c612f627c63");
    json_t *in = json_pack("{s:s, s:s}", "limit", "7", "cursor", cursor);
    out = csa_validate_params(CSA_QUERY_COLD_STARTS, "query", in, errors);
    json_decref(in);
    cr_assert_not_null(out);
    cr_assert_eq(json_integer_value(json_object_get(out, "limit")), 7);
    json_t *key = json_object_get(out, "cursor");
    cr_assert_eq(json_array_size(key), 2);
    cr_assert_str_eq(json_string_value(json_array_get(key, 0)), "2026-01-02T10:30:00.123456Z");
    cr_assert_str_eq(json_string_value(json_array_get(key, 1)), "a/b|c", "split at the first '|'");
    json_decref(out);
}

Test(params, cold_starts_bad_limit_and_cursor_name_their_parameter)
{
    const char *limits[] = {"0", "201", "5x", ""};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        cr_assert_null(run1(CSA_QUERY_COLD_STARTS, "limit", limits[i]), "limit=%s", limits[i]);
        assert_one_error("limit", "int_parsing");
    }
    char no_time[CSA_CURSOR_MAX], no_bar[CSA_CURSOR_MAX], no_id[CSA_CURSOR_MAX], control[CSA_CURSOR_MAX];
    csa_cursor_encode("yesterday|od-100", no_time, sizeof no_time);
    csa_cursor_encode("2026-01-01T00:00:00Z", no_bar, sizeof no_bar);
    csa_cursor_encode("2026-01-01T00:00:00Z|", no_id, sizeof no_id);
    csa_cursor_encode("2026-01-01T00:00:00Z|a\tb", control, sizeof control);
    const char *cursors[] = {"zz", "3A", "00", "", no_time, no_bar, no_id, control};
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        cr_assert_null(run1(CSA_QUERY_COLD_STARTS, "cursor", cursors[i]), "cursor=%s", cursors[i]);
        assert_one_error("cursor", "value_error");
    }
    cr_assert_null(run1(CSA_QUERY_COLD_STARTS, "from", "yesterday"));
    assert_one_error("from", "datetime_format");
}

Test(params, cold_start_tree_needs_an_invocation_id_as_ingest_accepts_it)
{
    cr_assert_null(run(CSA_QUERY_COLD_START_TREE, "query", "{}"));
    assert_one_error("invocation_id", "missing");
    const char *bad[] = {"", "a\tb", "a\x7f", "a\xc2\x85"}; /* C0, DEL, C1 (NEL) */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_null(run1(CSA_QUERY_COLD_START_TREE, "invocation_id", bad[i]), "%zu", i);
        assert_one_error("invocation_id", "string_type");
    }
    char long_id[3 * 256 + 2] = "";
    for (int i = 0; i < 255; i++)
        strcat(long_id, "\xe2\x82\xac"); /* 255 euro signs: 255 characters, 765 bytes */
    json_t *out = run1(CSA_QUERY_COLD_START_TREE, "invocation_id", long_id);
    cr_assert_not_null(out, "255 characters");
    cr_assert_str_eq(json_string_value(json_object_get(out, "invocation_id")), long_id);
    json_decref(out);
    strcat(long_id, "x");
    cr_assert_null(run1(CSA_QUERY_COLD_START_TREE, "invocation_id", long_id));
    assert_one_error("invocation_id", "string_type");
    /* the window does not apply to one cold start: from/to are dropped, not checked */
    out = run(CSA_QUERY_COLD_START_TREE, "query", "{\"invocation_id\": \"abc\", \"from\": \"nope\"}");
    cr_assert_not_null(out);
    cr_assert_null(json_object_get(out, "from"));
    json_decref(out);
}

/* csa_validate_window over from/to (NULL: absent), 90 days at most. */
static json_t *window(const char *from, const char *to, int must_be_ordered)
{
    json_t *args = json_object();
    if (from)
        json_object_set_new(args, "from", json_string(from));
    if (to)
        json_object_set_new(args, "to", json_string(to));
    json_t *errs = csa_validate_window(args, 90, NOW, must_be_ordered);
    json_decref(args);
    return errs;
}

static void assert_window_error(json_t *errs, const char *type)
{
    cr_assert_not_null(errs, "expected %s", type);
    json_array_extend(errors, errs);
    json_decref(errs);
    assert_one_error("from", type);
}

Test(params, the_read_window)
{
    cr_assert_null(window(NULL, NULL, 1), "the default: the 7 days up to now");
    cr_assert_null(window("2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z", 1), "90 days is allowed");
    assert_window_error(window("2025-01-01T00:00:00Z", "2025-04-02T00:00:01Z", 0), "window_too_wide");
    assert_window_error(window("2025-01-01T00:00:00Z", NULL, 0), "window_too_wide"); /* up to now: a year */
    cr_assert_null(window(NULL, "2025-01-01T00:00:00Z", 1), "to alone: the 7 days before it");
    /* not ordered: refused when asked (the cold-start reads), else an empty window */
    assert_window_error(window("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", 1), "value_error");
    assert_window_error(window("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 1), "value_error");
    assert_window_error(window("2026-01-02T00:00:00Z", NULL, 1), "value_error"); /* from after now */
    cr_assert_null(window("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", 0));
}
