/* Unit tests for the route table's field rules (csa_validate_params, validate.h) and the page
 * cursor codec (cursor.h). */
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
