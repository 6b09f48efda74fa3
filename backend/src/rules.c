/*
 * rules.c: loads and validates rules/recommendations.json, and applies it to one function's module
 * breakdown (see rules.h for the contract and rules/README.md for the file format).
 *
 * The loaded document stays alive for the lifetime of the csa_rules object: every string a rule
 * holds points into it, so loading allocates only the rule array.
 */
#include "rules.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 1000       /* a table larger than this is a mistake, not a policy */
#define MAX_ID_LENGTH 64     /* ids are short slugs: [a-z0-9][a-z0-9-]* */
#define MAX_NAME_LENGTH 214  /* npm's limit on a package name, also used for patterns */
#define MAX_TEXT_LENGTH 2000 /* issue, suggestion, evidence */
#define MAX_COMPARATORS 4    /* ">=a <b" needs two; four leaves room, more is a typo */
#define MAX_VERSION_PART 999999999L
#define MAX_MODULE_MS 1e9    /* p50 above this (11 days) is corrupt data: ignored */
#define OWN_CODE_PREFIX "./" /* module_timings keys of the function's own files */
#define OWN_CODE_NAME "(own code)"
#define OWN_CODE_DOMINANT_SHARE 0.5 /* own files must take more than this share of module load */

typedef enum match_kind {
    MATCH_MODULE,             /* exact package name */
    MATCH_PATTERN,            /* glob, '*' matches any run of characters (including '/') */
    MATCH_LARGE_MODULE,       /* generic: any module no specific rule matched */
    MATCH_OWN_CODE_DOMINATES, /* generic: the function's own files, summed */
} match_kind;

typedef enum comparator_op { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE } comparator_op;

typedef struct semver {
    long major, minor, patch;
} semver;

typedef struct comparator {
    comparator_op op;
    semver version;
} comparator;

typedef struct rule {
    const char *id; /* unique slug */
    match_kind kind;
    const char *match_value; /* package name or glob; NULL for generic rules */
    size_t comparator_count; /* 0: no "versions", the rule applies to any version */
    comparator comparators[MAX_COMPARATORS];
    const char *issue;
    const char *suggestion;
    const char *evidence;
    double savings_share; /* (0, 1] */
    double min_ms;        /* effective threshold: the rule's min_ms or the table's */
    double seen_in_below; /* applies only when seen_in < this; 0 when not set */
    const char *runtime;  /* applies only to functions whose runtime starts with this ("python",
                           * "nodejs"); NULL: any runtime */
} rule;

struct csa_rules {
    json_t *document; /* the parsed file, owned; all rule strings point into it */
    double min_module_ms;
    size_t count;
    rule *rules;
};

/* ---- the file format, declared once ------------------------------------------------------ */

typedef enum field_type { FIELD_STRING, FIELD_NUMBER, FIELD_INTEGER, FIELD_OBJECT, FIELD_ARRAY } field_type;

typedef struct field_spec {
    const char *name;
    field_type type;
    bool required;
} field_spec;

static const field_spec top_level_fields[] = {
    {"version", FIELD_INTEGER, true},
    {"min_module_ms", FIELD_NUMBER, true},
    {"rules", FIELD_ARRAY, true},
};

static const field_spec rule_fields[] = {
    {"id", FIELD_STRING, true},
    {"match", FIELD_OBJECT, true},
    {"versions", FIELD_STRING, false},
    {"issue", FIELD_STRING, true},
    {"suggestion", FIELD_STRING, true},
    {"evidence", FIELD_STRING, true},
    {"savings_share", FIELD_NUMBER, true},
    {"min_ms", FIELD_NUMBER, false},
    {"seen_in_below", FIELD_NUMBER, false},
    {"runtime", FIELD_STRING, false},
};

