/* Unit tests for rules.c. The cases the engine shares with its TypeScript port (matching, versions,
 * thresholds, the generic rules, ranking, the savings arithmetic, validation of bad tables) are the
 * test vectors in rules/test-vectors.json, which sdk/test/unit/rules.test.ts runs too; what only
 * this implementation has (files on disk, JSON syntax, NULL arguments, small buffers) is tested here
 * directly. */
#include "rules.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The checked-in table, found from this source file: backend/tests/unit -> repo root. */
static void real_rules_path(char *out, size_t size)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(out, size, "%.*s/../../../rules/recommendations.json", (int)(slash - file), file);
    else
        snprintf(out, size, "../../../rules/recommendations.json");
}

static csa_rules *load_real(void)
{
    char path[4096], err[512] = "";
    real_rules_path(path, sizeof path);
    csa_rules *rules = csa_rules_load(path, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    return rules;
}

/* Writes text to a fresh temporary file; the caller unlinks it. */
static void write_temp(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/test_rules_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t length = strlen(text);
    cr_assert_eq(write(fd, text, length), (ssize_t)length);
    close(fd);
}

/* Loads a rule file given as text; returns the table (or NULL with err filled). */
static csa_rules *load_text(const char *text, char *err, size_t err_size)
{
    char path[64];
    write_temp(path, sizeof path, text);
    csa_rules *rules = csa_rules_load(path, err, err_size);
    unlink(path);
    return rules;
}

/* Asserts that text is rejected and the message contains `expected`. */
static void expect_rejected(const char *text, const char *expected)
{
    char err[512] = "";
    csa_rules *rules = load_text(text, err, sizeof err);
    cr_assert_null(rules, "accepted a bad file, expected: %s", expected);
    cr_expect(strstr(err, expected) != NULL, "message \"%s\" does not contain \"%s\"", err, expected);
    cr_expect(strstr(err, "/tmp/test_rules_") == err, "message \"%s\" does not start with the path", err);
    cr_expect(strchr(err, '\n') == NULL, "message is not one line: %s", err);
}

#define RULE(id, rest) "{\"id\": \"" id "\", \"issue\": \"i\", \"suggestion\": \"s\", \"evidence\": \"e\", " rest "}"
#define TABLE(rules) "{\"version\": 1, \"min_module_ms\": 10, \"rules\": [" rules "]}"

static long long savings_at(json_t *recs, size_t index)
{
    json_t *savings = json_object_get(json_array_get(recs, index), "potential_savings_ms");
    cr_assert(json_is_integer(savings), "potential_savings_ms is not an integer");
    return (long long)json_integer_value(savings);
}

/* The checked-in test vectors, found from this source file like the table. */
static json_t *load_vectors(void)
{
    char path[4096];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(path, sizeof path, "%.*s/../../../rules/test-vectors.json", (int)(slash - file), file);
    else
        snprintf(path, sizeof path, "../../../rules/test-vectors.json");
    json_error_t error;
    json_t *vectors = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    cr_assert_not_null(vectors, "%s: line %d: %s", path, error.line, error.text);
    return vectors;
}

/* The tables the vectors name, each loaded once: "real" is recommendations.json, any other name
 * is tables.<name> of the vectors, written to a file and loaded as the server loads its own. */
struct vector_tables {
    const char *names[8];
    csa_rules *rules[8];
    size_t count;
};

static csa_rules *vector_table(struct vector_tables *tables, json_t *vectors, const char *name)
{
    cr_assert_not_null(name, "a case without a table");
    for (size_t i = 0; i < tables->count; i++)
        if (strcmp(tables->names[i], name) == 0)
            return tables->rules[i];
    cr_assert_lt(tables->count, sizeof tables->rules / sizeof tables->rules[0]);
    csa_rules *rules;
    if (strcmp(name, "real") == 0) {
        rules = load_real();
    } else {
        json_t *table = json_object_get(json_object_get(vectors, "tables"), name);
        cr_assert_not_null(table, "no table \"%s\" in the vectors", name);
        char *text = json_dumps(table, 0);
        char err[512] = "";
        rules = load_text(text, err, sizeof err);
        free(text);
        cr_assert_not_null(rules, "%s", err);
    }
    tables->names[tables->count] = name;
    tables->rules[tables->count++] = rules;
    return rules;
}

static const char *text_or(json_t *value, const char *otherwise)
{
    const char *text = json_string_value(value);
    return text ? text : otherwise;
}

/* ---- the test vectors --------------------------------------------------------------------- */

Test(rules_vectors, recommend)
{
    json_t *vectors = load_vectors();
    json_t *cases = json_object_get(vectors, "recommend");
    cr_assert_geq(json_array_size(cases), 90);
    struct vector_tables tables = {.count = 0};
    size_t i;
    json_t *vector;
    json_array_foreach(cases, i, vector) {
        const char *name = text_or(json_object_get(vector, "case"), "?");
        const csa_rules *rules = vector_table(&tables, vectors, json_string_value(json_object_get(vector, "table")));
        json_t *modules = json_object_get(vector, "modules");
        json_t *context = json_object_get(vector, "context");
        json_t *before = json_deep_copy(modules);
        json_t *recs = csa_rules_recommend(rules, json_is_null(modules) ? NULL : modules,
                                           json_is_null(context) ? NULL : context);
        cr_assert(json_is_array(recs), "%s: not an array", name);
        json_t *expect = json_object_get(vector, "expect");
        cr_expect_eq(json_array_size(recs), json_array_size(expect), "%s: %zu recommendations, expected %zu", name,
                     json_array_size(recs), json_array_size(expect));
        for (size_t k = 0; k < json_array_size(recs) && k < json_array_size(expect); k++) {
            json_t *rec = json_array_get(recs, k);
            json_t *want = json_array_get(expect, k);
            const char *module = text_or(json_object_get(rec, "module"), "(none)");
            const char *rule_id = text_or(json_object_get(rec, "rule_id"), "(none)");
            cr_expect_str_eq(module, text_or(json_array_get(want, 0), "?"), "%s: [%zu] module", name, k);
            cr_expect_str_eq(rule_id, text_or(json_array_get(want, 1), "?"), "%s: [%zu] rule_id", name, k);
            cr_expect_eq(savings_at(recs, k), (long long)json_integer_value(json_array_get(want, 2)),
                         "%s: [%zu] potential_savings_ms", name, k);
            cr_expect_eq(json_object_size(rec), 6, "%s: unexpected fields in a recommendation", name);
            for (const char *const *field = (const char *const[]){"issue", "suggestion", "evidence", NULL}; *field;
                 field++)
                cr_expect_gt(json_string_length(json_object_get(rec, *field)), 0, "%s: empty %s", name, *field);
        }
        size_t t;
        json_t *text;
        json_array_foreach(json_object_get(vector, "texts"), t, text) {
            json_t *rec = json_array_get(recs, (size_t)json_integer_value(json_object_get(text, "at")));
            const char *field = text_or(json_object_get(text, "field"), "?");
            const char *contains = text_or(json_object_get(text, "contains"), "?");
            cr_expect(strstr(text_or(json_object_get(rec, field), ""), contains) != NULL, "%s: %s does not contain %s",
                      name, field, contains);
        }
        /* the inputs are borrowed, not changed */
        cr_expect(json_equal(before, modules), "%s: the modules were changed", name);
        json_decref(before);
        json_decref(recs);
    }
    for (size_t k = 0; k < tables.count; k++)
        csa_rules_free(tables.rules[k]);
    json_decref(vectors);
}

Test(rules_vectors, version_in_range)
{
    json_t *vectors = load_vectors();
    json_t *cases = json_object_get(vectors, "version_in_range");
    cr_assert_geq(json_array_size(cases), 26);
    size_t i;
    json_t *vector;
    json_array_foreach(cases, i, vector) {
        const char *version = json_string_value(json_array_get(vector, 0)); /* NULL for null */
        const char *range = json_string_value(json_array_get(vector, 1));
        int expected = (int)json_integer_value(json_array_get(vector, 2));
        cr_expect_eq(csa_rules_version_in_range(version, range), expected, "\"%s\" in \"%s\"",
                     version ? version : "(null)", range ? range : "(null)");
    }
    json_decref(vectors);
}

Test(rules_vectors, rejected)
{
    json_t *vectors = load_vectors();
    json_t *cases = json_object_get(vectors, "rejected");
    cr_assert_geq(json_array_size(cases), 34);
    size_t i;
    json_t *vector;
    json_array_foreach(cases, i, vector) {
        char *text = json_dumps(json_object_get(vector, "table"), JSON_ENCODE_ANY);
        cr_assert_not_null(text);
        expect_rejected(text, text_or(json_object_get(vector, "error"), "?"));
        free(text);
    }
    json_decref(vectors);
}

/* ---- only here --------------------------------------------------------------------------- */

Test(rules_file, loads_and_validates)
{
    csa_rules *rules = load_real();
    cr_expect_geq(csa_rules_count(rules), 20);
    csa_rules_free(rules);
}

Test(rules_file, null_arguments)
{
    /* no table, no modules, no context: an empty array, never a crash */
    json_t *recs = csa_rules_recommend(NULL, NULL, NULL);
    cr_expect(json_is_array(recs));
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
}

Test(rules_validation, minimal_file_loads)
{
    char err[512] = "";
    csa_rules *rules = load_text(
        TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 1, \"min_ms\": 20")), err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    cr_expect_eq(csa_rules_count(rules), 1);
    csa_rules_free(rules);
}

Test(rules_validation, malformed_json_and_missing_file)
{
    expect_rejected("{\"version\": 1, \"min_module_ms\": 10,", "line ");
    expect_rejected("{\"version\": 1, \"version\": 1, \"min_module_ms\": 10, \"rules\": []}", "duplicate");
    char err[512] = "";
    cr_expect_null(csa_rules_load("/nonexistent/rules.json", err, sizeof err));
    cr_expect(strstr(err, "/nonexistent/rules.json: ") == err, "%s", err);
    cr_expect_null(csa_rules_load(NULL, err, sizeof err));
}

Test(rules_validation, small_error_buffer_is_safe)
{
    char err[16];
    memset(err, 'x', sizeof err);
    char path[64];
    write_temp(path, sizeof path, TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 7")));
    cr_expect_null(csa_rules_load(path, err, sizeof err));
    cr_expect_eq(strlen(err), sizeof err - 1);
    cr_expect_null(csa_rules_load(path, NULL, 0));
    unlink(path);
}
