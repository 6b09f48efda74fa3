/* Unit tests for rules.c: the real rule file, validation of bad files, matching, versions,
 * thresholds, the generic rules, ranking and the savings arithmetic. */
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
#define PLAIN_RULE(id, module) RULE(id, "\"match\": {\"module\": \"" module "\"}, \"savings_share\": 0.5")
#define TABLE(rules) "{\"version\": 1, \"min_module_ms\": 10, \"rules\": [" rules "]}"

/* One module entry with a p50 and, optionally, a version (NULL: null) and seen_in (< 0: absent). */
static json_t *module_entry(double p50, const char *version, double seen_in)
{
    json_t *m = json_pack("{s:f, s:f, s:f, s:f, s:o}", "avg_load_time_ms", p50, "p50_ms", p50, "p95_ms", p50 * 2,
                          "p99_ms", p50 * 3, "version", version ? json_string(version) : json_null());
    if (seen_in >= 0)
        json_object_set_new(m, "seen_in", json_real(seen_in));
    return m;
}

static json_t *context_for(double module_load_p50_ms)
{
    return json_pack("{s:n, s:f, s:i}", "init_p50_ms", "module_load_p50_ms", module_load_p50_ms, "cold_starts", 20);
}

/* Recommendations for one module. */
static json_t *recommend_one(const csa_rules *rules, const char *name, double p50, const char *version, double seen_in)
{
    json_t *modules = json_object();
    json_object_set_new(modules, name, module_entry(p50, version, seen_in));
    json_t *context = context_for(p50);
    json_t *recs = csa_rules_recommend(rules, modules, context);
    json_decref(modules);
    json_decref(context);
    cr_assert(json_is_array(recs));
    return recs;
}

static const char *rule_id_at(json_t *recs, size_t index)
{
    return json_string_value(json_object_get(json_array_get(recs, index), "rule_id"));
}

static long long savings_at(json_t *recs, size_t index)
{
    json_t *savings = json_object_get(json_array_get(recs, index), "potential_savings_ms");
    cr_assert(json_is_integer(savings), "potential_savings_ms is not an integer");
    return (long long)json_integer_value(savings);
}

/* ---- the real table ---------------------------------------------------------------------- */

Test(rules_file, loads_and_validates)
{
    csa_rules *rules = load_real();
    cr_expect_geq(csa_rules_count(rules), 20);
    csa_rules_free(rules);
}

Test(rules_file, covers_every_required_module)
{
    static const struct {
        const char *module;
        const char *version;
        const char *rule_id;
    } required[] = {
        {"aws-sdk", "2.1692.0", "aws-sdk-v2"},
        {"@aws-sdk/client-s3", "3.700.0", "aws-sdk-v3-unbundled"},
        {"@aws-sdk/client-dynamodb", NULL, "aws-sdk-v3-unbundled"},
        {"@smithy/smithy-client", NULL, "smithy-unbundled"},
        {"@aws-sdk/credential-provider-node", "3.450.0", "aws-credential-chain-eager"},
        {"moment", "2.30.1", "moment"},
        {"lodash", "4.17.21", "lodash-whole-package"},
        {"@prisma/client", "5.22.0", "prisma-client"},
        {".prisma/client", NULL, "prisma-generated-client"},
        {"@prisma/engines", NULL, "prisma-engines"},
        {"axios", "1.7.0", "axios"},
        {"request", "2.88.2", "request"},
        {"express", "4.21.0", "express-on-lambda"},
        {"serverless-http", "3.2.0", "serverless-http"},
        {"firebase-admin", "12.0.0", "firebase-admin"},
        {"googleapis", "144.0.0", "googleapis"},
        {"winston", "3.14.0", "winston"},
        {"dd-trace", "5.0.0", "datadog-tracer"},
        {"newrelic", "12.0.0", "newrelic-agent"},
        {"@opentelemetry/sdk-node", NULL, "opentelemetry"},
        {"@opentelemetry/instrumentation-http", NULL, "opentelemetry"},
        {"@sentry/node", "8.0.0", "sentry"},
        {"elastic-apm-node", "4.0.0", "elastic-apm"},
        {"date-fns", "4.1.0", "date-fns-barrel"},
        {"date-fns", NULL, "date-fns-barrel"},
        {"lodash-es", "4.17.21", "lodash-es-barrel"},
        {"@mui/icons-material", "6.1.0", "mui-icons-barrel"},
        {"@mui/material", "6.1.0", "mui-material-barrel"},
        {"rxjs", "7.8.1", "rxjs-barrel"},
    };
    csa_rules *rules = load_real();
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        json_t *recs = recommend_one(rules, required[i].module, 200, required[i].version, 1);
        cr_expect_eq(json_array_size(recs), 1, "%s: %zu recommendations", required[i].module, json_array_size(recs));
        const char *id = rule_id_at(recs, 0);
        cr_expect(id && strcmp(id, required[i].rule_id) == 0, "%s: rule %s, expected %s", required[i].module,
                  id ? id : "(none)", required[i].rule_id);
        json_t *rec = json_array_get(recs, 0);
        for (const char *const *field = (const char *const[]){"issue", "suggestion", "evidence", NULL}; *field; field++)
            cr_expect_gt(json_string_length(json_object_get(rec, *field)), 0, "%s: empty %s", required[i].module,
                         *field);
        json_decref(recs);
    }
    csa_rules_free(rules);
}

