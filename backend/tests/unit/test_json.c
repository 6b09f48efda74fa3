/* Unit tests for csa_json_parse: the strict request body parser. */
#include "validate.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char why[256];

/* Parses a C string (length from strlen). */
static json_t *parse(const char *text)
{
    return csa_json_parse(text, strlen(text), why, sizeof why);
}

/* Asserts that `len` bytes of `text` are refused, and that the reason mentions `fragment`. */
static void expect_rejected(const char *text, size_t len, const char *fragment)
{
    why[0] = '\0';
    json_t *v = csa_json_parse(text, len, why, sizeof why);
    cr_assert_null(v, "accepted: %.*s", (int)len, text);
    json_decref(v);
    cr_assert(why[0] != '\0', "no reason given");
    cr_assert(strstr(why, fragment) != NULL, "reason \"%s\" lacks \"%s\"", why, fragment);
}

/* Builds `n` nested arrays around 1 inside an object: {"a":[[...1...]]} has depth n + 1. */
static char *nested(int depth)
{
    static char buf[512];
    char *p = buf;
    p += sprintf(p, "{\"a\":");
    for (int i = 1; i < depth; i++)
        *p++ = '[';
    *p++ = '1';
    for (int i = 1; i < depth; i++)
        *p++ = ']';
    *p++ = '}';
    *p = '\0';
    return buf;
}

Test(json, accepts_plain_object)
{
    json_t *v =
        parse("{\"function_name\": \"f\", \"n\": 1, \"x\": [1.5, true, null], \"u\": \"\\u00e9\\ud83d\\ude00\"}");
    cr_assert_not_null(v, "%s", why);
    cr_assert_str_eq(json_string_value(json_object_get(v, "function_name")), "f");
    cr_assert_eq(json_integer_value(json_object_get(v, "n")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(v, "u")), "\xc3\xa9\xf0\x9f\x98\x80");
    json_decref(v);
}

Test(json, accepts_surrounding_whitespace_and_int64_limits)
{
    json_t *v = parse(" \r\n\t{\"max\": 9223372036854775807, \"min\": -9223372036854775808} \n");
    cr_assert_not_null(v, "%s", why);
    cr_assert_eq(json_integer_value(json_object_get(v, "max")), INT64_MAX);
    cr_assert_eq(json_integer_value(json_object_get(v, "min")), INT64_MIN);
    json_decref(v);
}

Test(json, uses_len_not_nul_terminator)
{
    /* only the first 2 bytes are the body; the rest must not be read */
    json_t *v = csa_json_parse("{}garbage", 2, why, sizeof why);
    cr_assert_not_null(v, "%s", why);
    cr_assert(json_is_object(v));
    json_decref(v);
}

Test(json, rejects_empty_body)
{
    expect_rejected("", 0, "empty");
    expect_rejected(" \n\t\r ", 5, "empty");
    why[0] = 'x';
    cr_assert_null(csa_json_parse(NULL, 0, why, sizeof why));
    cr_assert_str_eq(why, "empty body");
}

Test(json, rejects_invalid_utf8)
{
    expect_rejected("{\"a\": \"\xff\"}", 10, "invalid JSON");
    expect_rejected("{\"a\": \"\xc3\"}", 10, "invalid JSON");         /* truncated sequence */
    expect_rejected("{\"a\": \"\xc0\xaf\"}", 11, "invalid JSON");     /* overlong '/' */
    expect_rejected("{\"a\": \"\xed\xa0\x80\"}", 12, "invalid JSON"); /* UTF-16 surrogate */
    expect_rejected("{\"\xff\": 1}", 8, "invalid JSON");              /* in a key */
}

Test(json, rejects_escaped_nul)
{
    expect_rejected("{\"a\": \"x\\u0000y\"}", 17, "invalid JSON");
    expect_rejected("{\"a\\u0000\": 1}", 14, "invalid JSON");
}

Test(json, rejects_raw_nul)
{
    const char body[] = "{\"a\": \"x\0y\"}";
    expect_rejected(body, sizeof body - 1, "NUL");
    const char after[] = "{\"a\": 1}\0";
    expect_rejected(after, sizeof after - 1, "NUL");
}

Test(json, rejects_nan_and_infinity)
{
    expect_rejected("{\"a\": NaN}", 10, "invalid JSON");
    expect_rejected("{\"a\": Infinity}", 15, "invalid JSON");
    expect_rejected("{\"a\": -Infinity}", 16, "invalid JSON");
    expect_rejected("{\"a\": 1e400}", 12, "invalid JSON"); /* overflows a double */
}

Test(json, rejects_trailing_garbage)
{
    expect_rejected("{\"a\": 1} x", 10, "invalid JSON");
    expect_rejected("{\"a\": 1}{}", 10, "invalid JSON");
    expect_rejected("{\"a\": 1},", 9, "invalid JSON");
}

Test(json, rejects_duplicate_keys)
{
    expect_rejected("{\"a\": 1, \"a\": 2}", 16, "duplicate");
    expect_rejected("{\"o\": {\"k\": 1, \"k\": 1}}", 23, "duplicate");
}

Test(json, rejects_integers_outside_int64)
{
    expect_rejected("{\"a\": 9223372036854775808}", 26, "invalid JSON");
    expect_rejected("{\"a\": -9223372036854775809}", 27, "invalid JSON");
    expect_rejected("{\"a\": 123456789012345678901234567890}", 37, "invalid JSON");
}

Test(json, depth_32_accepted_33_rejected)
{
    char *body = nested(32);
    json_t *v = parse(body);
    cr_assert_not_null(v, "depth 32 refused: %s", why);
    json_decref(v);

    body = nested(33);
    expect_rejected(body, strlen(body), "nesting deeper than 32");
}

Test(json, brackets_inside_strings_do_not_count)
{
    char body[256];
    memset(body, 0, sizeof body);
    strcpy(body, "{\"a\": \"");
    memset(body + strlen(body), '[', 100);
    strcat(body, "\\\"{{{{\", \"b\": \"]]]\"}");
    json_t *v = parse(body);
    cr_assert_not_null(v, "%s", why);
    json_decref(v);
}

Test(json, error_reports_position)
{
    json_t *v = parse("{\n  \"a\": tru\n}");
    cr_assert_null(v);
    cr_assert(strncmp(why, "invalid JSON: ", 14) == 0, "%s", why);
    cr_assert(strstr(why, "(line 2, column") != NULL, "%s", why);
}

Test(json, top_level_must_be_object)
{
    expect_rejected("[1, 2]", 6, "must be a JSON object");
    expect_rejected("\"text\"", 6, "must be a JSON object");
    expect_rejected("42", 2, "must be a JSON object");
    expect_rejected("null", 4, "must be a JSON object");
}

Test(json, reason_is_bounded)
{
    char small[16];
    memset(small, 'x', sizeof small);
    json_t *v = csa_json_parse("{\"a\": 1, \"a\": 2}", 16, small, sizeof small);
    cr_assert_null(v);
    cr_assert(memchr(small, '\0', sizeof small) != NULL, "reason not NUL-terminated within its buffer");
    cr_assert_eq(strlen(small), sizeof small - 1);
}