static const struct {
    const char *name;
    match_kind kind;
} generic_matches[] = {
    {"large_module", MATCH_LARGE_MODULE},
    {"own_code_dominates", MATCH_OWN_CODE_DOMINATES},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- semver ------------------------------------------------------------------------------- */

/* Parses one number of at most nine digits; advances *p. */
static bool parse_version_part(const char **p, long *out)
{
    const char *s = *p;
    long value = 0;
    int digits = 0;
    while (isdigit((unsigned char)*s)) {
        if (++digits > 9)
            return false;
        value = value * 10 + (*s - '0');
        s++;
    }
    if (digits == 0 || value > MAX_VERSION_PART)
        return false;
    *out = value;
    *p = s;
    return true;
}

/* Parses major[.minor[.patch]] with an optional leading 'v' and an ignored "-pre"/"+build" tail,
 * stopping at `end` (exclusive) or at the string's end. */
static bool parse_semver(const char *s, const char *end, semver *out)
{
    if (!end)
        end = s + strlen(s);
    if (s < end && (*s == 'v' || *s == 'V'))
        s++;
    semver v = {0, 0, 0};
    long *parts[] = {&v.major, &v.minor, &v.patch};
    for (size_t i = 0; i < COUNT_OF(parts); i++) {
        if (i > 0) {
            if (s >= end || *s != '.')
                break;
            s++;
        }
        if (!parse_version_part(&s, parts[i]) || s > end)
            return false;
    }
    if (s < end && *s != '-' && *s != '+')
        return false;
    *out = v;
    return true;
}

static int compare_semver(const semver *a, const semver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}

/* Parses a range into out[]; returns the comparator count, or 0 if it does not parse. */
static size_t parse_range(const char *range, comparator *out, size_t capacity)
{
    size_t count = 0;
    const char *s = range;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        if (count == capacity)
            return 0;
        comparator c;
        if (s[0] == '>' && s[1] == '=') {
            c.op = OP_GE;
            s += 2;
        } else if (s[0] == '<' && s[1] == '=') {
            c.op = OP_LE;
            s += 2;
        } else if (s[0] == '>') {
            c.op = OP_GT;
            s++;
        } else if (s[0] == '<') {
            c.op = OP_LT;
            s++;
        } else if (s[0] == '=') {
            c.op = OP_EQ;
            s++;
        } else {
            return 0;
        }
        const char *end = strchr(s, ' ');
        if (!end)
            end = s + strlen(s);
        if (end == s || !parse_semver(s, end, &c.version))
            return 0;
        out[count++] = c;
        s = end;
    }
    return count;
}

