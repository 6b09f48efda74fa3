/* Unit tests for csa_validate_record, csa_validate_batch_envelope and csa_parse_rfc3339. */
#include "validate.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The spec's example payload (Ingest Telemetry Data). */
static const char *const SPEC_EXAMPLE =
    "{"
    "\"function_name\": \"payment-service\","
    "\"invocation_id\": \"abc-123-def\","
    "\"request_id\": \"req-456\","
    "\"timestamp\": \"2026-01-02T10:30:00Z\","
    "\"cold_start\": true,"
    "\"init_duration_ms\": 2850,"
    "\"execution_duration_ms\": 145,"
    "\"billed_duration_ms\": 3000,"
    "\"memory_used_mb\": 180,"
    "\"memory_allocated_mb\": 512,"
    "\"module_timings\": {\"aws-sdk\": 850, \"@prisma/client\": 680, \"moment\": 340,"
    "  \"lodash\": 180, \"axios\": 95, \"./src/handlers/payment\": 45},"
    "\"runtime_version\": \"nodejs18.x\","
    "\"architecture\": \"x86_64\""
    "}";

#define NOW 1767353400.0 /* 2026-01-02T11:30:00Z, an hour after the example's timestamp */

static const char *const OUTPUT_KEYS[] = {
    "function_name",    "invocation_id",         "request_id",         "timestamp",      "cold_start",
    "init_duration_ms", "execution_duration_ms", "billed_duration_ms", "memory_used_mb", "memory_allocated_mb",
    "module_timings",   "runtime_version",       "architecture",       "region",         "init_type",
    "start_kind",       "sdk_version",           "sdk_overhead_ms",    "module_tree",        "module_source",
    "complete",         "function_version",      "code_id",
};
#define NKEYS (sizeof OUTPUT_KEYS / sizeof OUTPUT_KEYS[0])

static json_t *errors;
static json_t *prefix;

static void setup(void)
{
    errors = json_array();
    prefix = json_pack("[s]", "body");
}

static void teardown(void)
{
    json_decref(errors);
    json_decref(prefix);
}

TestSuite(validate, .init = setup, .fini = teardown);
TestSuite(envelope, .init = setup, .fini = teardown);

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    cr_assert_not_null(v, "test JSON broken: %s: %s", e.text, text);
    return v;
}

/* The spec example with `field` set to the JSON `value_json` (NULL: field removed). */
static json_t *example_with(const char *field, const char *value_json)
{
    json_t *rec = load(SPEC_EXAMPLE);
    if (value_json)
        json_object_set_new(rec, field, load(value_json));
    else
        json_object_del(rec, field);
    return rec;
}

/* Validates, asserting success; returns the normalised record. */
static json_t *expect_ok(json_t *rec)
{
    json_t *out = csa_validate_record(rec, prefix, errors, NOW);
    char *dump = json_dumps(errors, 0);
    cr_assert_not_null(out, "rejected: %s", dump);
    free(dump);
    cr_assert_eq(json_array_size(errors), 0);
    return out;
}

/* Finds the error whose loc equals loc_json; NULL if none. */
static json_t *find_error(const char *loc_json)
{
    json_t *want = load(loc_json);
    size_t i;
    json_t *e, *found = NULL;
    json_array_foreach(errors, i, e)
    {
        if (json_equal(json_object_get(e, "loc"), want)) {
            found = e;
            break;
        }
    }
    json_decref(want);
    return found;
}

/* Asserts an error at loc with the given type exists; returns its message. */
static const char *assert_error(const char *loc_json, const char *type)
{
    json_t *e = find_error(loc_json);
    char *dump = json_dumps(errors, 0);
    cr_assert_not_null(e, "no error at %s; errors: %s", loc_json, dump);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type, "at %s; errors: %s", loc_json, dump);
    free(dump);
    cr_assert(json_is_string(json_object_get(e, "msg")) && json_string_length(json_object_get(e, "msg")) > 0);
    cr_assert_eq(json_object_size(e), 3, "an error has exactly loc, msg, type");
    return json_string_value(json_object_get(e, "msg"));
}

/* The example with field := value must fail with exactly one error, at ["body", field], of `type`. */
static const char *expect_field_error(const char *field, const char *value_json, const char *type)
{
    json_t *rec = example_with(field, value_json);
    json_t *out = csa_validate_record(rec, prefix, errors, NOW);
    cr_assert_null(out, "%s = %s accepted", field, value_json ? value_json : "(absent)");
    json_decref(rec);
    char loc[300];
    snprintf(loc, sizeof loc, "[\"body\", \"%s\"]", field);
    cr_assert_eq(json_array_size(errors), 1, "%s = %s: expected one error", field, value_json);
    return assert_error(loc, type);
}

/* The example with field := value must pass; returns the normalised value of that field (new ref). */
static json_t *expect_field_ok(const char *field, const char *value_json)
{
    json_t *rec = example_with(field, value_json);
    json_t *out = expect_ok(rec);
    json_t *v = json_incref(json_object_get(out, field));
    json_decref(out);
    json_decref(rec);
    json_array_clear(errors);
    return v;
}

/* ---- whole records ------------------------------------------------------------------------- */

