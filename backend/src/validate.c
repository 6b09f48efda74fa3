/* validate.c: see validate.h. */
#include "validate.h"

#include "coldstarts.h"
#include "cursor.h"
#include "deployments.h"
#include "keys.h"
#include "projects.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MSG_SIZE 192                  /* longest message we build is about 90 bytes */
#define EPOCH_2000 946684800.0            /* 2000-01-01T00:00:00Z: older timestamps are refused */
#define MAX_FUTURE_S 86400.0              /* timestamps up to 24 h ahead are accepted (clock skew) */
#define MAX_OFFSET_MINUTES (15 * 60 + 59) /* PostgreSQL refuses zone offsets beyond +-15:59 */

/* ---- the rule table ------------------------------------------------------------------------ */

typedef enum field_kind {
    KIND_STRING,    /* string, code point length in [min, max], character class in flags */
    KIND_TIMESTAMP, /* RFC 3339 string with a zone, 2000-01-01 <= t <= now + 24 h */
    KIND_BOOL,      /* JSON true or false only */
    KIND_INTEGER,   /* JSON integer in [min, max] */
    KIND_NUMBER,    /* JSON integer or real, finite, in [min, max] */
    KIND_LITERAL,   /* one of the strings in `literals` */
    KIND_TIMINGS,   /* object of at most `max` entries: string key -> number in [0, max duration] */
    KIND_TREE,      /* object or array of at most `max` bytes as compact JSON, taken as is */
} field_kind;

enum {
    STR_NO_CONTROL = 1 << 0, /* no U+0000-U+001F, U+007F-U+009F */
    STR_REGION = 1 << 1,     /* only [a-z0-9-] */
    STR_TOKEN = 1 << 2,      /* only printable ASCII without spaces (U+0021-U+007E): identifiers */
};

typedef struct field_rule {
    const char *name; /* JSON key, and the key in the normalised object */
    field_kind kind;
    int required;                /* missing or null is an error */
    long long min, max;          /* bounds: value (integer/number), code points (string), entries (timings) */
    unsigned flags;              /* STR_* for strings */
    const char *const *literals; /* KIND_LITERAL: NULL-terminated list of allowed values */
    const char *literal_msg;     /* KIND_LITERAL: the message when the value is not one of them */
} field_rule;

static const char *const ARCHITECTURES[] = {"x86_64", "arm64", NULL};
static const char *const START_KINDS[] = {"cold", "warm", "proactive", "provisioned", NULL};
static const char *const MODULE_SOURCES[] = {"hooks", "esbuild-plugin", "bundled-no-plugin", NULL};

