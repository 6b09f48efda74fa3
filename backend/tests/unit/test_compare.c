/* Unit tests for compare.c: quantiles with intervals, the Mann-Whitney U test and the verdict. */
#include "compare.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

/* A deterministic pseudo-random sample: median around `center`, spread `spread` (xorshift). */
static void sample(double *v, size_t n, double center, double spread, unsigned seed)
{
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = center + spread * ((double)(x % 10000) / 10000.0 - 0.5);
    }
}

Test(quantile, interpolates_like_percentile_cont_and_brackets_the_value)
{
    double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    csa_quantile q = csa_quantile_of(v, 10, 0.5);
    cr_assert_float_eq(q.value, 5.5, 1e-9);
    cr_assert(q.low <= 5 && q.high >= 6, "interval [%g, %g] brackets the median", q.low, q.high);
    cr_assert_float_eq(csa_quantile_of(v, 10, 0.95).value, 9.55, 1e-9);
    cr_assert_float_eq(csa_quantile_of(v, 1, 0.5).value, 1, 1e-9);
    cr_assert(isnan(csa_quantile_of(v, 0, 0.5).value));
}

Test(quantile, interval_narrows_with_more_data)
{
    static double small[50], big[5000];
    sample(small, 50, 100, 40, 1);
    sample(big, 5000, 100, 40, 2);
    csa_sort_doubles(small, 50);
    csa_sort_doubles(big, 5000);
    csa_quantile a = csa_quantile_of(small, 50, 0.5), b = csa_quantile_of(big, 5000, 0.5);
    cr_assert(b.high - b.low < (a.high - a.low) / 4, "5000: %g wide, 50: %g wide", b.high - b.low, a.high - a.low);
}

Test(compare, too_few_cold_starts_is_not_enough_data)
{
    double base[19], head[100];
    sample(base, 19, 100, 10, 3);
    sample(head, 100, 300, 10, 4);
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 19, head, 100, &c), 0);
    cr_assert_eq(c.verdict, CSA_VERDICT_NOT_ENOUGH_DATA, "even a tripling is no verdict on 19 cold starts");
    cr_assert_str_eq(csa_verdict_name(c.verdict), "not enough data");
    cr_assert_float_eq(c.median_change_ms, 200, 5);
}

Test(compare, same_distribution_is_no_change)
{
    static double base[400], head[400];
    sample(base, 400, 120, 60, 5);
    sample(head, 400, 120, 60, 6);
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 400, head, 400, &c), 0);
    cr_assert_eq(c.verdict, CSA_VERDICT_NO_CHANGE, "p=%g change=%g", c.p_value, c.median_change_ms);
    cr_assert(c.p_value > CSA_COMPARE_ALPHA);
}

Test(compare, shift_is_a_regression_and_its_reverse_an_improvement)
{
    double base[60], head[60];
    sample(base, 60, 100, 20, 7);
    sample(head, 60, 125, 20, 8);
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 60, head, 60, &c), 0);
    cr_assert_eq(c.verdict, CSA_VERDICT_REGRESSION, "p=%g", c.p_value);
    cr_assert(c.z > 0 && c.p_value < 1e-6);
    cr_assert_float_eq(c.median_change_ms, 25, 6);
    csa_comparison r;
    cr_assert_eq(csa_compare_samples(head, 60, base, 60, &r), 0);
    cr_assert_eq(r.verdict, CSA_VERDICT_IMPROVEMENT);
    cr_assert_float_eq(r.p_value, c.p_value, 1e-12, "the test is symmetric");
}

Test(compare, significant_but_tiny_shift_is_no_change)
{
    static double base[5000], head[5000];
    sample(base, 5000, 300, 4, 9);
    sample(head, 5000, 301, 4, 10); /* +1 ms: detectable on 5000 samples, below 2 ms and 5 % */
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 5000, head, 5000, &c), 0);
    cr_assert(c.p_value < CSA_COMPARE_ALPHA, "the shift is detectable (p=%g)", c.p_value);
    cr_assert_eq(c.verdict, CSA_VERDICT_NO_CHANGE);
}

Test(compare, ties_everywhere)
{
    double base[30], head[30];
    for (int i = 0; i < 30; i++)
        base[i] = head[i] = 50;
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 30, head, 30, &c), 0);
    cr_assert_eq(c.verdict, CSA_VERDICT_NO_CHANGE);
    cr_assert_float_eq(c.p_value, 1, 1e-12);
    cr_assert_float_eq(c.u, 450, 1e-9, "U = nb*nh/2 when all tie");
}