Test(validate, spec_example_passes_and_is_normalised)
{
    json_t *rec = load(SPEC_EXAMPLE);
    json_t *out = expect_ok(rec);
    cr_assert_eq(json_object_size(out), NKEYS, "normalised object has exactly the documented keys");
    for (size_t i = 0; i < NKEYS; i++)
        cr_assert_not_null(json_object_get(out, OUTPUT_KEYS[i]), "key %s missing", OUTPUT_KEYS[i]);
    cr_assert_str_eq(json_string_value(json_object_get(out, "function_name")), "payment-service");
    cr_assert_str_eq(json_string_value(json_object_get(out, "invocation_id")), "abc-123-def");
    cr_assert_str_eq(json_string_value(json_object_get(out, "request_id")), "req-456");
    cr_assert_str_eq(json_string_value(json_object_get(out, "timestamp")), "2026-01-02T10:30:00Z");
    cr_assert(json_is_true(json_object_get(out, "cold_start")));
    cr_assert_eq(json_integer_value(json_object_get(out, "init_duration_ms")), 2850);
    cr_assert_eq(json_integer_value(json_object_get(out, "execution_duration_ms")), 145);
    cr_assert_eq(json_integer_value(json_object_get(out, "billed_duration_ms")), 3000);
    cr_assert_eq(json_integer_value(json_object_get(out, "memory_used_mb")), 180);
    cr_assert_eq(json_integer_value(json_object_get(out, "memory_allocated_mb")), 512);
    cr_assert(json_equal(json_object_get(out, "module_timings"), json_object_get(rec, "module_timings")));
    cr_assert_str_eq(json_string_value(json_object_get(out, "runtime_version")), "nodejs18.x");
    cr_assert_str_eq(json_string_value(json_object_get(out, "architecture")), "x86_64");
    const char *absent[] = {"region", "init_type", "start_kind", "sdk_version", "sdk_overhead_ms", "module_tree"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        cr_assert(json_is_null(json_object_get(out, absent[i])), "%s should be null", absent[i]);
    json_decref(out);
    json_decref(rec);
}

Test(validate, minimal_record_passes_with_optionals_null)
{
    json_t *rec = load("{\"function_name\": \"f\", \"timestamp\": \"2026-01-02T10:30:00Z\", \"cold_start\": false,"
                       " \"execution_duration_ms\": 0}");
    json_t *out = expect_ok(rec);
    cr_assert_eq(json_object_size(out), NKEYS);
    cr_assert(json_is_false(json_object_get(out, "cold_start")));
    const char *optional[] = {
        "invocation_id",       "request_id",     "init_duration_ms", "billed_duration_ms", "memory_used_mb",
        "memory_allocated_mb", "module_timings", "runtime_version",  "architecture",       "region",
        "init_type",           "start_kind",     "sdk_version",      "sdk_overhead_ms",    "module_tree"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        cr_assert(json_is_null(json_object_get(out, optional[i])), "%s should be null", optional[i]);
    json_decref(out);
    json_decref(rec);
}

Test(validate, all_optional_fields_valid)
{
    json_t *rec = load(SPEC_EXAMPLE);
    json_t *extra = load("{\"region\": \"eu-west-1\", \"init_type\": \"on-demand\", \"start_kind\": \"proactive\","
                         " \"sdk_version\": \"1.2.3\", \"sdk_overhead_ms\": 1.25,"
                         " \"module_tree\": {\"name\": \"root\", \"children\": []}}");
    json_object_update(rec, extra);
    json_t *out = expect_ok(rec);
    cr_assert_str_eq(json_string_value(json_object_get(out, "region")), "eu-west-1");
    cr_assert_str_eq(json_string_value(json_object_get(out, "init_type")), "on-demand");
    cr_assert_str_eq(json_string_value(json_object_get(out, "start_kind")), "proactive");
    cr_assert_str_eq(json_string_value(json_object_get(out, "sdk_version")), "1.2.3");
    cr_assert_float_eq(json_number_value(json_object_get(out, "sdk_overhead_ms")), 1.25, 1e-12);
    cr_assert(json_equal(json_object_get(out, "module_tree"), json_object_get(extra, "module_tree")));
    json_decref(out);
    json_decref(extra);
    json_decref(rec);
}

Test(validate, explicit_nulls_for_optionals_are_absent)
{
    json_t *rec = load(SPEC_EXAMPLE);
    const char *optional[] = {
        "invocation_id",       "request_id",     "init_duration_ms", "billed_duration_ms", "memory_used_mb",
        "memory_allocated_mb", "module_timings", "runtime_version",  "architecture",       "region",
        "init_type",           "start_kind",     "sdk_version",      "sdk_overhead_ms",    "module_tree"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        json_object_set_new(rec, optional[i], json_null());
    json_t *out = expect_ok(rec);
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        cr_assert(json_is_null(json_object_get(out, optional[i])), "%s should be null", optional[i]);
    json_decref(out);
    json_decref(rec);
}

Test(validate, unknown_fields_are_ignored_and_not_copied)
{
    json_t *rec = load(SPEC_EXAMPLE);
    json_object_set_new(rec, "surprise", json_string("x"));
    json_object_set_new(rec, "project_id", json_string("someone-else"));
    json_t *out = expect_ok(rec);
    cr_assert_null(json_object_get(out, "surprise"));
    cr_assert_null(json_object_get(out, "project_id"));
    cr_assert_eq(json_object_size(out), NKEYS);
    json_decref(out);
    json_decref(rec);
}

Test(validate, non_object_record)
{
    const char *values[] = {"[]", "\"text\"", "1", "null", "true"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        json_t *rec = load(values[i]);
        cr_assert_null(csa_validate_record(rec, prefix, errors, NOW), "%s accepted", values[i]);
        cr_assert_eq(json_array_size(errors), 1);
        const char *msg = assert_error("[\"body\"]", "model_type");
        cr_assert_str_eq(msg, "Input should be an object");
        json_decref(rec);
        json_array_clear(errors);
    }
}

Test(validate, empty_object_lists_every_required_field)
{
    json_t *rec = load("{}");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 4);
    cr_assert_str_eq(assert_error("[\"body\", \"function_name\"]", "missing"), "Field required");
    assert_error("[\"body\", \"timestamp\"]", "missing");
    assert_error("[\"body\", \"cold_start\"]", "missing");
    assert_error("[\"body\", \"execution_duration_ms\"]", "missing");
    json_decref(rec);
}

Test(validate, several_errors_collected_at_once)
{
    json_t *rec = load("{\"function_name\": \"\", \"timestamp\": \"yesterday\", \"cold_start\": \"yes\","
                       " \"execution_duration_ms\": \"145\", \"memory_allocated_mb\": 64,"
                       " \"architecture\": \"mips\", \"module_timings\": {\"lodash\": -1, \"axios\": 2},"
                       " \"region\": \"US_EAST\"}");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    assert_error("[\"body\", \"function_name\"]", "string_too_short");
    assert_error("[\"body\", \"timestamp\"]", "datetime_format");
    assert_error("[\"body\", \"cold_start\"]", "bool_type");
    assert_error("[\"body\", \"execution_duration_ms\"]", "int_type");
    assert_error("[\"body\", \"memory_allocated_mb\"]", "greater_than_equal");
    assert_error("[\"body\", \"architecture\"]", "literal_error");
    assert_error("[\"body\", \"module_timings\", \"lodash\"]", "greater_than_equal");
    assert_error("[\"body\", \"region\"]", "string_pattern_mismatch");
    cr_assert_eq(json_array_size(errors), 8, "one error per bad field, nothing for the good module");
    json_decref(rec);
}

Test(validate, appends_to_existing_errors_and_uses_full_prefix)
{
    json_decref(prefix);
    prefix = json_pack("[s, s, i]", "body", "invocations", 3);
    json_t *before = json_pack("{s:s}", "earlier", "error");
    json_array_append_new(errors, before);
    json_t *prefix_copy = json_deep_copy(prefix);
    json_t *rec = example_with("cold_start", "1");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 2);
    cr_assert_eq(json_array_get(errors, 0), before, "earlier errors are kept");
    assert_error("[\"body\", \"invocations\", 3, \"cold_start\"]", "bool_type");
    cr_assert(json_equal(prefix, prefix_copy), "loc_prefix was modified");
    json_decref(prefix_copy);
    json_decref(rec);
}

Test(validate, does_not_modify_the_record)
{
    json_t *rec = load(SPEC_EXAMPLE);
    json_object_set_new(rec, "module_tree", load("[1, 2]"));
    json_t *copy = json_deep_copy(rec);
    json_t *out = expect_ok(rec);
    cr_assert(json_equal(rec, copy));
    json_decref(out);
    json_decref(copy);
    json_decref(rec);
}

/* ---- required fields ----------------------------------------------------------------------- */

Test(validate, required_fields_missing_or_null)
{
    const char *required[] = {"function_name", "timestamp", "cold_start", "execution_duration_ms"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(expect_field_error(required[i], NULL, "missing"), "Field required");
        json_array_clear(errors);
        cr_assert_str_eq(expect_field_error(required[i], "null", "missing"), "Field required (null given)");
        json_array_clear(errors);
    }
}

/* ---- strings ------------------------------------------------------------------------------- */

/* A JSON string literal of n copies of the UTF-8 sequence `unit`. */
static char *repeat_json(const char *unit, int n)
{
    static char buf[4096];
    size_t u = strlen(unit), p = 0;
    buf[p++] = '"';
    for (int i = 0; i < n; i++) {
        memcpy(buf + p, unit, u);
        p += u;
    }
    buf[p++] = '"';
    buf[p] = '\0';
    return buf;
}

Test(validate, function_name)
{
    json_t *v = expect_field_ok("function_name", "\"a\"");
    cr_assert_str_eq(json_string_value(v), "a");
    json_decref(v);
    json_decref(expect_field_ok("function_name", repeat_json("x", 255)));
    /* 255 code points of 3 bytes each: the limit counts characters, not bytes */
    json_decref(expect_field_ok("function_name", repeat_json("\xe2\x82\xac", 255)));
    json_decref(expect_field_ok("function_name", "\"caf\\u00e9 \\ud83d\\ude00 svc\""));

    cr_assert_str_eq(expect_field_error("function_name", "\"\"", "string_too_short"),
                     "String should have at least 1 character");
    json_array_clear(errors);
    cr_assert_str_eq(expect_field_error("function_name", repeat_json("x", 256), "string_too_long"),
                     "String should have at most 255 characters");
    json_array_clear(errors);
    expect_field_error("function_name", repeat_json("\xe2\x82\xac", 256), "string_too_long");
    json_array_clear(errors);
    const char *bad_types[] = {"123", "true", "[\"a\"]", "{\"a\": 1}", "1.5"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(expect_field_error("function_name", bad_types[i], "string_type"),
                         "Input should be a valid string");
        json_array_clear(errors);
    }
}

Test(validate, control_characters_refused)
{
    const char *bad[] = {"\"a\\u0001b\"",  "\"tab\\there\"", "\"line\\n\"",  "\"\\u001f\"",
                         "\"del\\u007f\"", "\"c1\\u0080\"",  "\"c1\\u009f\""};
    const char *fields[] = {"function_name", "invocation_id", "request_id",
                            "init_type",     "sdk_version",   "runtime_version"};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            expect_field_error(fields[f], bad[i], "string_pattern_mismatch");
            json_array_clear(errors);
        }
    }
    /* just outside the ranges */
    json_decref(expect_field_ok("function_name", "\"sp ace~\\u00a0\""));
}