/* Order = the order of the keys in the normalised object and of the errors. */
static const field_rule RULES[] = {
    {"function_name", KIND_STRING, 1, 1, 255, STR_NO_CONTROL, NULL, NULL},
    {"invocation_id", KIND_STRING, 0, 1, CSA_MAX_INVOCATION_ID_CHARS, STR_NO_CONTROL, NULL, NULL},
    {"request_id", KIND_STRING, 0, 1, 255, STR_NO_CONTROL, NULL, NULL},
    {"timestamp", KIND_TIMESTAMP, 1, 0, 0, 0, NULL, NULL},
    {"cold_start", KIND_BOOL, 1, 0, 0, 0, NULL, NULL},
    {"init_duration_ms", KIND_INTEGER, 0, 0, CSA_MAX_DURATION_MS, 0, NULL, NULL},
    /* required unless "complete": false (checked after the loop) */
    {"execution_duration_ms", KIND_INTEGER, 0, 0, CSA_MAX_DURATION_MS, 0, NULL, NULL},
    {"billed_duration_ms", KIND_INTEGER, 0, 0, CSA_MAX_DURATION_MS, 0, NULL, NULL},
    {"memory_used_mb", KIND_INTEGER, 0, 0, CSA_MAX_MEMORY_MB, 0, NULL, NULL},
    {"memory_allocated_mb", KIND_INTEGER, 0, CSA_MIN_MEMORY_MB, CSA_MAX_MEMORY_MB, 0, NULL, NULL},
    {"module_timings", KIND_TIMINGS, 0, 0, CSA_MAX_MODULE_TIMINGS, 0, NULL, NULL},
    /* runtime_version gets the control character rule too: it is shown in dashboards */
    {"runtime_version", KIND_STRING, 0, 1, 50, STR_NO_CONTROL, NULL, NULL},
    {"architecture", KIND_LITERAL, 0, 0, 0, 0, ARCHITECTURES, "Input should be 'x86_64' or 'arm64'"},
    {"region", KIND_STRING, 0, 1, 50, STR_REGION, NULL, NULL},
    {"init_type", KIND_STRING, 0, 1, 50, STR_NO_CONTROL, NULL, NULL},
    {"start_kind", KIND_LITERAL, 0, 0, 0, 0, START_KINDS,
     "Input should be 'cold', 'warm', 'proactive' or 'provisioned'"},
    {"sdk_version", KIND_STRING, 0, 1, 50, STR_NO_CONTROL, NULL, NULL},
    {"sdk_overhead_ms", KIND_NUMBER, 0, 0, CSA_MAX_DURATION_MS, 0, NULL, NULL},
    {"module_tree", KIND_TREE, 0, 0, CSA_MAX_MODULE_TREE_BYTES, 0, NULL, NULL},
    {"module_source", KIND_LITERAL, 0, 0, 0, 0, MODULE_SOURCES,
     "Input should be 'hooks', 'esbuild-plugin' or 'bundled-no-plugin'"},
    /* false: a cold-start record handed off at the start of its invocation; the full copy (same
     * function, invocation_id and timestamp) completes the stored row later */
    {"complete", KIND_BOOL, 0, 0, 0, 0, NULL, NULL},
    /* the deployment identity (DESIGN.md): Lambda's version ("$LATEST", "12") and the SDK's
     * opaque fingerprint of the code; a function's deployments are told apart by code_id, else
     * by function_version */
    {"function_version", KIND_STRING, 0, 1, CSA_MAX_IDENTITY_CHARS, STR_TOKEN, NULL, NULL},
    {"code_id", KIND_STRING, 0, 1, CSA_MAX_IDENTITY_CHARS, STR_TOKEN, NULL, NULL},
};

#define NRULES (sizeof RULES / sizeof RULES[0])

/* json_dump_callback sink that only counts, and stops once past the largest cap in RULES. */
static int count_bytes(const char *buffer, size_t size, void *data)
{
    size_t *total = data;
    (void)buffer;
    *total += size;
    return *total > CSA_MAX_MODULE_TREE_BYTES ? -1 : 0;
}

/* ---- error collection ---------------------------------------------------------------------- */

typedef struct err_ctx {
    json_t *prefix; /* borrowed loc prefix (array or NULL) */
    json_t *errors; /* borrowed array errors are appended to */
    size_t count;   /* errors appended by this validation */
} err_ctx;

/* Appends {"loc": prefix + [field] (+ [key]), "msg", "type"}. field and key may be NULL. */
__attribute__((format(printf, 5, 6))) static void add_error(err_ctx *ec, const char *field, const char *key,
                                                            const char *type, const char *fmt, ...)
{
    char msg[ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    json_t *loc = json_array();
    if (json_is_array(ec->prefix)) {
        size_t i;
        json_t *part;
        json_array_foreach(ec->prefix, i, part)
            json_array_append(loc, part);
    }
    if (field)
        json_array_append_new(loc, json_string(field));
    if (key)
        json_array_append_new(loc, json_string(key)); /* keys come from a parsed object: valid UTF-8 */
    json_array_append_new(ec->errors, json_pack("{s:o, s:s, s:s}", "loc", loc, "msg", msg, "type", type));
    ec->count++;
}

/* ---- strings ------------------------------------------------------------------------------- */

/*
 * Decodes UTF-8 s[0..len) counting code points; reports whether a control character (C0, DEL, C1)
 * or, with STR_REGION, a character outside [a-z0-9-] occurs. Returns -1 on invalid UTF-8 (jansson
 * validates parsed input, but a record may be built by hand with json_stringn_nocheck).
 */
static long long utf8_scan(const char *s, size_t len, unsigned flags, int *bad_char)
{
    const unsigned char *p = (const unsigned char *)s;
    long long count = 0;
    size_t i = 0;
    *bad_char = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        unsigned char c = p[i];
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F;
            n = 2;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F;
            n = 3;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07;
            n = 4;
        } else {
            return -1;
        }
        if (i + n > len)
            return -1;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        if ((flags & STR_NO_CONTROL) && (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F)))
            *bad_char = 1;
        if ((flags & STR_REGION) && !((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || cp == '-'))
            *bad_char = 1;
        if ((flags & STR_TOKEN) && (cp < 0x21 || cp > 0x7E))
            *bad_char = 1;
        count++;
        i += n;
    }
    return count;
}