Test(rules_file, credential_chain_only_before_the_lazy_release)
{
    csa_rules *rules = load_real();
    json_t *recs = recommend_one(rules, "@aws-sdk/credential-provider-node", 100, "3.498.0", 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "aws-credential-chain-eager");
    cr_expect_eq(savings_at(recs, 0), 60);
    json_decref(recs);
    /* from 3.499.0 the chain is lazy: only the bundling advice applies */
    recs = recommend_one(rules, "@aws-sdk/credential-provider-node", 100, "3.499.0", 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "aws-sdk-v3-unbundled");
    json_decref(recs);
    /* unknown version: the ranged rule never applies */
    recs = recommend_one(rules, "@aws-sdk/credential-provider-node", 100, NULL, 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "aws-sdk-v3-unbundled");
    json_decref(recs);
    csa_rules_free(rules);
}

Test(rules_file, barrel_imports_recognised_by_their_loading_cost)
{
    csa_rules *rules = load_real();
    /* a few subpath imports of date-fns cost a few ms: below the rule's 20 ms, no generic advice either */
    json_t *recs = recommend_one(rules, "date-fns", 15, "4.1.0", 1);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    recs = recommend_one(rules, "date-fns", 1435, "4.1.0", 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "date-fns-barrel");
    cr_expect_eq(savings_at(recs, 0), 1220);
    cr_expect(strstr(json_string_value(json_object_get(json_array_get(recs, 0), "issue")), "Node.js version") != NULL);
    json_decref(recs);
    recs = recommend_one(rules, "@mui/icons-material", 400, NULL, 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "mui-icons-barrel");
    cr_expect_eq(savings_at(recs, 0), 380);
    json_decref(recs);
    /* rxjs 6: only the generic advice */
    recs = recommend_one(rules, "rxjs", 200, "6.6.7", 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "large-module");
    json_decref(recs);
    csa_rules_free(rules);
}

Test(rules_file, generic_rules)
{
    csa_rules *rules = load_real();
    /* a large module nothing specific knows, loaded in every cold start */
    json_t *recs = recommend_one(rules, "pdfkit", 150, "0.15.0", 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "large-module");
    cr_expect_eq(savings_at(recs, 0), 45); /* 150 x 0.3 */
    json_decref(recs);
    /* the same module loaded in only some cold starts: the lazy-load rule saves more and wins */
    recs = recommend_one(rules, "pdfkit", 150, "0.15.0", 0.25);
    cr_expect_str_eq(rule_id_at(recs, 0), "large-module-sometimes-loaded");
    cr_expect_eq(savings_at(recs, 0), 120); /* 150 x 0.8 */
    json_decref(recs);
    /* seen_in unknown: only the plain rule */
    recs = recommend_one(rules, "pdfkit", 150, NULL, -1);
    cr_expect_str_eq(rule_id_at(recs, 0), "large-module");
    json_decref(recs);
    /* under the large-module threshold: nothing */
    recs = recommend_one(rules, "pdfkit", 99.4, NULL, 0.1);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    /* a module a specific rule matches never also gets the generic one */
    recs = recommend_one(rules, "moment", 400, "2.30.1", 0.25);
    cr_expect_eq(json_array_size(recs), 1);
    cr_expect_str_eq(rule_id_at(recs, 0), "moment");
    json_decref(recs);
    csa_rules_free(rules);
}