Test(validate, optional_ids)
{
    const char *fields[] = {"invocation_id", "request_id"};
    for (int f = 0; f < 2; f++) {
        json_t *v = expect_field_ok(fields[f], "\"id-1\"");
        cr_assert_str_eq(json_string_value(v), "id-1");
        json_decref(v);
        json_decref(expect_field_ok(fields[f], repeat_json("z", 255)));
        expect_field_error(fields[f], "\"\"", "string_too_short");
        json_array_clear(errors);
        expect_field_error(fields[f], repeat_json("z", 256), "string_too_long");
        json_array_clear(errors);
        expect_field_error(fields[f], "42", "string_type");
        json_array_clear(errors);
    }
}

Test(validate, short_strings)
{
    const char *fields[] = {"runtime_version", "init_type", "sdk_version"};
    for (int f = 0; f < 3; f++) {
        json_t *v = expect_field_ok(fields[f], repeat_json("v", 50));
        cr_assert_eq(json_string_length(v), 50);
        json_decref(v);
        cr_assert_str_eq(expect_field_error(fields[f], repeat_json("v", 51), "string_too_long"),
                         "String should have at most 50 characters");
        json_array_clear(errors);
        expect_field_error(fields[f], "\"\"", "string_too_short");
        json_array_clear(errors);
        expect_field_error(fields[f], "18", "string_type");
        json_array_clear(errors);
    }
}

