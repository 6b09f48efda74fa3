/* Unit tests for day_sketches.c: rows by kind, module timings as PostgreSQL prints them, merging
 * days, and the packages' encoding (round trip, truncated and corrupt encodings refused). */
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