Test(rules_file, own_code_dominates)
{
    csa_rules *rules = load_real();
    json_t *modules = json_object();
    json_object_set_new(modules, "./src/handlers/payment", module_entry(60, NULL, 1));
    json_object_set_new(modules, "./src/lib/db", module_entry(50, NULL, 1));
    json_object_set_new(modules, "./src/lib/tiny", module_entry(4, NULL, 1)); /* under min, still counted */
    json_object_set_new(modules, "uuid", module_entry(40, "9.0.0", 1));
    json_t *context = context_for(154);
    json_t *recs = csa_rules_recommend(rules, modules, context);
    cr_assert_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    cr_expect_str_eq(json_string_value(json_object_get(rec, "module")), "(own code)");
    cr_expect_str_eq(rule_id_at(recs, 0), "own-code-dominates");
    cr_expect_eq(savings_at(recs, 0), 46); /* (60 + 50 + 4) x 0.4 = 45.6 */
    json_decref(recs);
    json_decref(context);

    /* exactly half is not "more than half" */
    context = context_for(228);
    recs = csa_rules_recommend(rules, modules, context);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    json_decref(context);

    /* without a module_load_p50_ms the sum of the modules' p50s is used (114 of 154) */
    context = json_object();
    recs = csa_rules_recommend(rules, modules, context);
    cr_expect_eq(json_array_size(recs), 1);
    json_decref(recs);
    json_decref(context);
    recs = csa_rules_recommend(rules, modules, NULL);
    cr_expect_eq(json_array_size(recs), 1);
    json_decref(recs);
    json_decref(modules);
    csa_rules_free(rules);
}

Test(rules_file, own_code_and_a_large_own_file)
{
    csa_rules *rules = load_real();
    json_t *modules = json_object();
    json_object_set_new(modules, "./src/report", module_entry(300, NULL, 0.5));
    json_t *context = context_for(300);
    json_t *recs = csa_rules_recommend(rules, modules, context);
    /* the file gets the lazy-load advice, and the function the own-code one */
    cr_assert_eq(json_array_size(recs), 2);
    cr_expect_str_eq(rule_id_at(recs, 0), "large-module-sometimes-loaded");
    cr_expect_eq(savings_at(recs, 0), 240);
    cr_expect_str_eq(rule_id_at(recs, 1), "own-code-dominates");
    cr_expect_eq(savings_at(recs, 1), 120);
    json_decref(recs);
    json_decref(context);
    json_decref(modules);
    csa_rules_free(rules);
}

Test(rules_file, ranking_and_output_shape)
{
    csa_rules *rules = load_real();
    json_t *modules = json_object();
    json_object_set_new(modules, "moment", module_entry(50, "2.29.4", 1));   /* 40 */
    json_object_set_new(modules, "axios", module_entry(100, "1.6.0", 1));    /* 90 */
    json_object_set_new(modules, "request", module_entry(100, NULL, 1));     /* 90, after axios by name */
    json_object_set_new(modules, "aws-sdk", module_entry(400, "2.1.0", 1));  /* 280 */
    json_object_set_new(modules, "left-pad", module_entry(30, "1.3.0", 1));  /* no rule */
    json_object_set_new(modules, "winston", module_entry(9.99, "3.0.0", 1)); /* under min_module_ms */
    json_t *context = context_for(689.99);
    json_t *recs = csa_rules_recommend(rules, modules, context);
    cr_assert_eq(json_array_size(recs), 4);
    const char *order[] = {"aws-sdk", "axios", "request", "moment"};
    const long long savings[] = {280, 90, 90, 40};
    for (size_t i = 0; i < 4; i++) {
        json_t *rec = json_array_get(recs, i);
        cr_expect_str_eq(json_string_value(json_object_get(rec, "module")), order[i]);
        cr_expect_eq(savings_at(recs, i), savings[i]);
        cr_expect_eq(json_object_size(rec), 6, "unexpected fields in a recommendation");
        for (const char *const *field =
                 (const char *const[]){"module", "rule_id", "issue", "suggestion", "evidence", NULL};
             *field; field++)
            cr_expect(json_is_string(json_object_get(rec, *field)), "%s is not a string", *field);
    }
    /* the inputs are borrowed, not changed */
    cr_expect_eq(json_object_size(modules), 6);
    cr_expect_eq(json_object_size(json_object_get(modules, "aws-sdk")), 6);
    json_decref(recs);
    json_decref(context);
    json_decref(modules);
    csa_rules_free(rules);
}