/* Checks a string value against length bounds and character class; returns 0 or -1 (error added). */
static int check_string(err_ctx *ec, const char *field, const char *key, json_t *v, long long min, long long max,
                        unsigned flags)
{
    if (!json_is_string(v)) {
        add_error(ec, field, key, "string_type", "Input should be a valid string");
        return -1;
    }
    int bad_char;
    long long n = utf8_scan(json_string_value(v), json_string_length(v), flags, &bad_char);
    if (n < 0) {
        add_error(ec, field, key, "string_unicode",
                  "Input should be a valid string, unable to parse raw data as a unicode string");
        return -1;
    }
    if (n < min) {
        add_error(ec, field, key, "string_too_short", "String should have at least %lld character%s", min,
                  min == 1 ? "" : "s");
        return -1;
    }
    if (n > max) {
        add_error(ec, field, key, "string_too_long", "String should have at most %lld characters", max);
        return -1;
    }
    if (bad_char) {
        if (flags & STR_REGION)
            add_error(ec, field, key, "string_pattern_mismatch", "String should match pattern '^[a-z0-9-]+$'");
        else if (flags & STR_TOKEN)
            add_error(ec, field, key, "string_pattern_mismatch", "String should match pattern '^[!-~]+$'");
        else
            add_error(ec, field, key, "string_pattern_mismatch", "String should not contain control characters");
        return -1;
    }
    return 0;
}

/* ---- numbers ------------------------------------------------------------------------------- */

/* Checks a JSON number (integer or real) for finiteness and [min, max]; returns 0 or -1. */
static int check_number(err_ctx *ec, const char *field, const char *key, json_t *v, long long min, long long max)
{
    if (!json_is_number(v)) {
        add_error(ec, field, key, "float_type", "Input should be a valid number");
        return -1;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < min) {
            add_error(ec, field, key, "greater_than_equal", "Input should be greater than or equal to %lld", min);
            return -1;
        }
        if (i > max) {
            add_error(ec, field, key, "less_than_equal", "Input should be less than or equal to %lld", max);
            return -1;
        }
        return 0;
    }
    double d = json_real_value(v);
    if (!isfinite(d)) {
        add_error(ec, field, key, "finite_number", "Input should be a finite number");
        return -1;
    }
    if (d < (double)min) {
        add_error(ec, field, key, "greater_than_equal", "Input should be greater than or equal to %lld", min);
        return -1;
    }
    if (d > (double)max) {
        add_error(ec, field, key, "less_than_equal", "Input should be less than or equal to %lld", max);
        return -1;
    }
    return 0;
}

/* ---- one field ----------------------------------------------------------------------------- */

