/* Unit tests for day_sketches.c: rows by kind, module timings as PostgreSQL prints them, merging
 * days, the packages' encoding (round trip, truncated and corrupt encodings refused), and rows read
 * alike from text and binary results (the sketch readers take binary ones: db.h). */
#include "day_sketches.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static csa_cold_row cold(char kind, double init, const char *modules, double at)
{
    csa_cold_row r = {kind, init >= 0, init >= 0 ? init : 0, 0.5, CSA_ARCH_X86_64, at, modules};
    return r;
}

Test(day_sketches, rows_count_by_kind)
{
    csa_day_stats d;
    csa_day_stats_init(&d);
    csa_cold_row rows[] = {
        cold('c', 1000, "{\"aws-sdk\": 300.5, \"lodash\": 20}", 200),
        cold('c', -1, "{\"aws-sdk\": 100}", 100), /* no init: counted, not in percentiles or the share */
        cold('p', 400, "{\"aws-sdk\": 50}", 50),  /* proactive: counted apart, no packages */
        cold('v', 300, NULL, 300),
        cold('o', 300, NULL, 400),
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
        cr_assert_eq(csa_day_stats_add_row(&d, &rows[k]), 0);
    cr_expect_eq(d.cold, 2);
    cr_expect_eq(d.proactive, 1);
    cr_expect_eq(d.provisioned, 1);
    cr_expect_eq(d.other, 1);
    cr_expect_eq(d.first_cold, 50);
    cr_expect_eq(d.init.count, 1);
    cr_expect_float_eq(d.init_gb_s[CSA_ARCH_X86_64], 1.0 * 0.5, 1e-12);
    cr_expect_float_eq(d.proactive_gb_s[CSA_ARCH_X86_64], 0.4 * 0.5, 1e-12);
    cr_expect_eq(d.module_rows, 1);
    cr_expect_float_eq(d.module_rows_ms, 320.5, 1e-9);
    cr_assert_eq(d.packages.n, 2);
    csa_package_stat *aws = csa_package_get(&d.packages, "aws-sdk", 7);
    cr_expect_eq(aws->n, 2);
    cr_expect_float_eq(aws->sum_ms, 400.5, 1e-9);
    cr_expect_float_eq(aws->gb_s[CSA_ARCH_X86_64], 0.4005 * 0.5, 1e-12);
    csa_day_stats_free(&d);
}

static int collect(const char *key, size_t len, double ms, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%.*s=%g;", (int)len, key, ms);
    return 0;
}

Test(day_sketches, module_timings_text)
{
    char out[256] = "";
    cr_expect_eq(csa_each_timing("{\"a\": 1.5, \"@s/b\": 2}", collect, out), 2);
    cr_expect_str_eq(out, "a=1.5;@s/b=2;");
    /* escapes and non-numbers take the full parser; non-numbers are skipped */
    out[0] = '\0';
    cr_expect_eq(csa_each_timing("{\"q\\\"x\": 3, \"s\": \"no\", \"n\": 4e1}", collect, out), 2);
    cr_expect_str_eq(out, "q\"x=3;n=40;");
    out[0] = '\0';
    cr_expect_eq(csa_each_timing("{}", collect, out), 0);
    cr_expect_eq(csa_each_timing("[1, 2]", collect, out), -1);
    cr_expect_eq(csa_each_timing("{\"a\": 1", collect, out), -1);
    cr_expect_str_eq(out, "");
}

Test(day_sketches, packages_round_trip_and_merge)
{
    csa_day_stats a, b, back;
    csa_day_stats_init(&a);
    csa_day_stats_init(&b);
    csa_day_stats_init(&back);
    char text[128];
    for (int i = 0; i < 300; i++) {
        snprintf(text, sizeof text, "{\"aws-sdk\": %d.25, \"./src/h\": 0.%03d, \"pkg-%d\": 1}", 40 + i % 97, i, i % 7);
        csa_cold_row r = cold('c', 500 + i, text, 1000 + i);
        cr_assert_eq(csa_day_stats_add_row(i % 2 ? &a : &b, &r), 0);
    }
    unsigned char *buf;
    size_t len;
    cr_assert_eq(csa_packages_encode(&a.packages, &buf, &len), 0);
    cr_assert_eq(csa_packages_decode_into(&back.packages, buf, len), 0);
    cr_expect_eq(back.packages.n, a.packages.n);
    for (size_t k = 0; k < a.packages.n; k++) {
        const csa_package_stat *p = &a.packages.items[k];
        csa_package_stat *q = csa_package_get(&back.packages, p->name, strlen(p->name));
        cr_expect_eq(q->n, p->n, "%s", p->name);
        cr_expect_eq(q->sum_ms, p->sum_ms);
        cr_expect_eq(csa_sketch_quantile(&q->sketch, 0.5), csa_sketch_quantile(&p->sketch, 0.5));
    }
    /* every truncation and trailing garbage is refused */
    for (size_t cut = 0; cut < len; cut++) {
        csa_package_map m = {json_object(), NULL, 0, 0};
        cr_expect_eq(csa_packages_decode_into(&m, buf, cut), -1, "cut at %zu of %zu", cut, len);
        for (size_t k = 0; k < m.n; k++) {
            csa_sketch_free(&m.items[k].sketch);
            free(m.items[k].name);
        }
        free(m.items);
        json_decref(m.index);
    }
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 7;
    csa_day_stats tmp;
    csa_day_stats_init(&tmp);
    cr_expect_eq(csa_packages_decode_into(&tmp.packages, longer, len + 1), -1);
    csa_day_stats_free(&tmp);
    free(longer);
    free(buf);
    /* two days merged = one day with all the rows */
    csa_day_stats all;
    csa_day_stats_init(&all);
    cr_assert_eq(csa_day_stats_merge(&all, &a), 0);
    cr_assert_eq(csa_day_stats_merge(&all, &b), 0);
    cr_expect_eq(all.cold, 300);
    cr_expect_eq(all.init.count, 300);
    cr_expect_eq(all.first_cold, 1000);
    csa_package_stat *aws = csa_package_get(&all.packages, "aws-sdk", 7);
    cr_expect_eq(aws->n, 300);
    cr_expect_eq(aws->sketch.count, 300);
    csa_day_stats_free(&all);
    csa_day_stats_free(&a);
    csa_day_stats_free(&b);
    csa_day_stats_free(&back);
}

/* ---- the readers take text or binary results (PQfformat): the same row either way --------- */

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701

static void be_bytes(unsigned char *out, uint64_t v, int n)
{
    for (int k = n - 1; k >= 0; k--, v >>= 8)
        out[k] = (unsigned char)v;
}

typedef struct col {
    Oid type;
    const char *text;          /* the text form; NULL: SQL NULL */
    const unsigned char *data; /* the binary form (bytea: its bytes), else from text */
    int len;
} col;

/* A one-row result of these columns, all in text (binary 0) or all in binary format. */
static PGresult *result_of(const col *cols, int n, int binary)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[20];
    cr_assert(n <= 20);
    for (int c = 0; c < n; c++)
        attrs[c] = (PGresAttDesc){.name = (char *)"c", .format = binary, .typid = cols[c].type, .typlen = -1};
    cr_assert(PQsetResultAttrs(res, n, attrs));
    for (int c = 0; c < n; c++) {
        const col *k = &cols[c];
        if (!k->text && !k->data) {
            cr_assert(PQsetvalue(res, 0, c, NULL, -1));
            continue;
        }
        if (!binary) {
            cr_assert(PQsetvalue(res, 0, c, (char *)k->text, (int)strlen(k->text)));
            continue;
        }
        unsigned char b[8];
        double d;
        uint64_t u;
        switch (k->type) {
        case OID_INT8:
            be_bytes(b, (uint64_t)strtoll(k->text, NULL, 10), 8);
            cr_assert(PQsetvalue(res, 0, c, (char *)b, 8));
            break;
        case OID_INT4:
            be_bytes(b, (uint32_t)strtol(k->text, NULL, 10), 4);
            cr_assert(PQsetvalue(res, 0, c, (char *)b, 4));
            break;
        case OID_FLOAT8:
            d = strtod(k->text, NULL);
            memcpy(&u, &d, 8);
            be_bytes(b, u, 8);
            cr_assert(PQsetvalue(res, 0, c, (char *)b, 8));
            break;
        case OID_BOOL:
            b[0] = k->text[0] == 't';
            cr_assert(PQsetvalue(res, 0, c, (char *)b, 1));
            break;
        default: cr_assert(PQsetvalue(res, 0, c, (char *)k->data, k->len)); /* text, bytea: the bytes */
        }
    }
    return res;
}