Test(rules_file, thresholds)
{
    csa_rules *rules = load_real();
    json_t *recs = recommend_one(rules, "moment", 9.999, NULL, 1);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    recs = recommend_one(rules, "moment", 10, NULL, 1);
    cr_expect_eq(json_array_size(recs), 1);
    cr_expect_eq(savings_at(recs, 0), 8);
    json_decref(recs);
    csa_rules_free(rules);
}

Test(rules_file, bad_inputs_give_empty_arrays)
{
    csa_rules *rules = load_real();
    json_t *recs = csa_rules_recommend(rules, NULL, NULL);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    json_t *not_object = json_array();
    recs = csa_rules_recommend(rules, not_object, NULL);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    json_decref(not_object);
    recs = csa_rules_recommend(NULL, NULL, NULL);
    cr_expect(json_is_array(recs));
    json_decref(recs);
    /* entries without a usable p50 are skipped */
    json_t *modules = json_pack("{s:{s:s}, s:{s:f}, s:{}, s:i}", "aws-sdk", "p50_ms", "fast", "moment", "p50_ms", -5.0,
                                "lodash", "axios", 3);
    recs = csa_rules_recommend(rules, modules, NULL);
    cr_expect_eq(json_array_size(recs), 0);
    json_decref(recs);
    json_decref(modules);
    csa_rules_free(rules);
}

/* ---- validation -------------------------------------------------------------------------- */

Test(rules_validation, minimal_file_loads)
{
    char err[512] = "";
    csa_rules *rules = load_text(
        TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 1, \"min_ms\": 20")), err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    cr_expect_eq(csa_rules_count(rules), 1);
    csa_rules_free(rules);
}

Test(rules_validation, unknown_rule_key)
{
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 0.5, \"foo\": 1")),
                    "rule 0 (\"a\"): unknown key \"foo\"");
}

Test(rules_validation, unknown_top_level_key)
{
    expect_rejected("{\"version\": 1, \"min_module_ms\": 10, \"extra\": true, \"rules\": []}", "unknown key \"extra\"");
}

Test(rules_validation, missing_issue)
{
    static const char second_rule_without_issue[] =
        "{\"id\": \"b\", \"match\": {\"module\": \"y\"}, "
        "\"suggestion\": \"s\", \"evidence\": \"e\", \"savings_share\": 0.5}";
    char text[1024];
    snprintf(text, sizeof text, TABLE("%s, %s"), PLAIN_RULE("a", "x"), second_rule_without_issue);
    expect_rejected(text, "rule 1 (\"b\"): issue is required");
}

Test(rules_validation, empty_and_mistyped_strings)
{
    expect_rejected(TABLE("{\"id\": \"a\", \"match\": {\"module\": \"x\"}, \"issue\": \"\", \"suggestion\": \"s\", "
                          "\"evidence\": \"e\", \"savings_share\": 0.5}"),
                    "rule 0 (\"a\"): issue must not be empty");
    expect_rejected(TABLE("{\"id\": \"a\", \"match\": {\"module\": \"x\"}, \"issue\": \"i\", \"suggestion\": 3, "
                          "\"evidence\": \"e\", \"savings_share\": 0.5}"),
                    "rule 0 (\"a\"): suggestion must be a string");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": \"half\"")),
                    "rule 0 (\"a\"): savings_share must be a number");
}

Test(rules_validation, savings_share_range)
{
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 0")),
                    "rule 0 (\"a\"): savings_share must be in (0, 1]");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 1.5")),
                    "rule 0 (\"a\"): savings_share must be in (0, 1]");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": -0.2")),
                    "savings_share must be in (0, 1]");
}

Test(rules_validation, duplicate_id)
{
    expect_rejected(TABLE(PLAIN_RULE("a", "x") ", " PLAIN_RULE("a", "y")),
                    "rule 1 (\"a\"): id \"a\" duplicates rule 0");
}