/* Validates one present, non-null value; returns the normalised value (new reference) or NULL. */
static json_t *check_field(err_ctx *ec, const field_rule *r, json_t *v, double now_epoch)
{
    const char *f = r->name;
    switch (r->kind) {
    case KIND_STRING:
        if (check_string(ec, f, NULL, v, r->min, r->max, r->flags) != 0)
            return NULL;
        return json_stringn(json_string_value(v), json_string_length(v));

    case KIND_TIMESTAMP: {
        if (!json_is_string(v)) {
            add_error(ec, f, NULL, "string_type", "Input should be a valid string");
            return NULL;
        }
        double epoch;
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v) || csa_parse_rfc3339(s, &epoch) != 0) {
            add_error(ec, f, NULL, "datetime_format", "Input should be an RFC 3339 date-time with a time zone");
            return NULL;
        }
        if (epoch < EPOCH_2000) {
            add_error(ec, f, NULL, "datetime_past", "Timestamp should not be before 2000-01-01T00:00:00Z");
            return NULL;
        }
        if (epoch > now_epoch + MAX_FUTURE_S) {
            add_error(ec, f, NULL, "datetime_future", "Timestamp should not be more than 24 hours in the future");
            return NULL;
        }
        return json_string(s);
    }

    case KIND_BOOL:
        if (!json_is_boolean(v)) {
            add_error(ec, f, NULL, "bool_type", "Input should be a valid boolean");
            return NULL;
        }
        return json_boolean(json_is_true(v));

    case KIND_INTEGER: {
        if (!json_is_integer(v)) {
            add_error(ec, f, NULL, "int_type", "Input should be a valid integer");
            return NULL;
        }
        if (check_number(ec, f, NULL, v, r->min, r->max) != 0)
            return NULL;
        return json_integer(json_integer_value(v));
    }

    case KIND_NUMBER:
        if (check_number(ec, f, NULL, v, r->min, r->max) != 0)
            return NULL;
        return json_is_integer(v) ? json_integer(json_integer_value(v)) : json_real(json_real_value(v));

    case KIND_LITERAL:
        if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)) {
            for (const char *const *lit = r->literals; *lit; lit++)
                if (strcmp(json_string_value(v), *lit) == 0)
                    return json_string(*lit);
        }
        add_error(ec, f, NULL, "literal_error", "%s", r->literal_msg);
        return NULL;

    case KIND_TIMINGS: {
        if (!json_is_object(v)) {
            add_error(ec, f, NULL, "dict_type", "Input should be a valid dictionary");
            return NULL;
        }
        size_t n = json_object_size(v);
        if ((long long)n > r->max) {
            add_error(ec, f, NULL, "too_long", "Dictionary should have at most %lld items after validation, not %zu",
                      r->max, n);
            return NULL;
        }
        size_t before = ec->count;
        const char *key;
        json_t *value;
        json_object_foreach(v, key, value) {
            json_t *key_str = json_string(key);
            /* a key is checked like a name; a bad key is reported at its own location */
            int key_ok = key_str ? check_string(ec, f, key, key_str, 1, 255, STR_NO_CONTROL) == 0 : 0;
            if (!key_str)
                add_error(ec, f, NULL, "string_unicode", "Keys should be valid unicode strings");
            json_decref(key_str);
            if (key_ok)
                check_number(ec, f, key, value, 0, CSA_MAX_DURATION_MS);
        }
        if (ec->count != before)
            return NULL;
        return json_incref(v);
    }

    case KIND_TREE: {
        if (!json_is_object(v) && !json_is_array(v)) {
            add_error(ec, f, NULL, "dict_type", "Input should be an object or an array");
            return NULL;
        }
        /* its own cap: a tree stays a small part of the row even when the body limit is large */
        size_t size = 0;
        if (json_dump_callback(v, count_bytes, &size, JSON_COMPACT) != 0 || size > (size_t)r->max) {
            add_error(ec, f, NULL, "too_long", "Input should be at most %lld bytes as compact JSON", r->max);
            return NULL;
        }
        return json_incref(v);
    }
    }
    return NULL;
}

/*
 * Validates one record against RULES, collecting every error (see validate.h).
 * Returns a new normalised object, or NULL after appending at least one error to `errors`.
 */