Test(validate, region)
{
    json_t *v = expect_field_ok("region", "\"us-east-1\"");
    cr_assert_str_eq(json_string_value(v), "us-east-1");
    json_decref(v);
    json_decref(expect_field_ok("region", repeat_json("a", 50)));
    const char *bad[] = {"\"US-EAST-1\"", "\"us east 1\"", "\"us_east_1\"", "\"eu-west-1\\n\"", "\"r\\u00e9gion\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_str_eq(expect_field_error("region", bad[i], "string_pattern_mismatch"),
                         "String should match pattern '^[a-z0-9-]+$'");
        json_array_clear(errors);
    }
    expect_field_error("region", repeat_json("a", 51), "string_too_long");
    json_array_clear(errors);
    expect_field_error("region", "\"\"", "string_too_short");
    json_array_clear(errors);
    expect_field_error("region", "1", "string_type");
}

Test(validate, architecture)
{
    json_t *v = expect_field_ok("architecture", "\"arm64\"");
    cr_assert_str_eq(json_string_value(v), "arm64");
    json_decref(v);
    const char *bad[] = {"\"X86_64\"", "\"aarch64\"", "\"arm64 \"", "\"\"", "64", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_str_eq(expect_field_error("architecture", bad[i], "literal_error"),
                         "Input should be 'x86_64' or 'arm64'");
        json_array_clear(errors);
    }
}

Test(validate, start_kind)
{
    const char *good[] = {"\"cold\"", "\"warm\"", "\"proactive\"", "\"provisioned\""};
    for (int i = 0; i < 4; i++) {
        json_t *v = expect_field_ok("start_kind", good[i]);
        cr_assert(json_is_string(v));
        json_decref(v);
    }
    cr_assert_str_eq(expect_field_error("start_kind", "\"Cold\"", "literal_error"),
                     "Input should be 'cold', 'warm', 'proactive' or 'provisioned'");
    json_array_clear(errors);
    expect_field_error("start_kind", "1", "literal_error");
}

Test(validate, module_source)
{
    const char *good[] = {"\"hooks\"", "\"esbuild-plugin\"", "\"bundled-no-plugin\""};
    for (int i = 0; i < 3; i++) {
        json_t *v = expect_field_ok("module_source", good[i]);
        cr_assert(json_is_string(v));
        json_decref(v);
    }
    cr_assert_str_eq(expect_field_error("module_source", "\"webpack\"", "literal_error"),
                     "Input should be 'hooks', 'esbuild-plugin' or 'bundled-no-plugin'");
    json_array_clear(errors);
}

/* The deployment identity: function_version and code_id, 1 to 64 printable ASCII characters. */
Test(validate, deployment_identity)
{
    const char *fields[] = {"function_version", "code_id"};
    for (int f = 0; f < 2; f++) {
        const char *good[] = {"\"$LATEST\"", "\"12\"", "\"3f2a9c0d1e7b4a65b8c1d2e3f4a5b6c7\"", "\"v1:sha256/AbC+=_-~!\""};
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
            json_t *v = expect_field_ok(fields[f], good[i]);
            json_t *want = load(good[i]);
            cr_assert(json_equal(v, want), "%s %s kept as sent", fields[f], good[i]);
            json_decref(want);
            json_decref(v);
        }
        json_decref(expect_field_ok(fields[f], repeat_json("a", 64)));
        expect_field_error(fields[f], repeat_json("a", 65), "string_too_long");
        json_array_clear(errors);
        expect_field_error(fields[f], "\"\"", "string_too_short");
        json_array_clear(errors);
        expect_field_error(fields[f], "7", "string_type");
        json_array_clear(errors);
        const char *bad[] = {"\"has space\"", "\"tab\\there\"", "\"caf\\u00e9\"", "\"nl\\n\"", "\"del\\u007f\""};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cr_assert_str_eq(expect_field_error(fields[f], bad[i], "string_pattern_mismatch"),
                             "String should match pattern '^[!-~]+$'", "%s %s", fields[f], bad[i]);
            json_array_clear(errors);
        }
    }
}