static bool satisfies(const semver *v, const comparator *comparators, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int cmp = compare_semver(v, &comparators[i].version);
        bool ok = false;
        switch (comparators[i].op) {
        case OP_EQ: ok = cmp == 0; break;
        case OP_LT: ok = cmp < 0; break;
        case OP_LE: ok = cmp <= 0; break;
        case OP_GT: ok = cmp > 0; break;
        case OP_GE: ok = cmp >= 0; break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/*
 * See rules.h. Returns 1 if version satisfies every comparator of range, 0 if not, -1 if either
 * string is NULL or does not parse.
 */
int csa_rules_version_in_range(const char *version, const char *range)
{
    comparator comparators[MAX_COMPARATORS];
    semver v;
    if (!version || !range)
        return -1;
    size_t count = parse_range(range, comparators, MAX_COMPARATORS);
    if (count == 0 || !parse_semver(version, NULL, &v))
        return -1;
    return satisfies(&v, comparators, count) ? 1 : 0;
}

/* ---- glob --------------------------------------------------------------------------------- */

/* '*' matches any run of characters; every other character matches itself. Iterative with one
 * backtrack point, so linear-ish in practice and never recursive. */
static bool glob_match(const char *pattern, const char *name)
{
    const char *star = NULL, *resume = NULL;
    while (*name) {
        if (*pattern == '*') {
            star = pattern++;
            resume = name;
        } else if (*pattern == *name) {
            pattern++;
            name++;
        } else if (star) {
            pattern = star + 1;
            name = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Writes "<path>: rule <index> ("<id>"): <message>" (the id part only when known) into err. */
__attribute__((format(printf, 6, 7))) static void rule_error(char *err, size_t err_size, const char *path, size_t index,
                                                             const char *id, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (!err || err_size == 0)
        return;
    if (id)
        snprintf(err, err_size, "%s: rule %zu (\"%s\"): %s", path, index, id, message);
    else
        snprintf(err, err_size, "%s: rule %zu: %s", path, index, message);
}

__attribute__((format(printf, 4, 5))) static void file_error(char *err, size_t err_size, const char *path,
                                                             const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (err && err_size > 0)
        snprintf(err, err_size, "%s: %s", path, message);
}

static const char *field_type_name(field_type type)
{
    switch (type) {
    case FIELD_STRING: return "a string";
    case FIELD_NUMBER: return "a number";
    case FIELD_INTEGER: return "an integer";
    case FIELD_OBJECT: return "an object";
    case FIELD_ARRAY: return "an array";
    }
    return "?";
}

static bool has_type(json_t *value, field_type type)
{
    switch (type) {
    case FIELD_STRING: return json_is_string(value);
    case FIELD_NUMBER: return json_is_number(value);
    case FIELD_INTEGER: return json_is_integer(value);
    case FIELD_OBJECT: return json_is_object(value);
    case FIELD_ARRAY: return json_is_array(value);
    }
    return false;
}

/* Checks obj against a field table: no unknown keys, required ones present, types right, strings
 * non-empty. On failure writes "<what>" into message and returns false. */
static bool check_fields(json_t *obj, const field_spec *fields, size_t field_count, char *message, size_t message_size)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool known = false;
        for (size_t i = 0; i < field_count && !known; i++)
            known = strcmp(fields[i].name, key) == 0;
        if (!known) {
            snprintf(message, message_size, "unknown key \"%.64s\"", key);
            return false;
        }
    }
    for (size_t i = 0; i < field_count; i++) {
        value = json_object_get(obj, fields[i].name);
        if (!value) {
            if (fields[i].required) {
                snprintf(message, message_size, "%s is required", fields[i].name);
                return false;
            }
            continue;
        }
        if (!has_type(value, fields[i].type)) {
            snprintf(message, message_size, "%s must be %s", fields[i].name, field_type_name(fields[i].type));
            return false;
        }
        if (fields[i].type == FIELD_STRING && json_string_length(value) == 0) {
            snprintf(message, message_size, "%s must not be empty", fields[i].name);
            return false;
        }
        if (fields[i].type == FIELD_NUMBER && !isfinite(json_number_value(value))) {
            snprintf(message, message_size, "%s must be a finite number", fields[i].name);
            return false;
        }
    }
    return true;
}

static bool valid_id(const char *id)
{
    size_t length = strlen(id);
    if (length == 0 || length > MAX_ID_LENGTH || !(islower((unsigned char)id[0]) || isdigit((unsigned char)id[0])))
        return false;
    for (const char *c = id; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-'))
            return false;
    return true;
}

/* Parses and checks one "match" object into r. */
static bool load_match(json_t *match, rule *r, char *message, size_t message_size)
{
    if (json_object_size(match) != 1) {
        snprintf(message, message_size, "match must have exactly one of \"module\", \"pattern\", \"generic\"");
        return false;
    }
    const char *key = json_object_iter_key(json_object_iter(match));
    json_t *value = json_object_iter_value(json_object_iter(match));
    if (strcmp(key, "module") != 0 && strcmp(key, "pattern") != 0 && strcmp(key, "generic") != 0) {
        snprintf(message, message_size, "match: unknown key \"%.64s\" (expected module, pattern or generic)", key);
        return false;
    }
    if (!json_is_string(value) || json_string_length(value) == 0) {
        snprintf(message, message_size, "match.%s must be a non-empty string", key);
        return false;
    }
    const char *text = json_string_value(value);
    if (strcmp(key, "generic") == 0) {
        for (size_t i = 0; i < COUNT_OF(generic_matches); i++) {
            if (strcmp(generic_matches[i].name, text) == 0) {
                r->kind = generic_matches[i].kind;
                r->match_value = NULL;
                return true;
            }
        }
        snprintf(message, message_size,
                 "match.generic: unknown generic rule \"%.64s\" (expected large_module or "
                 "own_code_dominates)",
                 text);
        return false;
    }
    if (json_string_length(value) > MAX_NAME_LENGTH || strlen(text) != json_string_length(value)) {
        snprintf(message, message_size, "match.%s is too long or contains a NUL", key);
        return false;
    }
    if (strcmp(key, "pattern") == 0 && !strchr(text, '*')) {
        snprintf(message, message_size, "match.pattern must contain '*' (use match.module for an exact name)");
        return false;
    }
    r->kind = strcmp(key, "module") == 0 ? MATCH_MODULE : MATCH_PATTERN;
    r->match_value = text;
    return true;
}

/* Parses and checks rules[index] into r. */
static bool load_rule(json_t *item, size_t index, const csa_rules *table, rule *r, const char *path, char *err,
                      size_t err_size)
{
    char message[400];
    if (!json_is_object(item)) {
        rule_error(err, err_size, path, index, NULL, "must be an object");
        return false;
    }
    json_t *id_value = json_object_get(item, "id");
    const char *id = json_is_string(id_value) && json_string_length(id_value) > 0 ? json_string_value(id_value) : NULL;
    if (id && (strlen(id) != json_string_length(id_value) || !valid_id(id))) {
        rule_error(err, err_size, path, index, NULL, "id must be a slug of at most %d characters ([a-z0-9-])",
                   MAX_ID_LENGTH);
        return false;
    }
    if (!check_fields(item, rule_fields, COUNT_OF(rule_fields), message, sizeof message)) {
        rule_error(err, err_size, path, index, id, "%s", message);
        return false;
    }
    memset(r, 0, sizeof *r);
    r->id = id;
    for (size_t i = 0; i < index; i++) {
        if (strcmp(table->rules[i].id, id) == 0) {
            rule_error(err, err_size, path, index, id, "id \"%s\" duplicates rule %zu", id, i);
            return false;
        }
    }
    if (!load_match(json_object_get(item, "match"), r, message, sizeof message)) {
        rule_error(err, err_size, path, index, id, "%s", message);
        return false;
    }
    static const char *const texts[] = {"issue", "suggestion", "evidence"};
    const char **targets[] = {&r->issue, &r->suggestion, &r->evidence};
    for (size_t i = 0; i < COUNT_OF(texts); i++) {
        json_t *value = json_object_get(item, texts[i]);
        if (json_string_length(value) > MAX_TEXT_LENGTH) {
            rule_error(err, err_size, path, index, id, "%s is longer than %d characters", texts[i], MAX_TEXT_LENGTH);
            return false;
        }
        *targets[i] = json_string_value(value);
    }
    r->savings_share = json_number_value(json_object_get(item, "savings_share"));
    if (!(r->savings_share > 0 && r->savings_share <= 1)) {
        rule_error(err, err_size, path, index, id, "savings_share must be in (0, 1]");
        return false;
    }
    json_t *versions = json_object_get(item, "versions");
    if (versions) {
        if (r->kind == MATCH_LARGE_MODULE || r->kind == MATCH_OWN_CODE_DOMINATES) {
            rule_error(err, err_size, path, index, id, "versions is only allowed with match.module or match.pattern");
            return false;
        }
        r->comparator_count = parse_range(json_string_value(versions), r->comparators, MAX_COMPARATORS);
        if (r->comparator_count == 0) {
            rule_error(err, err_size, path, index, id,
                       "versions: cannot parse \"%.64s\" (expected up to %d space-separated comparators such as "
                       "\">=3.0.0 <3.499.0\")",
                       json_string_value(versions), MAX_COMPARATORS);
            return false;
        }
    }
    r->min_ms = table->min_module_ms;
    json_t *min_ms = json_object_get(item, "min_ms");
    if (min_ms) {
        r->min_ms = json_number_value(min_ms);
        if (r->min_ms < table->min_module_ms || r->min_ms > MAX_MODULE_MS) {
            rule_error(err, err_size, path, index, id, "min_ms must be between min_module_ms (%g) and %g",
                       table->min_module_ms, MAX_MODULE_MS);
            return false;
        }
    }
    json_t *seen_in_below = json_object_get(item, "seen_in_below");
    if (seen_in_below) {
        if (r->kind == MATCH_OWN_CODE_DOMINATES) {
            rule_error(err, err_size, path, index, id, "seen_in_below does not apply to own_code_dominates");
            return false;
        }
        r->seen_in_below = json_number_value(seen_in_below);
        if (!(r->seen_in_below > 0 && r->seen_in_below <= 1)) {
            rule_error(err, err_size, path, index, id, "seen_in_below must be in (0, 1]");
            return false;
        }
    }
    json_t *runtime = json_object_get(item, "runtime");
    if (runtime) {
        r->runtime = json_string_value(runtime);
        if (r->runtime[0] == '\0' || strlen(r->runtime) > 50) {
            rule_error(err, err_size, path, index, id, "runtime must be 1 to 50 characters (e.g. \"python\")");
            return false;
        }
    }
    return true;
}

/*
 * See rules.h. Reads and validates the whole file; the returned table owns the parsed document and
 * is freed with csa_rules_free. On failure returns NULL and writes one line into err.
 */
csa_rules *csa_rules_load(const char *path, char *err, size_t err_size)
{
    char message[400];
    json_error_t jerr;
    csa_rules *table = NULL;
    if (err && err_size > 0)
        err[0] = '\0';
    if (!path) {
        file_error(err, err_size, "(null)", "no rule file given");
        return NULL;
    }
    json_t *document = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!document) {
        if (jerr.line > 0)
            file_error(err, err_size, path, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        else
            file_error(err, err_size, path, "%s", jerr.text);
        return NULL;
    }
    if (!json_is_object(document)) {
        file_error(err, err_size, path, "the top level must be an object");
        goto fail;
    }
    if (!check_fields(document, top_level_fields, COUNT_OF(top_level_fields), message, sizeof message)) {
        file_error(err, err_size, path, "%s", message);
        goto fail;
    }
    if (json_integer_value(json_object_get(document, "version")) != 1) {
        file_error(err, err_size, path, "version must be 1");
        goto fail;
    }
    double min_module_ms = json_number_value(json_object_get(document, "min_module_ms"));
    if (min_module_ms < 0 || min_module_ms > MAX_MODULE_MS) {
        file_error(err, err_size, path, "min_module_ms must be between 0 and %g", MAX_MODULE_MS);
        goto fail;
    }
    json_t *items = json_object_get(document, "rules");
    size_t count = json_array_size(items);
    if (count == 0 || count > MAX_RULES) {
        file_error(err, err_size, path, "rules must hold between 1 and %d rules", MAX_RULES);
        goto fail;
    }
    table = calloc(1, sizeof *table);
    if (!table || !(table->rules = calloc(count, sizeof *table->rules))) {
        file_error(err, err_size, path, "out of memory");
        goto fail;
    }
    table->document = document;
    table->min_module_ms = min_module_ms;
    for (size_t i = 0; i < count; i++) {
        if (!load_rule(json_array_get(items, i), i, table, &table->rules[i], path, err, err_size))
            goto fail;
        table->count = i + 1;
    }
    return table;

fail:
    if (table) {
        free(table->rules);
        free(table);
    }
    json_decref(document);
    return NULL;
}

/* See rules.h. Frees the table and its document; NULL is allowed. */
void csa_rules_free(csa_rules *rules)
{
    if (!rules)
        return;
    json_decref(rules->document);
    free(rules->rules);
    free(rules);
}

/* See rules.h. The number of rules in a loaded table (0 for NULL). */
size_t csa_rules_count(const csa_rules *rules) { return rules ? rules->count : 0; }

/* ---- applying ----------------------------------------------------------------------------- */

typedef struct candidate {
    const char *module;  /* borrowed from the modules object, or OWN_CODE_NAME */
    const rule *matched; /* the rule with the largest savings for this module */
    long long savings_ms;
} candidate;

/* A module's p50 in ms, or -1 when absent, not a number, negative or implausible. */
static double module_p50(json_t *entry)
{
    json_t *p50 = json_object_get(entry, "p50_ms");
    if (!json_is_number(p50))
        return -1;
    double value = json_number_value(p50);
    return isfinite(value) && value >= 0 && value <= MAX_MODULE_MS ? value : -1;
}

static bool is_own_code(const char *name) { return strncmp(name, OWN_CODE_PREFIX, strlen(OWN_CODE_PREFIX)) == 0; }

/* Whether a specific rule (module or pattern) matches this module name and version. */
static bool specific_rule_matches(const rule *r, const char *name, const char *version)
{
    bool name_matches = r->kind == MATCH_MODULE ? strcmp(r->match_value, name) == 0 : glob_match(r->match_value, name);
    if (!name_matches)
        return false;
    if (r->comparator_count == 0)
        return true;
    semver v;
    return version && parse_semver(version, NULL, &v) && satisfies(&v, r->comparators, r->comparator_count);
}

/* Whether the rule's seen_in condition holds (always, when the rule has none). */
static bool seen_in_condition_holds(const rule *r, json_t *entry)
{
    if (r->seen_in_below <= 0)
        return true;
    json_t *seen_in = json_object_get(entry, "seen_in");
    return json_is_number(seen_in) && json_number_value(seen_in) < r->seen_in_below;
}

/* Whether the rule applies to a function of this runtime (NULL: unknown; then only rules without
 * a runtime apply). */
static bool runtime_applies(const rule *r, const char *runtime)
{
    if (!r->runtime)
        return true;
    return runtime && strncmp(runtime, r->runtime, strlen(r->runtime)) == 0;
}

/* Offers rule r for a module of the given time; keeps *best the one with the largest savings
 * (the earlier rule on a tie). */
static void offer(const rule *r, double ms, const rule **best, long long *best_savings)
{
    if (ms < r->min_ms)
        return;
    long long savings = llround(ms * r->savings_share);
    if (!*best || savings > *best_savings) {
        *best = r;
        *best_savings = savings;
    }
}

static int compare_candidates(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->savings_ms != y->savings_ms)
        return x->savings_ms > y->savings_ms ? -1 : 1;
    int by_name = strcmp(x->module, y->module);
    return by_name != 0 ? by_name : strcmp(x->matched->id, y->matched->id);
}

/* The best rule for one module, or NULL. */
static const rule *best_rule_for_module(const csa_rules *rules, const char *name, json_t *entry, double p50,
                                        const char *runtime, long long *savings)
{
    json_t *version_value = json_object_get(entry, "version");
    const char *version = json_is_string(version_value) ? json_string_value(version_value) : NULL;
    const rule *best = NULL;
    bool matched_specific = false;
    for (size_t i = 0; i < rules->count; i++) {
        const rule *r = &rules->rules[i];
        if ((r->kind == MATCH_MODULE || r->kind == MATCH_PATTERN) && runtime_applies(r, runtime) &&
            specific_rule_matches(r, name, version) && seen_in_condition_holds(r, entry)) {
            matched_specific = true;
            offer(r, p50, &best, savings);
        }
    }
    if (matched_specific)
        return best; /* a module a specific rule knows never gets the generic advice */
    for (size_t i = 0; i < rules->count; i++) {
        const rule *r = &rules->rules[i];
        if (r->kind == MATCH_LARGE_MODULE && runtime_applies(r, runtime) && seen_in_condition_holds(r, entry))
            offer(r, p50, &best, savings);
    }
    return best;
}

static json_t *candidate_to_json(const candidate *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "module", c->module, "rule_id", c->matched->id, "issue",
                     c->matched->issue, "suggestion", c->matched->suggestion, "evidence", c->matched->evidence,
                     "potential_savings_ms", (json_int_t)c->savings_ms);
}

/*
 * See rules.h. Returns a new array (the caller json_decrefs it); an empty array when rules or
 * modules are missing or of the wrong type; NULL only when out of memory. Does not modify modules
 * or context.
 */
json_t *csa_rules_recommend(const csa_rules *rules, json_t *modules, json_t *context)
{
    json_t *result = json_array();
    if (!result || !rules || !json_is_object(modules))
        return result;

    candidate *candidates = calloc(json_object_size(modules) + 1, sizeof *candidates);
    if (!candidates) {
        json_decref(result);
        return NULL;
    }
    size_t count = 0;
    double own_code_ms = 0, all_modules_ms = 0;
    json_t *runtime_value = json_object_get(context, "runtime");
    const char *runtime = json_is_string(runtime_value) ? json_string_value(runtime_value) : NULL;
    const char *name;
    json_t *entry;
    json_object_foreach(modules, name, entry) {
        double p50 = module_p50(entry);
        if (p50 < 0)
            continue;
        all_modules_ms += p50;
        if (is_own_code(name))
            own_code_ms += p50;
        if (p50 < rules->min_module_ms)
            continue;
        long long savings = 0;
        const rule *best = best_rule_for_module(rules, name, entry, p50, runtime, &savings);
        if (best)
            candidates[count++] = (candidate){name, best, savings};
    }

    /* The function's own files, summed, against the module-load time (the context's figure when it
     * has one, else the sum over the modules given). */
    json_t *module_load = json_object_get(context, "module_load_p50_ms");
    double module_load_ms = json_is_number(module_load) && json_number_value(module_load) > 0
                                ? json_number_value(module_load)
                                : all_modules_ms;
    if (own_code_ms > 0 && own_code_ms >= rules->min_module_ms &&
        own_code_ms > OWN_CODE_DOMINANT_SHARE * module_load_ms) {
        const rule *best = NULL;
        long long savings = 0;
        for (size_t i = 0; i < rules->count; i++)
            if (rules->rules[i].kind == MATCH_OWN_CODE_DOMINATES && runtime_applies(&rules->rules[i], runtime))
                offer(&rules->rules[i], own_code_ms, &best, &savings);
        if (best)
            candidates[count++] = (candidate){OWN_CODE_NAME, best, savings};
    }

    qsort(candidates, count, sizeof *candidates, compare_candidates);
    for (size_t i = 0; i < count; i++) {
        if (json_array_append_new(result, candidate_to_json(&candidates[i])) != 0) {
            json_decref(result);
            result = NULL;
            break;
        }
    }
    free(candidates);
    return result;
}