json_t *csa_validate_record(json_t *record, json_t *loc_prefix, json_t *errors, double now_epoch)
{
    err_ctx ec = {loc_prefix, errors, 0};
    if (!json_is_object(record)) {
        add_error(&ec, NULL, NULL, "model_type", "Input should be an object");
        return NULL;
    }
    json_t *out = json_object();
    for (size_t i = 0; i < NRULES; i++) {
        const field_rule *r = &RULES[i];
        json_t *v = json_object_get(record, r->name);
        json_t *norm = NULL;
        if (!v || json_is_null(v)) {
            if (r->required)
                add_error(&ec, r->name, NULL, "missing", v ? "Field required (null given)" : "Field required");
        } else {
            norm = check_field(&ec, r, v, now_epoch);
        }
        json_object_set_new(out, r->name, norm ? norm : json_null());
    }
    /* execution_duration_ms is required unless the record says it is incomplete; an incomplete
     * record needs the invocation_id its completion will carry */
    json_t *exec = json_object_get(record, "execution_duration_ms");
    json_t *id = json_object_get(record, "invocation_id");
    if (!json_is_false(json_object_get(out, "complete"))) {
        if (!exec || json_is_null(exec))
            add_error(&ec, "execution_duration_ms", NULL, "missing",
                      exec ? "Field required (null given)" : "Field required");
    } else {
        if (!id || json_is_null(id))
            add_error(&ec, "invocation_id", NULL, "missing", "Field required when complete is false");
        if (json_is_false(json_object_get(out, "cold_start")))
            add_error(&ec, "complete", NULL, "value_error", "Only a cold-start record can be sent incomplete");
    }
    if (ec.count > 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/*
 * Checks {"invocations": [1..CSA_MAX_BATCH items]}; errors at ["body"] or ["body", "invocations"].
 * Returns the borrowed array, or NULL after appending one error.
 */
json_t *csa_validate_batch_envelope(json_t *body, json_t *errors)
{
    json_t *prefix = json_pack("[s]", "body");
    err_ctx ec = {prefix, errors, 0};
    json_t *items = NULL;
    if (!json_is_object(body)) {
        ec.prefix = NULL;
        add_error(&ec, "body", NULL, "model_type", "Input should be an object");
        goto out;
    }
    json_t *v = json_object_get(body, "invocations");
    if (!v || json_is_null(v)) {
        add_error(&ec, "invocations", NULL, "missing", v ? "Field required (null given)" : "Field required");
    } else if (!json_is_array(v)) {
        add_error(&ec, "invocations", NULL, "list_type", "Input should be a valid list");
    } else if (json_array_size(v) == 0) {
        add_error(&ec, "invocations", NULL, "too_short", "List should have at least 1 item after validation, not 0");
    } else if (json_array_size(v) > CSA_MAX_BATCH) {
        add_error(&ec, "invocations", NULL, "too_long", "List should have at most %d items after validation, not %zu",
                  CSA_MAX_BATCH, json_array_size(v));
    } else {
        items = v;
    }
out:
    json_decref(prefix);
    return items;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/*
 * Pre-scan before jansson: refuses NUL bytes, empty bodies and nesting deeper than
 * CSA_MAX_JSON_DEPTH (jansson's own limit is 2048, and deep trees cost stack in every consumer).
 * Brackets inside strings do not count. Returns 0 or -1 with why set.
 */
static int prescan(const char *body, size_t len, char *why, size_t why_size)
{
    int in_string = 0, escaped = 0, nonblank = 0;
    long depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (c == '\0') {
            snprintf(why, why_size, "NUL byte at offset %zu", i);
            return -1;
        }
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            nonblank = 1;
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > CSA_MAX_JSON_DEPTH) {
                snprintf(why, why_size, "nesting deeper than %d levels", CSA_MAX_JSON_DEPTH);
                return -1;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--; /* unbalanced input is left to jansson to report */
        }
    }
    if (!nonblank) {
        snprintf(why, why_size, "empty body");
        return -1;
    }
    return 0;
}

/*
 * Parses a request body strictly (see validate.h). The top-level value must be an object.
 * Returns a new reference, or NULL with `why` set (bounded by why_size, NUL-terminated).
 */
json_t *csa_json_parse(const char *body, size_t len, char *why, size_t why_size)
{
    char scratch[8];
    if (!why || why_size == 0) {
        why = scratch;
        why_size = sizeof scratch;
    }
    why[0] = '\0';
    if (!body) {
        snprintf(why, why_size, "empty body");
        return NULL;
    }
    if (prescan(body, len, why, why_size) != 0)
        return NULL;
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!root) {
        snprintf(why, why_size, "invalid JSON: %s (line %d, column %d)", err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(why, why_size, "top-level value must be a JSON object");
        return NULL;
    }
    return root;
}

/* ---- RFC 3339 ------------------------------------------------------------------------------ */

/* Reads exactly n ASCII digits at s into *out; returns 0 or -1. Locale independent. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * Parses "YYYY-MM-DD(T|t| )HH:MM:SS[.1-9 digits](Z|z|+HH:MM|-HH:MM)" exactly (no trailing bytes).
 * Years 0001-9999 and zone offsets up to +-15:59 only: PostgreSQL, which stores the string as
 * given, refuses year 0 and larger offsets (no real zone is beyond -12:00/+14:00).
 * Returns 0 with *epoch set, or -1.
 */
int csa_parse_rfc3339(const char *s, double *epoch)
{
    int y, mo, d, h, mi, sec;
    if (!s || strlen(s) < 20)
        return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d))
        return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return -1;
    if (digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    double frac = 0.0;
    if (*p == '.') {
        p++;
        int n = 0;
        double scale = 0.1;
        while (*p >= '0' && *p <= '9') {
            if (++n > 9)
                return -1;
            frac += (*p - '0') * scale;
            scale /= 10.0;
            p++;
        }
        if (n == 0)
            return -1;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || om > 59)
            return -1;
        if (oh * 60 + om > MAX_OFFSET_MINUTES)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - offset_s;
    if (epoch)
        *epoch = (double)secs + frac;
    return 0;
}