Test(day_sketches, rows_read_alike_in_text_and_binary)
{
    /* a cold-start row (CSA_COLD_ROW_COLUMNS) */
    const char *mods = "{\"aws-sdk\": 12.5}";
    col row[] = {
        {OID_TEXT, "c", (const unsigned char *)"c", 1},
        {OID_INT4, "1234", NULL, 0},
        {OID_FLOAT8, "0.75", NULL, 0},
        {OID_BOOL, "t", NULL, 0},
        {OID_FLOAT8, "1796550000.123456", NULL, 0},
        {OID_TEXT, mods, (const unsigned char *)mods, (int)strlen(mods)},
    };
    csa_cold_row r[2];
    for (int binary = 0; binary < 2; binary++) {
        PGresult *res = result_of(row, 6, binary);
        csa__cold_row_from(res, 0, 0, &r[binary]);
        cr_expect_eq(r[binary].kind, 'c');
        cr_expect(r[binary].has_init);
        cr_expect_eq(r[binary].init_ms, 1234.0);
        cr_expect_eq(r[binary].memory_gb, 0.75);
        cr_expect_eq(r[binary].arch, CSA_ARCH_ARM64);
        cr_expect_eq(r[binary].at, strtod("1796550000.123456", NULL), "binary %d", binary);
        cr_expect_str_eq(r[binary].modules, mods);
        PQclear(res);
    }

    /* a stored day row (CSA_DAY_SKETCH_COLUMNS): its sketches as bytea, hex in text */
    csa_day_stats src;
    csa_day_stats_init(&src);
    csa_cold_row rows[] = {cold('c', 900, "{\"aws-sdk\": 300.5, \"lodash\": 20}", 200),
                           cold('c', 1100, "{\"aws-sdk\": 280}", 100)};
    for (size_t k = 0; k < 2; k++)
        cr_assert_eq(csa_day_stats_add_row(&src, &rows[k]), 0);
    unsigned char *init, *packages;
    size_t init_len, packages_len;
    cr_assert_eq(csa_sketch_encode(&src.init, &init, &init_len), 0);
    cr_assert_eq(csa_packages_encode(&src.packages, &packages, &packages_len), 0);
    char *init_hex = csa_bytea_text(init, init_len), *packages_hex = csa_bytea_text(packages, packages_len);
    col day[] = {
        {OID_INT8, "2", NULL, 0},
        {OID_INT8, "1", NULL, 0},
        {OID_INT8, "0", NULL, 0},
        {OID_FLOAT8, "1796550000.5", NULL, 0},
        {OID_BYTEA, init_hex, init, (int)init_len},
        {OID_FLOAT8, "1.0", NULL, 0},
        {OID_FLOAT8, "0.25", NULL, 0},
        {OID_FLOAT8, "0.125", NULL, 0},
        {OID_FLOAT8, "0", NULL, 0},
        {OID_INT8, "2", NULL, 0},
        {OID_FLOAT8, "600.5", NULL, 0},
        {OID_INT8, "3", NULL, 0},
        {OID_BYTEA, packages_hex, packages, (int)packages_len},
    };
    csa_day_stats got[2];
    for (int binary = 0; binary < 2; binary++) {
        csa_day_stats_init(&got[binary]);
        PGresult *res = result_of(day, 13, binary);
        cr_assert_eq(csa_day_stats_add_stored(&got[binary], res, 0, 0), 0, "binary %d", binary);
        PQclear(res);
        csa_day_stats *g = &got[binary];
        cr_expect_eq(g->cold, 2);
        cr_expect_eq(g->proactive, 1);
        cr_expect_eq(g->provisioned, 0);
        cr_expect_eq(g->other, 3);
        cr_expect_eq(g->first_cold, 1796550000.5);
        cr_expect_eq(g->init_gb_s[0], 1.0);
        cr_expect_eq(g->init_gb_s[1], 0.25);
        cr_expect_eq(g->proactive_gb_s[0], 0.125);
        cr_expect_eq(g->module_rows, 2);
        cr_expect_eq(g->module_rows_ms, 600.5);
        cr_expect_eq(g->init.count, 2);
        cr_expect_eq(g->init.sum, 2000.0);
        cr_expect_eq(csa_sketch_quantile(&g->init, 0.5), csa_sketch_quantile(&src.init, 0.5));
        cr_assert_eq(g->packages.n, 2);
        csa_package_stat *aws = csa_package_get(&g->packages, "aws-sdk", 7);
        cr_expect_eq(aws->n, 2);
        cr_expect_float_eq(aws->sum_ms, 580.5, 1e-9);
    }
    /* a sketch that is not one is refused in both formats */
    unsigned char bad[] = {0x00, 0x01};
    day[4] = (col){OID_BYTEA, "\\x0001", bad, 2};
    for (int binary = 0; binary < 2; binary++) {
        csa_day_stats d;
        csa_day_stats_init(&d);
        PGresult *res = result_of(day, 13, binary);
        cr_expect_eq(csa_day_stats_add_stored(&d, res, 0, 0), -1, "binary %d", binary);
        PQclear(res);
        csa_day_stats_free(&d);
    }
    for (int binary = 0; binary < 2; binary++)
        csa_day_stats_free(&got[binary]);
    csa_day_stats_free(&src);
    free(init);
    free(packages);
    free(init_hex);
    free(packages_hex);
}