Test(rules_validation, bad_id)
{
    expect_rejected(TABLE(RULE("Not A Slug", "\"match\": {\"module\": \"x\"}, \"savings_share\": 0.5")),
                    "rule 0: id must be a slug");
    expect_rejected(TABLE("{\"match\": {\"module\": \"x\"}, \"issue\": \"i\", \"suggestion\": \"s\", \"evidence\": "
                          "\"e\", \"savings_share\": 0.5}"),
                    "rule 0: id is required");
}

Test(rules_validation, bad_range)
{
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"versions\": \">=3.x\", \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): versions: cannot parse \">=3.x\"");
    expect_rejected(
        TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"versions\": \"^3.0.0\", \"savings_share\": 0.5")),
        "rule 0 (\"a\"): versions: cannot parse");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"versions\": \"3.0.0 - 3.4.0\", "
                                    "\"savings_share\": 0.5")),
                    "rule 0 (\"a\"): versions: cannot parse");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"generic\": \"large_module\"}, \"versions\": \">=1.0.0\", "
                                    "\"savings_share\": 0.5")),
                    "rule 0 (\"a\"): versions is only allowed");
}

Test(rules_validation, bad_match)
{
    expect_rejected(TABLE(RULE("a", "\"match\": {\"name\": \"x\"}, \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): match: unknown key \"name\"");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\", \"pattern\": \"y*\"}, \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): match must have exactly one");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"generic\": \"huge\"}, \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): match.generic: unknown generic rule \"huge\"");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"pattern\": \"lodash\"}, \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): match.pattern must contain '*'");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"\"}, \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): match.module must be a non-empty string");
}

Test(rules_validation, thresholds_and_seen_in)
{
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 0.5, \"min_ms\": 5")),
                    "rule 0 (\"a\"): min_ms must be between min_module_ms");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"savings_share\": 0.5, \"seen_in_below\": 0")),
                    "rule 0 (\"a\"): seen_in_below must be in (0, 1]");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"generic\": \"own_code_dominates\"}, \"savings_share\": 0.5, "
                                    "\"seen_in_below\": 1")),
                    "rule 0 (\"a\"): seen_in_below does not apply");
    expect_rejected("{\"version\": 1, \"min_module_ms\": -1, \"rules\": []}", "min_module_ms must be between");
}