/* "complete": false: a cold-start record handed off at the start of its invocation */
Test(validate, incomplete_cold_start_record)
{
    json_t *rec = example_with("complete", "false");
    json_object_del(rec, "execution_duration_ms");
    json_object_del(rec, "billed_duration_ms");
    json_object_del(rec, "memory_used_mb");
    json_t *out = expect_ok(rec);
    cr_assert(json_is_false(json_object_get(out, "complete")));
    cr_assert(json_is_null(json_object_get(out, "execution_duration_ms")));
    json_decref(out);

    /* the completion needs the id */
    json_object_del(rec, "invocation_id");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 1);
    cr_assert_str_eq(assert_error("[\"body\", \"invocation_id\"]", "missing"), "Field required when complete is false");
    json_array_clear(errors);

    /* only cold-start records are handed off early */
    json_object_set_new(rec, "invocation_id", json_string("abc"));
    json_object_set_new(rec, "cold_start", json_false());
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 1);
    assert_error("[\"body\", \"complete\"]", "value_error");
    json_array_clear(errors);
    json_decref(rec);

    /* complete: true (or absent) still needs execution_duration_ms; complete must be a boolean */
    rec = example_with("complete", "true");
    json_object_del(rec, "execution_duration_ms");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    assert_error("[\"body\", \"execution_duration_ms\"]", "missing");
    json_array_clear(errors);
    json_decref(rec);
    cr_assert_str_eq(expect_field_error("complete", "\"false\"", "bool_type"), "Input should be a valid boolean");
}

/* ---- booleans and numbers ------------------------------------------------------------------ */

Test(validate, cold_start_is_a_json_boolean_only)
{
    json_t *v = expect_field_ok("cold_start", "false");
    cr_assert(json_is_false(v));
    json_decref(v);
    const char *bad[] = {"\"yes\"", "1", "0", "\"true\"", "\"false\"", "[]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_str_eq(expect_field_error("cold_start", bad[i], "bool_type"), "Input should be a valid boolean");
        json_array_clear(errors);
    }
}

Test(validate, integer_fields)
{
    struct {
        const char *name;
        long long min, max;
    } fields[] = {
        {"init_duration_ms", 0, CSA_MAX_DURATION_MS},
        {"execution_duration_ms", 0, CSA_MAX_DURATION_MS},
        {"billed_duration_ms", 0, CSA_MAX_DURATION_MS},
        {"memory_used_mb", 0, CSA_MAX_MEMORY_MB},
        {"memory_allocated_mb", CSA_MIN_MEMORY_MB, CSA_MAX_MEMORY_MB},
    };
    char buf[64], msg[96];
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        const char *name = fields[f].name;
        snprintf(buf, sizeof buf, "%lld", fields[f].min);
        json_t *v = expect_field_ok(name, buf);
        cr_assert_eq(json_integer_value(v), fields[f].min);
        json_decref(v);
        snprintf(buf, sizeof buf, "%lld", fields[f].max);
        v = expect_field_ok(name, buf);
        cr_assert(json_is_integer(v));
        cr_assert_eq(json_integer_value(v), fields[f].max);
        json_decref(v);

        snprintf(buf, sizeof buf, "%lld", fields[f].max + 1);
        snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", fields[f].max);
        cr_assert_str_eq(expect_field_error(name, buf, "less_than_equal"), msg);
        json_array_clear(errors);
        snprintf(buf, sizeof buf, "%lld", fields[f].min - 1);
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %lld", fields[f].min);
        cr_assert_str_eq(expect_field_error(name, buf, "greater_than_equal"), msg);
        json_array_clear(errors);
        expect_field_error(name, "9223372036854775807", "less_than_equal");
        json_array_clear(errors);
        expect_field_error(name, "-9223372036854775807", "greater_than_equal");
        json_array_clear(errors);

        const char *bad[] = {"145.0", "\"145\"", "true", "1e3", "[1]"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cr_assert_str_eq(expect_field_error(name, bad[i], "int_type"), "Input should be a valid integer", "%s = %s",
                             name, bad[i]);
            json_array_clear(errors);
        }
    }
    cr_assert_str_eq(expect_field_error("execution_duration_ms", "900001", "less_than_equal"),
                     "Input should be less than or equal to 900000");
}

Test(validate, sdk_overhead_ms)
{
    json_t *v = expect_field_ok("sdk_overhead_ms", "0.5");
    cr_assert(json_is_real(v));
    cr_assert_float_eq(json_real_value(v), 0.5, 1e-12);
    json_decref(v);
    v = expect_field_ok("sdk_overhead_ms", "3");
    cr_assert(json_is_integer(v));
    cr_assert_eq(json_integer_value(v), 3);
    json_decref(v);
    json_decref(expect_field_ok("sdk_overhead_ms", "900000.0"));
    json_decref(expect_field_ok("sdk_overhead_ms", "0"));

    expect_field_error("sdk_overhead_ms", "-0.001", "greater_than_equal");
    json_array_clear(errors);
    expect_field_error("sdk_overhead_ms", "900000.5", "less_than_equal");
    json_array_clear(errors);
    expect_field_error("sdk_overhead_ms", "1e300", "less_than_equal");
    json_array_clear(errors);
    cr_assert_str_eq(expect_field_error("sdk_overhead_ms", "\"1.5\"", "float_type"), "Input should be a valid number");
    json_array_clear(errors);
    expect_field_error("sdk_overhead_ms", "true", "float_type");
}

/* ---- module_timings ------------------------------------------------------------------------ */

Test(validate, module_timings_valid)
{
    json_t *v = expect_field_ok("module_timings", "{\"a\": 0, \"b\": 1.5, \"c\": 900000, \"d\": 900000.0}");
    cr_assert_eq(json_object_size(v), 4);
    cr_assert_float_eq(json_number_value(json_object_get(v, "b")), 1.5, 1e-12);
    json_decref(v);
    v = expect_field_ok("module_timings", "{}");
    cr_assert(json_is_object(v));
    cr_assert_eq(json_object_size(v), 0);
    json_decref(v);
}