/* ---- the route table's field rules --------------------------------------------------------- */

/* A valid UTF-8 string of r->min..r->max code points, without control characters when the rule
 * says CSA_PARAM_NO_CONTROL. */
static int text_ok(const csa_param_rule *r, const char *s)
{
    int bad_char;
    long long n = utf8_scan(s, strlen(s), r->flags & CSA_PARAM_NO_CONTROL ? STR_NO_CONTROL : 0, &bad_char);
    return n >= r->min && n <= r->max && !bad_char;
}

static void param_error(json_t *errors, const char *where, const char *name, json_t *index, const char *msg,
                        const char *type)
{
    json_t *loc = json_pack("[s, s]", where, name);
    if (index)
        json_array_append_new(loc, index);
    json_array_append_new(errors, json_pack("{s:o, s:s, s:s}", "loc", loc, "msg", msg, "type", type));
}

/* One rule on a present, non-null value: the normalised value (new reference), or NULL after
 * appending an error. */
static json_t *check_param(const csa_param_rule *r, const char *where, json_t *v, json_t *errors)
{
    const char *s = json_string_value(v); /* NULL when v is not a string */
    switch (r->kind) {
    case CSA_PARAM_INT: {
        char *end;
        long n = s ? strtol(s, &end, 10) : 0;
        if (s && *s && !*end && n >= r->min && n <= r->max)
            return json_integer(n);
        break;
    }
    case CSA_PARAM_TEXT:
        if (s && text_ok(r, s))
            return json_incref(v);
        break;
    case CSA_PARAM_TOKEN: {
        size_t n = s ? json_string_length(v) : 0;
        int ok = s && (long)n >= r->min && (long)n <= r->max;
        for (size_t k = 0; ok && k < n; k++)
            ok = s[k] >= 0x21 && s[k] <= 0x7e;
        if (ok)
            return json_incref(v);
        break;
    }
    case CSA_PARAM_DATETIME: {
        double epoch;
        if (s && csa_parse_rfc3339(s, &epoch) == 0)
            return json_incref(v);
        break;
    }
    case CSA_PARAM_CURSOR: {
        char name[CSA_CURSOR_NAME_MAX];
        json_t *decoded = s && csa_cursor_decode(s, name, sizeof name) == 0 ? json_string(name) : NULL;
        if (decoded)
            return decoded;
        break;
    }
    case CSA_PARAM_KEYSET: {
        char text[CSA_CURSOR_NAME_MAX];
        char *bar = s && csa_cursor_decode(s, text, sizeof text) == 0 ? strchr(text, '|') : NULL;
        if (!bar)
            break;
        *bar = '\0';
        double epoch;
        json_t *at = json_string(text), *id = json_string(bar + 1); /* NULL when not UTF-8 */
        if (at && id && csa_parse_rfc3339(text, &epoch) == 0 && text_ok(r, bar + 1))
            return json_pack("[o, o]", at, id);
        json_decref(at);
        json_decref(id);
        break;
    }
    case CSA_PARAM_FLAG: return json_boolean(s && strcmp(s, "true") == 0);
    case CSA_PARAM_SLUG:
        if (s && csa_slug_valid(s))
            return json_incref(v);
        break;
    case CSA_PARAM_SCOPES: {
        if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 3)
            break;
        unsigned bits = 0;
        int bad = 0;
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            unsigned bit = json_is_string(item) ? csa_scope_from_name(json_string_value(item)) : 0;
            if (!bit) {
                param_error(errors, where, r->name, json_integer((json_int_t)i),
                            "Input should be 'ingest', 'read' or 'admin'", "enum");
                bad = 1;
            }
            bits |= bit;
        }
        return bad ? NULL : json_integer((json_int_t)bits);
    }
    }
    param_error(errors, where, r->name, NULL, r->msg, r->type);
    return NULL;
}