Test(rules_validation, top_level)
{
    expect_rejected("{\"version\": 2, \"min_module_ms\": 10, \"rules\": []}", "version must be 1");
    expect_rejected("{\"min_module_ms\": 10, \"rules\": []}", "version is required");
    expect_rejected("{\"version\": 1, \"min_module_ms\": 10, \"rules\": []}", "rules must hold between 1 and");
    expect_rejected("{\"version\": 1, \"min_module_ms\": 10, \"rules\": {}}", "rules must be an array");
    expect_rejected("[]", "the top level must be an object");
    expect_rejected(TABLE("42"), "rule 0: must be an object");
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

/* ---- matching ---------------------------------------------------------------------------- */

/* clang-format off */
static const char matching_table[] = TABLE(
    RULE("exact", "\"match\": {\"module\": \"left-pad\"}, \"savings_share\": 0.5") ", "
    RULE("scoped-glob", "\"match\": {\"pattern\": \"@scope/*\"}, \"savings_share\": 0.3") ", "
    RULE("infix-glob", "\"match\": {\"pattern\": \"@scope/client-*-v2\"}, \"savings_share\": 0.6") ", "
    RULE("ranged", "\"match\": {\"module\": \"old-lib\"}, \"versions\": \">=1.2.0 <2.0.0\", \"savings_share\": 0.9") ", "
    RULE("picky", "\"match\": {\"module\": \"picky\"}, \"min_ms\": 50, \"savings_share\": 0.5") ", "
    RULE("picky-big", "\"match\": {\"module\": \"picky-big\"}, \"min_ms\": 500, \"savings_share\": 0.5") ", "
    RULE("tie-first", "\"match\": {\"pattern\": \"tie-*\"}, \"savings_share\": 0.5") ", "
    RULE("tie-second", "\"match\": {\"pattern\": \"tie*\"}, \"savings_share\": 0.5") ", "
    RULE("catch-all", "\"match\": {\"generic\": \"large_module\"}, \"min_ms\": 100, \"savings_share\": 0.1"));
/* clang-format on */

static const char *matched_rule(const csa_rules *rules, const char *name, double p50, const char *version)
{
    static char id[80];
    json_t *recs = recommend_one(rules, name, p50, version, 1);
    const char *found = json_array_size(recs) > 0 ? rule_id_at(recs, 0) : "(none)";
    snprintf(id, sizeof id, "%s", found);
    json_decref(recs);
    return id;
}

Test(rules_matching, exact_and_glob)
{
    char err[512] = "";
    csa_rules *rules = load_text(matching_table, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    cr_expect_str_eq(matched_rule(rules, "left-pad", 20, NULL), "exact");
    cr_expect_str_eq(matched_rule(rules, "left-pad-extra", 20, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "left", 20, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "@scope/anything", 20, NULL), "scoped-glob");
    cr_expect_str_eq(matched_rule(rules, "@scope/deep/path", 20, NULL), "scoped-glob");
    cr_expect_str_eq(matched_rule(rules, "@scopeX/anything", 20, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "scope/anything", 20, NULL), "(none)");
    /* both globs match: the larger savings wins */
    cr_expect_str_eq(matched_rule(rules, "@scope/client-s3-v2", 20, NULL), "infix-glob");
    cr_expect_str_eq(matched_rule(rules, "@scope/client-s3-v3", 20, NULL), "scoped-glob");
    /* equal savings: the earlier rule wins */
    cr_expect_str_eq(matched_rule(rules, "tie-x", 20, NULL), "tie-first");
    cr_expect_str_eq(matched_rule(rules, "tiex", 20, NULL), "tie-second");
    csa_rules_free(rules);
}

Test(rules_matching, version_ranges)
{
    char err[512] = "";
    csa_rules *rules = load_text(matching_table, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "1.2.0"), "ranged");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "1.9.99"), "ranged");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "1.5.0-beta.3"), "ranged");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "1.1.9"), "(none)");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "2.0.0"), "(none)");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 20, "latest"), "(none)");
    /* outside the range a large module falls back to the generic rule */
    cr_expect_str_eq(matched_rule(rules, "old-lib", 200, "2.1.0"), "catch-all");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 200, NULL), "catch-all");
    cr_expect_str_eq(matched_rule(rules, "old-lib", 200, "1.3.0"), "ranged");
    csa_rules_free(rules);
}