Test(validate, module_timings_bad_values_located_by_key)
{
    json_t *rec = example_with("module_timings", "{\"lodash\": -1, \"ok\": 5, \"moment\": \"340\", \"axios\": 900001,"
                                                 " \"big\": 1e10, \"flag\": true, \"nested\": {\"x\": 1},"
                                                 " \"none\": null}");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    assert_error("[\"body\", \"module_timings\", \"lodash\"]", "greater_than_equal");
    assert_error("[\"body\", \"module_timings\", \"moment\"]", "float_type");
    cr_assert_str_eq(assert_error("[\"body\", \"module_timings\", \"axios\"]", "less_than_equal"),
                     "Input should be less than or equal to 900000");
    assert_error("[\"body\", \"module_timings\", \"big\"]", "less_than_equal");
    assert_error("[\"body\", \"module_timings\", \"flag\"]", "float_type");
    assert_error("[\"body\", \"module_timings\", \"nested\"]", "float_type");
    assert_error("[\"body\", \"module_timings\", \"none\"]", "float_type");
    cr_assert_null(find_error("[\"body\", \"module_timings\", \"ok\"]"));
    cr_assert_eq(json_array_size(errors), 7);
    json_decref(rec);
}

Test(validate, module_timings_bad_keys)
{
    json_t *rec = example_with("module_timings", "{\"\": 1, \"del\\u007f\": 2, \"tab\\tkey\": 3, \"fine\": 4}");
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    assert_error("[\"body\", \"module_timings\", \"\"]", "string_too_short");
    assert_error("[\"body\", \"module_timings\", \"tab\\tkey\"]", "string_pattern_mismatch");
    assert_error("[\"body\", \"module_timings\", \"del\\u007f\"]", "string_pattern_mismatch");
    cr_assert_eq(json_array_size(errors), 3);
    json_decref(rec);
    json_array_clear(errors);

    char body[600], loc[700];
    snprintf(body, sizeof body, "{%s: 1}", repeat_json("k", 256));
    rec = example_with("module_timings", body);
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 1);
    snprintf(loc, sizeof loc, "[\"body\", \"module_timings\", %s]", repeat_json("k", 256));
    assert_error(loc, "string_too_long");
    json_decref(rec);
    json_array_clear(errors);
    snprintf(body, sizeof body, "{%s: 1}", repeat_json("k", 255));
    json_decref(expect_field_ok("module_timings", body));
}

Test(validate, module_timings_entry_limit)
{
    json_t *timings = json_object();
    char key[32];
    for (int i = 0; i < CSA_MAX_MODULE_TIMINGS; i++) {
        snprintf(key, sizeof key, "m%d", i);
        json_object_set_new(timings, key, json_integer(i % 100));
    }
    json_t *rec = load(SPEC_EXAMPLE);
    json_object_set(rec, "module_timings", timings);
    json_t *out = expect_ok(rec);
    cr_assert_eq(json_object_size(json_object_get(out, "module_timings")), CSA_MAX_MODULE_TIMINGS);
    json_decref(out);

    json_object_set_new(timings, "one-more", json_integer(1));
    cr_assert_null(csa_validate_record(rec, prefix, errors, NOW));
    cr_assert_eq(json_array_size(errors), 1);
    cr_assert_str_eq(assert_error("[\"body\", \"module_timings\"]", "too_long"),
                     "Dictionary should have at most 2000 items after validation, not 2001");
    json_decref(timings);
    json_decref(rec);
}

Test(validate, module_timings_must_be_an_object)
{
    const char *bad[] = {"[]", "[[\"a\", 1]]", "\"aws-sdk\"", "1", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_field_error("module_timings", bad[i], "dict_type");
        json_array_clear(errors);
    }
}

Test(validate, module_tree)
{
    json_t *v = expect_field_ok("module_tree", "{\"a\": {\"b\": [1, 2]}}");
    cr_assert(json_is_object(v));
    json_decref(v);
    v = expect_field_ok("module_tree", "[{\"name\": \"x\"}]");
    cr_assert(json_is_array(v));
    json_decref(v);
    /* the SDK's tree with ES module loading timed (load/link totals, nodes' loading and evaluation
     * parts) is kept as sent, every field */
    const char *esm = "{\"load_ms\": 250.1, \"loading_ms\": 215.7, \"link_ms\": 13.1, \"modules\": 416,"
                      " \"esm_timing\": \"on\", \"coverage\": \"preload\", \"truncated\": false,"
                      " \"children\": [{\"name\": \"date-fns\", \"version\": \"4.1.0\", \"self_ms\": 140.2,"
                      " \"total_ms\": 141.0, \"loading_ms\": 139.9, \"evaluation_ms\": 0.3, \"loads\": 301}]}";
    v = expect_field_ok("module_tree", esm);
    json_t *sent = load(esm);
    cr_assert(json_equal(v, sent));
    json_decref(sent);
    json_decref(v);
    const char *bad[] = {"\"tree\"", "1", "true", "2.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_field_error("module_tree", bad[i], "dict_type");
        json_array_clear(errors);
    }
}

/* ---- timestamp ----------------------------------------------------------------------------- */

Test(validate, timestamp_forms_kept_verbatim)
{
    const char *good[] = {"\"2026-01-02T10:30:00Z\"", "\"2026-01-02t10:30:00z\"", "\"2026-01-02 10:30:00.123+02:00\"",
                          "\"2026-01-02T10:30:00.123456789-05:30\"", "\"2000-01-01T00:00:00Z\""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *v = expect_field_ok("timestamp", good[i]);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", json_string_value(v));
        cr_assert_str_eq(quoted, good[i], "timestamp not kept as given");
        json_decref(v);
    }
}