/* U against a hand-computed case: base {1,2,3}, head {4,5,6} ... with 20 each it is nb*nh. */
Test(compare, u_statistic_extremes)
{
    double base[20], head[20];
    for (int i = 0; i < 20; i++) {
        base[i] = i;
        head[i] = 100 + i;
    }
    csa_comparison c;
    cr_assert_eq(csa_compare_samples(base, 20, head, 20, &c), 0);
    cr_assert_float_eq(c.u, 400, 1e-9, "head entirely above base: U = nb*nh");
    cr_assert_eq(c.verdict, CSA_VERDICT_REGRESSION);
}

/* ---- the same test on sketches (csa_compare_sketches) ---------------------------------------- */

static void sketch_of(csa_sketch *s, const double *v, size_t n)
{
    csa_sketch_init(s);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(csa_sketch_add(s, v[i]), 0);
}

/* The sketch answers as the samples do: quantiles within 1 %, the same verdicts, p close. */
Test(compare_sketches, agree_with_the_samples)
{
    static double base[400], head[400];
    const struct {
        double center_b, center_h, spread;
        size_t n;
    } cases[] = {{120, 120, 60, 400}, {100, 125, 20, 60}, {300, 301, 4, 400}, {100, 300, 10, 19}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = cases[k].n;
        sample(base, n, cases[k].center_b, cases[k].spread, 20 + (unsigned)k);
        sample(head, n, cases[k].center_h, cases[k].spread, 40 + (unsigned)k);
        csa_sketch sb, sh;
        sketch_of(&sb, base, n);
        sketch_of(&sh, head, n);
        csa_comparison e, s;
        cr_assert_eq(csa_compare_samples(base, n, head, n, &e), 0);
        csa_compare_sketches(&sb, &sh, &s);
        cr_assert_eq(s.verdict, e.verdict, "case %zu: %s vs %s (p %g vs %g)", k, csa_verdict_name(s.verdict),
                     csa_verdict_name(e.verdict), s.p_value, e.p_value);
        cr_assert_eq(s.n_base, n);
        cr_assert_eq(s.n_head, n);
        double q[][2] = {{s.base_p50.value, e.base_p50.value}, {s.head_p95.value, e.head_p95.value}};
        for (int j = 0; j < 2; j++)
            cr_assert(fabs(q[j][0] - q[j][1]) <= 0.01 * q[j][1], "case %zu: %g vs %g", k, q[j][0], q[j][1]);
        cr_assert(s.base_p50.low <= s.base_p50.value && s.base_p50.value <= s.base_p50.high);
        if (e.verdict != CSA_VERDICT_NOT_ENOUGH_DATA && e.p_value > 1e-6)
            cr_assert(fabs(log(s.p_value / e.p_value)) < 1.0, "case %zu: p %g vs %g", k, s.p_value, e.p_value);
        csa_sketch_free(&sb);
        csa_sketch_free(&sh);
    }
}

/* Buckets are tied values: all in one bucket is U = nb*nh/2 and p = 1; apart, U = nb*nh. */
Test(compare_sketches, ties_and_extremes)
{
    double base[30], head[30];
    for (int i = 0; i < 30; i++) {
        base[i] = 50;
        head[i] = 50.1; /* the same 1 % bucket */
    }
    csa_sketch sb, sh;
    sketch_of(&sb, base, 30);
    sketch_of(&sh, head, 30);
    csa_comparison c;
    csa_compare_sketches(&sb, &sh, &c);
    cr_assert_float_eq(c.u, 450, 1e-9);
    cr_assert_float_eq(c.p_value, 1, 1e-12);
    cr_assert_eq(c.verdict, CSA_VERDICT_NO_CHANGE);
    csa_sketch_free(&sh);
    for (int i = 0; i < 30; i++)
        head[i] = 100 + i;
    sketch_of(&sh, head, 30);
    csa_compare_sketches(&sb, &sh, &c);
    cr_assert_float_eq(c.u, 900, 1e-9, "head entirely above base: U = nb*nh");
    cr_assert_eq(c.verdict, CSA_VERDICT_REGRESSION);
    csa_compare_sketches(&sh, &sb, &c);
    cr_assert_float_eq(c.u, 0, 1e-9);
    cr_assert_eq(c.verdict, CSA_VERDICT_IMPROVEMENT);
    /* values under the sketch's smallest (the zero bucket) rank first */
    csa_sketch z;
    csa_sketch_init(&z);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(csa_sketch_add(&z, 0), 0);
    csa_compare_sketches(&z, &sb, &c);
    cr_assert_float_eq(c.u, 900, 1e-9);
    csa_sketch empty;
    csa_sketch_init(&empty);
    csa_compare_sketches(&empty, &sb, &c);
    cr_assert_eq(c.verdict, CSA_VERDICT_NOT_ENOUGH_DATA);
    cr_assert(isnan(c.base_p50.value));
    csa_sketch_free(&sb);
    csa_sketch_free(&sh);
    csa_sketch_free(&z);
}
