/*
 * validate.h: parsing and validation of ingest request bodies (the spec's Pydantic role).
 *
 * A body is parsed strictly (csa_json_parse) and each record is checked field by field against
 * one declarative rule table. Errors are collected, not stopped at the first: each becomes a
 * {"loc": [...], "msg": "...", "type": "..."} object like Pydantic's. A record that passes is
 * rewritten into a normalised JSON object (csa_record) holding exactly the columns to store.
 */
#ifndef CSA_VALIDATE_H
#define CSA_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#define CSA_MAX_JSON_DEPTH 32           /* nesting deeper than this is rejected before parsing */
#define CSA_MAX_MODULE_TIMINGS 2000     /* entries in module_timings */
#define CSA_MAX_MODULE_TREE_BYTES 65536 /* module_tree as compact JSON (the SDK sends at most 80 nodes) */
#define CSA_MAX_BATCH 1000              /* records in one batch */
#define CSA_MAX_DURATION_MS 900000      /* Lambda's 15 minute limit */
#define CSA_MIN_MEMORY_MB 128           /* Lambda's memory range */
#define CSA_MAX_MEMORY_MB 10240
#define CSA_MAX_IDENTITY_CHARS 64       /* function_version, code_id: printable ASCII, no spaces */
#define CSA_MAX_INVOCATION_ID_CHARS 255 /* invocations.invocation_id VARCHAR(255) */

/*
 * Parses a request body. Returns a new reference (caller json_decref()s) or NULL with a short
 * reason written to `why` (at most why_size bytes, always NUL-terminated), e.g.
 * "invalid JSON at line 1, column 7: ..." or "nesting deeper than 32 levels".
 * Rejects: invalid UTF-8, NUL bytes (raw or \u0000), NaN/Infinity, trailing garbage, duplicate
 * object keys, integers outside int64, nesting deeper than CSA_MAX_JSON_DEPTH, empty bodies.
 */
json_t *csa_json_parse(const char *body, size_t len, char *why, size_t why_size);

/*
 * Validates one ingest record.
 *   record:     the parsed JSON value (any type; a non-object is an error)
 *   loc_prefix: a JSON array the error locations start with, e.g. ["body"] or
 *               ["body", "invocations", 3]; borrowed, not modified
 *   errors:     a JSON array; one object {"loc", "msg", "type"} is appended per problem
 *   now_epoch:  current time (seconds since epoch), to reject timestamps over 24 h in the future
 * Returns a new normalised object on success (caller owns it), or NULL when at least one error
 * was appended. The normalised object has exactly these keys (absent optionals are JSON null):
 *   function_name, invocation_id (string or null), request_id, timestamp (the input string),
 *   cold_start (bool), init_duration_ms, execution_duration_ms, billed_duration_ms,
 *   memory_used_mb, memory_allocated_mb (integers or null), module_timings (object or null),
 *   runtime_version, architecture, region, init_type, start_kind, sdk_version (strings or null),
 *   sdk_overhead_ms (number or null), module_tree (object/array or null), module_source,
 *   complete, function_version, code_id (strings of 1 to CSA_MAX_IDENTITY_CHARS printable ASCII
 *   characters without spaces, or null).
 * Unknown fields are ignored. A JSON null for an optional field counts as absent.
 */
json_t *csa_validate_record(json_t *record, json_t *loc_prefix, json_t *errors, double now_epoch);

/*
 * Checks the batch envelope {"invocations": [...]}: an object with an array of 1 to
 * CSA_MAX_BATCH items. Returns the (borrowed) array, or NULL after appending errors.
 */
json_t *csa_validate_batch_envelope(json_t *body, json_t *errors);

/*
 * Parses an RFC 3339 timestamp with a mandatory zone ("2026-01-02T10:30:00Z",
 * "2026-01-02T10:30:00.123+02:00"; 'T' or 't' or ' ' between date and time, 'Z' or 'z').
 * Checks calendar ranges (leap years, seconds 0-60). On success stores seconds since the epoch
 * (UTC, fraction included) in *epoch and returns 0; returns -1 otherwise.
 * Also refused, because PostgreSQL (which parses the stored string) refuses them: year 0000 and
 * zone offsets beyond +-15:59 (real zones span -12:00 to +14:00).
 */
int csa_parse_rfc3339(const char *s, double *epoch);