Test(validate, timestamp_errors)
{
    const char *bad_format[] = {
        "\"2026-01-02T10:30:00\"",  "\"2026-01-02\"",           "\"01/02/2026 10:30\"", "\"\"",
        "\"2026-13-02T10:30:00Z\"", "\"2026-01-02T24:00:00Z\"", "\"1767349800\"",       "\"2026-01-02T10:30:00Z \""};
    for (size_t i = 0; i < sizeof bad_format / sizeof bad_format[0]; i++) {
        cr_assert_str_eq(expect_field_error("timestamp", bad_format[i], "datetime_format"),
                         "Input should be an RFC 3339 date-time with a time zone", "%s", bad_format[i]);
        json_array_clear(errors);
    }
    expect_field_error("timestamp", "1767349800", "string_type");
    json_array_clear(errors);
    expect_field_error("timestamp", "\"1999-12-31T23:59:59Z\"", "datetime_past");
    json_array_clear(errors);
    expect_field_error("timestamp", "\"2000-01-01T00:30:00+01:00\"", "datetime_past"); /* 1999 in UTC */
    json_array_clear(errors);
    /* NOW + 24 h is 2026-01-03T11:30:00Z: accepted; one second later is not */
    json_decref(expect_field_ok("timestamp", "\"2026-01-03T11:30:00Z\""));
    expect_field_error("timestamp", "\"2026-01-03T11:30:01Z\"", "datetime_future");
    json_array_clear(errors);
    expect_field_error("timestamp", "\"2026-01-03T12:30:00+00:59\"", "datetime_future");
    json_array_clear(errors);
    json_decref(expect_field_ok("timestamp", "\"2026-01-03T12:30:00+01:00\""));
}

/* ---- batch envelope ------------------------------------------------------------------------ */

static json_t *envelope_of(int n)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, json_object());
    return json_pack("{s:o}", "invocations", items);
}

Test(envelope, accepts_1_and_max_items)
{
    json_t *body = envelope_of(1);
    json_t *items = csa_validate_batch_envelope(body, errors);
    cr_assert_eq(items, json_object_get(body, "invocations"), "returns the borrowed array");
    cr_assert_eq(json_array_size(errors), 0);
    json_decref(body);
    body = envelope_of(CSA_MAX_BATCH);
    cr_assert_not_null(csa_validate_batch_envelope(body, errors));
    cr_assert_eq(json_array_size(errors), 0);
    json_decref(body);
}

Test(envelope, too_many_or_none)
{
    json_t *body = envelope_of(CSA_MAX_BATCH + 1);
    cr_assert_null(csa_validate_batch_envelope(body, errors));
    cr_assert_eq(json_array_size(errors), 1);
    cr_assert_str_eq(assert_error("[\"body\", \"invocations\"]", "too_long"),
                     "List should have at most 1000 items after validation, not 1001");
    json_decref(body);
    json_array_clear(errors);

    body = envelope_of(0);
    cr_assert_null(csa_validate_batch_envelope(body, errors));
    cr_assert_eq(json_array_size(errors), 1);
    assert_error("[\"body\", \"invocations\"]", "too_short");
    json_decref(body);
}