json_t *csa_validate_params(const csa_param_rule *rules, const char *where, json_t *in, json_t *errors)
{
    if (in && !json_is_object(in)) {
        json_array_append_new(errors, json_pack("{s:[s], s:s, s:s}", "loc", where, "msg", "Input should be an object",
                                                "type", "model_type"));
        return NULL;
    }
    json_t *out = json_object();
    size_t before = json_array_size(errors);
    for (const csa_param_rule *r = rules; r && r->name; r++) {
        json_t *v = in ? json_object_get(in, r->name) : NULL;
        if (v && json_is_null(v))
            v = NULL;
        if (v && (r->flags & CSA_PARAM_EMPTY_ABSENT) && json_is_string(v) && json_string_length(v) == 0)
            v = NULL;
        if (!v) {
            if ((r->flags & CSA_PARAM_REQUIRED) && (r->flags & CSA_PARAM_SAY_MISSING))
                param_error(errors, where, r->name, NULL, "Field required", "missing");
            else if (r->flags & CSA_PARAM_REQUIRED)
                param_error(errors, where, r->name, NULL, r->msg, r->type);
            else if (r->kind == CSA_PARAM_INT || r->kind == CSA_PARAM_SCOPES)
                json_object_set_new(out, r->name, json_integer(r->fallback));
            else if (r->kind == CSA_PARAM_FLAG)
                json_object_set_new(out, r->name, json_false());
            continue;
        }
        json_t *value = check_param(r, where, v, errors);
        if (value)
            json_object_set_new(out, r->name, value);
    }
    if (json_array_size(errors) > before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *csa_validate_window(const json_t *args, int max_days, double now, int must_be_ordered)
{
    double from = 0, to = 0;
    const char *from_s = json_string_value(json_object_get(args, "from"));
    const char *to_s = json_string_value(json_object_get(args, "to"));
    if (from_s)
        csa_parse_rfc3339(from_s, &from); /* checked by the route's rules */
    if (to_s)
        csa_parse_rfc3339(to_s, &to);
    double t1 = to_s ? to : now;
    double t0 = from_s ? from : t1 - 7 * 86400.0;
    char msg[160];
    const char *type;
    if (must_be_ordered && t0 >= t1) {
        snprintf(msg, sizeof msg, "Input should be earlier than to");
        type = "value_error";
    } else if (t1 - t0 > (double)max_days * 86400.0) {
        snprintf(msg, sizeof msg, "The window from..to spans %.0f days; at most %d days can be read at once",
                 (t1 - t0) / 86400.0, max_days);
        type = "window_too_wide";
    } else {
        return NULL;
    }
    return json_pack("[{s:[s,s], s:s, s:s}]", "loc", "query", "from", "msg", msg, "type", type);
}

/* GET /api/v1/functions */
const csa_param_rule CSA_QUERY_LIST_FUNCTIONS[] = {
    {"limit", CSA_PARAM_INT, 0, 1, 200, 50, "Input should be an integer from 1 to 200", "int_parsing"},
    {"cursor", CSA_PARAM_CURSOR, 0, 0, 0, 0, "Not a cursor returned by this endpoint", "value_error"},
    {"name_prefix", CSA_PARAM_TEXT, CSA_PARAM_EMPTY_ABSENT, 0, 255, 0, "Input should have at most 255 characters",
     "string_too_long"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* GET /api/v1/functions/{id} and its /cold-starts/typical (the window's width is the handler's: it
 * depends on the config, csa_validate_window) */
const csa_param_rule CSA_QUERY_FUNCTION_DETAIL[] = {
    {"from", CSA_PARAM_DATETIME, 0, 0, 0, 0, "Input should be an RFC 3339 date-time with a time zone",
     "datetime_format"},
    {"to", CSA_PARAM_DATETIME, 0, 0, 0, 0, "Input should be an RFC 3339 date-time with a time zone", "datetime_format"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* GET /api/v1/functions/{id}/deployments and /compare: deployment ids as the list shows them */
const csa_param_rule CSA_QUERY_COMPARE[] = {
    {"base", CSA_PARAM_TOKEN, 0, 1, CSA_DEPLOYMENT_ID_MAX, 0,
     "Input should be a deployment id (1 to 80 printable characters)", "string_pattern_mismatch"},
    {"head", CSA_PARAM_TOKEN, 0, 1, CSA_DEPLOYMENT_ID_MAX, 0,
     "Input should be a deployment id (1 to 80 printable characters)", "string_pattern_mismatch"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* GET /api/v1/functions/{id}/cold-starts (coldstarts.h; the window as for the detail) */
const csa_param_rule CSA_QUERY_COLD_STARTS[] = {
    {"from", CSA_PARAM_DATETIME, 0, 0, 0, 0, "Input should be an RFC 3339 date-time with a time zone",
     "datetime_format"},
    {"to", CSA_PARAM_DATETIME, 0, 0, 0, 0, "Input should be an RFC 3339 date-time with a time zone", "datetime_format"},
    {"limit", CSA_PARAM_INT, 0, 1, CSA_COLD_STARTS_PAGE_MAX, CSA_COLD_STARTS_PAGE,
     "Input should be an integer from 1 to 200", "int_parsing"},
    {"cursor", CSA_PARAM_KEYSET, CSA_PARAM_NO_CONTROL, 1, CSA_MAX_INVOCATION_ID_CHARS, 0,
     "Not a cursor returned by this endpoint", "value_error"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* GET /api/v1/functions/{id}/cold-starts/tree?invocation_id=: an id as ingest accepts it, in any window */
const csa_param_rule CSA_QUERY_COLD_START_TREE[] = {
    {"invocation_id", CSA_PARAM_TEXT, CSA_PARAM_REQUIRED | CSA_PARAM_SAY_MISSING | CSA_PARAM_NO_CONTROL, 1,
     CSA_MAX_INVOCATION_ID_CHARS, 0, "Input should be 1 to 255 characters without control characters", "string_type"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* DELETE /api/v1/api-keys/{id}?force=true */
const csa_param_rule CSA_QUERY_REVOKE_KEY[] = {
    {"force", CSA_PARAM_FLAG, 0, 0, 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* POST /api/v1/api-keys {"name"?, "scopes"?}: scopes default to ["ingest"], the key for a function */
const csa_param_rule CSA_BODY_CREATE_KEY[] = {
    {"name", CSA_PARAM_TEXT, 0, 1, 255, 0, "Input should be a string of 1 to 255 characters", "string_type"},
    {"scopes", CSA_PARAM_SCOPES, 0, 0, 0, CSA_SCOPE_INGEST, "Input should be a list of 1 to 3 scopes", "list_type"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

/* POST /api/v1/projects {"name", "slug"} */
const csa_param_rule CSA_BODY_CREATE_PROJECT[] = {
    {"name", CSA_PARAM_TEXT, CSA_PARAM_REQUIRED, 1, CSA_PROJECT_NAME_MAX, 0,
     "Input should be a string of 1 to 255 characters", "string_type"},
    {"slug", CSA_PARAM_SLUG, CSA_PARAM_REQUIRED, 0, 0, 0, "Input should be 1 to 100 characters of a-z, 0-9, - and _",
     "string_pattern_mismatch"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};