Test(rules_matching, rule_threshold)
{
    char err[512] = "";
    csa_rules *rules = load_text(matching_table, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    cr_expect_str_eq(matched_rule(rules, "picky", 49.9, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "picky", 50, NULL), "picky");
    /* matched by a specific rule but under its threshold: no generic fallback either */
    cr_expect_str_eq(matched_rule(rules, "picky-big", 200, NULL), "(none)");
    cr_expect_str_eq(matched_rule(rules, "picky-big", 500, NULL), "picky-big");
    cr_expect_str_eq(matched_rule(rules, "left-pad", 9.5, NULL), "(none)");
    csa_rules_free(rules);
}

Test(rules_matching, savings_arithmetic)
{
    char err[512] = "";
    csa_rules *rules = load_text(matching_table, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    struct {
        double p50;
        long long expected;
    } cases[] = {{10, 5}, {13.1, 7}, {25, 13}, {24.9, 12}, {1234.4, 617}, {11, 6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *recs = recommend_one(rules, "left-pad", cases[i].p50, NULL, 1); /* share 0.5 */
        cr_expect_eq(savings_at(recs, 0), cases[i].expected, "p50 %g", cases[i].p50);
        json_decref(recs);
    }
    json_t *recs = recommend_one(rules, "old-lib", 33.3, "1.2.3", 1); /* share 0.9: 29.97 */
    cr_expect_eq(savings_at(recs, 0), 30);
    json_decref(recs);
    csa_rules_free(rules);
}

/* ---- semver ------------------------------------------------------------------------------ */

Test(rules_semver, comparators)
{
    cr_expect_eq(csa_rules_version_in_range("3.0.0", ">=3.0.0 <3.499.0"), 1);
    cr_expect_eq(csa_rules_version_in_range("3.498.9", ">=3.0.0 <3.499.0"), 1);
    cr_expect_eq(csa_rules_version_in_range("3.499.0", ">=3.0.0 <3.499.0"), 0);
    cr_expect_eq(csa_rules_version_in_range("2.1692.0", ">=3.0.0 <3.499.0"), 0);
    cr_expect_eq(csa_rules_version_in_range("3.10.0", ">3.9.99"), 1);
    cr_expect_eq(csa_rules_version_in_range("3.9.99", ">3.9.99"), 0);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", "<=1.2.3"), 1);
    cr_expect_eq(csa_rules_version_in_range("1.2.4", "<=1.2.3"), 0);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", "=1.2.3"), 1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", "=1.2"), 0);
    cr_expect_eq(csa_rules_version_in_range("1.2", "=1.2.0"), 1);
    cr_expect_eq(csa_rules_version_in_range("v4", ">=4.0.0  <5"), 1);
    cr_expect_eq(csa_rules_version_in_range("4.0.0-rc.1+build.5", "=4.0.0"), 1);
    cr_expect_eq(csa_rules_version_in_range("10.0.0", ">9.0.0"), 1); /* numeric, not string order */
}

Test(rules_semver, unparsable)
{
    cr_expect_eq(csa_rules_version_in_range("abc", ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range("", ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3.4", ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range("1..2", ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", ""), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", "1.2.3"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", "~1.2.3"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", ">= 1.2.3"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.2.3", ">=1 <2 >0 <=3 =1"), -1); /* more than four */
    cr_expect_eq(csa_rules_version_in_range("99999999999.0.0", ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range(NULL, ">=1.0.0"), -1);
    cr_expect_eq(csa_rules_version_in_range("1.0.0", NULL), -1);
}

/* A rule with "runtime" applies only to functions whose runtime starts with it. */
static const char *matched_for_runtime(const csa_rules *rules, const char *name, const char *runtime)
{
    static char id[80];
    json_t *modules = json_object();
    json_object_set_new(modules, name, module_entry(40, NULL, 1));
    json_t *context = context_for(40);
    json_object_set_new(context, "runtime", runtime ? json_string(runtime) : json_null());
    json_t *recs = csa_rules_recommend(rules, modules, context);
    snprintf(id, sizeof id, "%s", json_array_size(recs) > 0 ? rule_id_at(recs, 0) : "(none)");
    json_decref(recs);
    json_decref(context);
    json_decref(modules);
    return id;
}

Test(rules_matching, runtime)
{
    char err[512] = "";
    /* clang-format off */
    csa_rules *rules = load_text(
        TABLE(RULE("py-yaml", "\"match\": {\"module\": \"PyYAML\"}, \"runtime\": \"python\", \"savings_share\": 0.5") ", "
              RULE("any-yaml", "\"match\": {\"module\": \"yaml\"}, \"savings_share\": 0.5") ", "
              RULE("py-large", "\"match\": {\"generic\": \"large_module\"}, \"runtime\": \"python\", \"savings_share\": 0.1")),
        err, sizeof err);
    /* clang-format on */
    cr_assert_not_null(rules, "%s", err);
    cr_expect_str_eq(matched_for_runtime(rules, "PyYAML", "python3.12"), "py-yaml");
    cr_expect_str_eq(matched_for_runtime(rules, "PyYAML", "nodejs20.x"), "(none)");
    cr_expect_str_eq(matched_for_runtime(rules, "PyYAML", NULL), "(none)");
    cr_expect_str_eq(matched_for_runtime(rules, "yaml", "nodejs20.x"), "any-yaml");
    cr_expect_str_eq(matched_for_runtime(rules, "yaml", "python3.12"), "any-yaml");
    cr_expect_str_eq(matched_for_runtime(rules, "boto3", "python3.9"), "py-large");
    cr_expect_str_eq(matched_for_runtime(rules, "boto3", "nodejs22.x"), "(none)");
    csa_rules_free(rules);
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"runtime\": \"\", \"savings_share\": 0.5")),
                    "rule 0 (\"a\"): runtime must not be empty");
    expect_rejected(TABLE(RULE("a", "\"match\": {\"module\": \"x\"}, \"runtime\": 3, \"savings_share\": 0.5")),
                    "runtime");
}