Test(envelope, wrong_shapes)
{
    struct {
        const char *body, *loc, *type;
    } cases[] = {
        {"{}", "[\"body\", \"invocations\"]", "missing"},
        {"{\"invocations\": null}", "[\"body\", \"invocations\"]", "missing"},
        {"{\"invocation\": []}", "[\"body\", \"invocations\"]", "missing"},
        {"{\"invocations\": {}}", "[\"body\", \"invocations\"]", "list_type"},
        {"{\"invocations\": \"[]\"}", "[\"body\", \"invocations\"]", "list_type"},
        {"[{}]", "[\"body\"]", "model_type"},
        {"\"x\"", "[\"body\"]", "model_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = load(cases[i].body);
        cr_assert_null(csa_validate_batch_envelope(body, errors), "%s accepted", cases[i].body);
        cr_assert_eq(json_array_size(errors), 1, "%s", cases[i].body);
        assert_error(cases[i].loc, cases[i].type);
        json_decref(body);
        json_array_clear(errors);
    }
}

/* ---- RFC 3339 ------------------------------------------------------------------------------ */

static double epoch_of(const char *s)
{
    double e = -1;
    cr_assert_eq(csa_parse_rfc3339(s, &e), 0, "refused: %s", s);
    return e;
}

Test(rfc3339, valid_forms)
{
    cr_assert_float_eq(epoch_of("1970-01-01T00:00:00Z"), 0.0, 1e-9);
    cr_assert_float_eq(epoch_of("2026-01-02T10:30:00Z"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02t10:30:00z"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02 10:30:00Z"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02T12:30:00+02:00"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02T05:00:00-05:30"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02T10:30:00-00:00"), 1767349800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02T10:30:00.5Z"), 1767349800.5, 1e-6);
    cr_assert_float_eq(epoch_of("2026-01-02T10:30:00.123456789Z"), 1767349800.123456789, 1e-6);
    cr_assert_float_eq(epoch_of("2000-01-01T00:00:00Z"), 946684800.0, 1e-6);
    cr_assert_float_eq(epoch_of("1969-12-31T23:59:59Z"), -1.0, 1e-9);
    cr_assert_float_eq(epoch_of("2038-01-19T03:14:08Z"), 2147483648.0, 1e-6); /* past 32-bit time_t */
    cr_assert_float_eq(epoch_of("9999-12-31T23:59:59Z"), 253402300799.0, 1e-3);
    cr_assert_float_eq(epoch_of("2016-12-31T23:59:60Z"), 1483228800.0, 1e-6); /* leap second */
    cr_assert_float_eq(epoch_of("2026-01-02T10:30:00+15:59"), 1767349800.0 - 15 * 3600 - 59 * 60, 1e-6);
    cr_assert_eq(csa_parse_rfc3339("2026-01-02T10:30:00Z", NULL), 0, "epoch pointer is optional");
}

Test(rfc3339, leap_years)
{
    cr_assert_float_eq(epoch_of("2024-02-29T00:00:00Z"), 1709164800.0, 1e-6);
    cr_assert_float_eq(epoch_of("2000-02-29T00:00:00Z"), 951782400.0, 1e-6); /* divisible by 400 */
    cr_assert_float_eq(epoch_of("2024-03-01T00:00:00Z") - epoch_of("2024-02-28T00:00:00Z"), 2 * 86400.0, 1e-6);
    cr_assert_float_eq(epoch_of("2026-03-01T00:00:00Z") - epoch_of("2026-02-28T00:00:00Z"), 86400.0, 1e-6);
    double e;
    cr_assert_eq(csa_parse_rfc3339("2026-02-29T00:00:00Z", &e), -1);
    cr_assert_eq(csa_parse_rfc3339("2100-02-29T00:00:00Z", &e), -1); /* divisible by 100 */
    cr_assert_eq(csa_parse_rfc3339("2024-02-30T00:00:00Z", &e), -1);
    cr_assert_eq(csa_parse_rfc3339("2026-04-31T00:00:00Z", &e), -1);
    cr_assert_float_eq(epoch_of("2026-12-31T00:00:00Z") + 86400, epoch_of("2027-01-01T00:00:00Z"), 1e-6);
}

Test(rfc3339, invalid_forms)
{
    const char *bad[] = {
        "",
        "2026-01-02T10:30:00",             /* no zone */
        "2026-01-02T10:30:00.123",         /* no zone */
        "2026-01-02",                      /* date only */
        "2026-13-02T10:30:00Z",            /* month 13 */
        "2026-00-02T10:30:00Z",            /* month 0 */
        "2026-01-00T10:30:00Z",            /* day 0 */
        "2026-01-32T10:30:00Z",            /* day 32 */
        "2026-01-02T24:00:00Z",            /* hour 24 */
        "2026-01-02T10:60:00Z",            /* minute 60 */
        "2026-01-02T10:30:61Z",            /* second 61 */
        "2026-01-02T10:30:00+24:00",       /* offset hour 24 */
        "2026-01-02T10:30:00+16:00",       /* beyond PostgreSQL's +-15:59 */
        "2026-01-02T10:30:00-23:59",       /* idem */
        "2026-01-02T10:30:00+02:60",       /* offset minute 60 */
        "2026-01-02T10:30:00+0200",        /* offset without colon */
        "2026-01-02T10:30:00+02",          /* offset without minutes */
        "2026-01-02T10:30:00.Z",           /* empty fraction */
        "2026-01-02T10:30:00.1234567890Z", /* 10 fraction digits */
        "2026-01-02T10:30:00,5Z",          /* comma fraction */
        "2026-01-02X10:30:00Z",            /* bad separator */
        "2026-01-02T10:30Z",               /* no seconds */
        "2026-1-02T10:30:00Z",             /* one-digit month */
        "+2026-01-02T10:30:00Z",           /* sign */
        "2026-01-02T10:30:00ZZ",           /* trailing */
        "2026-01-02T10:30:00Z ",           /* trailing space */
        " 2026-01-02T10:30:00Z",           /* leading space */
        "2026-01-02T1a:30:00Z",            /* letter in hour */
        "0000-01-01T00:00:00Z",            /* year 0: PostgreSQL refuses it */
        "2026-01-02T10:30:00 UTC",         /* zone name */
        "\xd9\xa2"
        "026-01-02T10:30:00Z", /* non-ASCII digit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double e = 12345.0;
        cr_assert_eq(csa_parse_rfc3339(bad[i], &e), -1, "accepted: \"%s\"", bad[i]);
    }
    double e;
    cr_assert_eq(csa_parse_rfc3339(NULL, &e), -1);
}

/* module_tree has a size cap of its own (CSA_MAX_MODULE_TREE_BYTES as compact JSON). */
Test(validate, module_tree_size_cap)
{
    json_t *rec = load(SPEC_EXAMPLE);
    json_t *children = json_array();
    char name[32];
    size_t bytes = 0;
    for (int i = 0; bytes <= CSA_MAX_MODULE_TREE_BYTES; i++) {
        snprintf(name, sizeof name, "module-%06d", i);
        json_array_append_new(children, json_pack("{s:s, s:i}", "name", name, "ms", i));
        bytes += 30;
    }
    json_object_set_new(rec, "module_tree", json_pack("{s:s, s:o}", "name", "root", "children", children));
    json_t *out = csa_validate_record(rec, prefix, errors, NOW);
    cr_assert_null(out);
    cr_assert_eq(json_array_size(errors), 1);
    json_t *e = json_array_get(errors, 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "too_long");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "loc"), 1)), "module_tree");
    /* just under the cap passes */
    json_array_clear(errors);
    json_t *small = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(small, json_pack("{s:s, s:i}", "name", "m", "ms", i));
    json_object_set_new(rec, "module_tree", json_pack("{s:s, s:o}", "name", "root", "children", small));
    out = csa_validate_record(rec, prefix, errors, NOW);
    cr_assert_not_null(out);
    json_decref(out);
    json_decref(rec);
}