/* ---- the route table's field rules (query strings and small bodies) -----------------------
 *
 * Each route of the HTTP API (routes.c) names a rule table for its query string and one for
 * its JSON body (ingest's records use csa_validate_record instead). The dispatcher runs
 * csa_validate_params before the handler, which then reads only normalised values. A table is
 * an array of csa_param_rule ended by an entry whose name is NULL; the tables of the routes are
 * defined at the end of validate.c.
 */

typedef enum csa_param_kind {
    CSA_PARAM_INT,      /* decimal integer in [min, max]; absent: `fallback`. Normalised: integer */
    CSA_PARAM_TEXT,     /* string of min..max code points. Normalised: the string */
    CSA_PARAM_TOKEN,    /* string of min..max printable ASCII characters without spaces (!-~) */
    CSA_PARAM_DATETIME, /* RFC 3339 date-time with a zone (csa_parse_rfc3339). Normalised: the string */
    CSA_PARAM_CURSOR,   /* a page cursor (cursor.h). Normalised: the decoded name */
    CSA_PARAM_KEYSET,   /* a page cursor (cursor.h) of "<RFC 3339 date-time>|<id>", the id as TEXT with
                           CSA_PARAM_NO_CONTROL. Normalised: [date-time, id] (split at the first '|') */
    CSA_PARAM_FLAG,     /* "true" is true, anything else false. Normalised: boolean, always present */
    CSA_PARAM_SLUG,     /* a project slug (csa_slug_valid, projects.h) */
    CSA_PARAM_SCOPES,   /* list of 1 to 3 scope names (keys.h); absent: `fallback` bits. Normalised: bits */
} csa_param_kind;

#define CSA_PARAM_REQUIRED 1u     /* absent or null is an error */
#define CSA_PARAM_EMPTY_ABSENT 2u /* "" counts as absent */
#define CSA_PARAM_NO_CONTROL 4u   /* TEXT, KEYSET: no control characters (C0, DEL, C1), as ingest's ids */
#define CSA_PARAM_SAY_MISSING 8u  /* REQUIRED and absent: Pydantic's "Field required", type "missing" */

typedef struct csa_param_rule {
    const char *name; /* query parameter or body field; NULL ends the table */
    csa_param_kind kind;
    unsigned flags;   /* CSA_PARAM_* */
    long min, max;    /* INT: value; TEXT, TOKEN, KEYSET (its id): code points */
    long fallback;    /* INT, SCOPES: the value when absent */
    const char *msg;  /* the error's "msg" when the value breaks the rule */
    const char *type; /* the error's "type" */
} csa_param_rule;

/*
 * Checks `in` against rules. where is "query" (in: an object of strings, the query string) or
 * "body" (in: the parsed JSON body, NULL when there was none: checked as an empty object).
 * Returns a new object (caller owns it) holding the normalised value of each field present (and
 * the fallbacks); other fields are dropped. On failure returns NULL after appending one error
 * {"loc": [where, name(, index)], "msg", "type"} per bad field to errors.
 */
json_t *csa_validate_params(const csa_param_rule *rules, const char *where, json_t *in, json_t *errors);

/*
 * Checks the read window of a query string whose "from" and "to" passed their rules (RFC 3339):
 * [from, to), by default the 7 days up to to, to by default now (seconds since the epoch). It
 * may span at most max_days; with must_be_ordered, from must also be earlier than to. Returns
 * NULL when it holds, else a new array of one error at ["query", "from"] (type window_too_wide,
 * or value_error when not ordered).
 */
json_t *csa_validate_window(const json_t *args, int max_days, double now, int must_be_ordered);

/* The rule tables of the routes (see the route table, routes.c). */
extern const csa_param_rule CSA_QUERY_LIST_FUNCTIONS[];
extern const csa_param_rule CSA_QUERY_FUNCTION_DETAIL[];
extern const csa_param_rule CSA_QUERY_COMPARE[];
extern const csa_param_rule CSA_QUERY_COLD_STARTS[];
extern const csa_param_rule CSA_QUERY_COLD_START_TREE[];
extern const csa_param_rule CSA_QUERY_REVOKE_KEY[];
extern const csa_param_rule CSA_BODY_CREATE_KEY[];
extern const csa_param_rule CSA_BODY_CREATE_PROJECT[];

#endif
