/* Unit tests for sketch.c: quantiles within 1 % of exact ones, merge = sketch of the union, the
 * binary encoding (round trip, bounded size, bad and truncated encodings refused). */
#include "sketch.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A fixed pseudo-random sequence (xorshift64*), uniform in (0, 1). */
static double uniform(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return ((double)((*state * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* percentile_cont over sorted values */
static double exact_quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

typedef double (*draw_fn)(uint64_t *);

static double draw_uniform(uint64_t *s) { return 1 + 999 * uniform(s); }
static double draw_lognormal(uint64_t *s)
{
    double u1 = uniform(s), u2 = uniform(s); /* Box-Muller */
    return exp(5.0 + 1.2 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}
static double draw_exponential(uint64_t *s) { return -200.0 * log(uniform(s)); }
/* module self times: many tiny values (some under the zero bucket's bound), a heavy tail */
static double draw_module(uint64_t *s)
{
    double u = uniform(s);
    return u < 0.1 ? 0 : u < 0.2 ? uniform(s) * 0.01 : exp(3 + uniform(s) * 2.5);
}

static void check_distribution(draw_fn draw, size_t n, uint64_t seed)
{
    double *v = malloc(n * sizeof *v);
    csa_sketch s;
    csa_sketch_init(&s);
    for (size_t i = 0; i < n; i++) {
        v[i] = draw(&seed);
        cr_assert_eq(csa_sketch_add(&s, v[i]), 0);
    }
    qsort(v, n, sizeof *v, cmp_double);
    static const double qs[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        double want = exact_quantile(v, n, qs[k]), got = csa_sketch_quantile(&s, qs[k]);
        /* 1 % relative, or under CSA_SKETCH_MIN_VALUE for values in the zero bucket */
        cr_expect(fabs(got - want) <= CSA_SKETCH_ALPHA * want + 1e-9 || fabs(got - want) < CSA_SKETCH_MIN_VALUE,
                  "n=%zu q=%g: sketch %.6f, exact %.6f (error %.4f %%)", n, qs[k], got, want,
                  100 * fabs(got - want) / want);
    }
    cr_expect_eq(s.count, n);
    free(v);
    csa_sketch_free(&s);
}

Test(sketch, quantiles_within_one_percent_of_exact)
{
    size_t sizes[] = {1, 2, 3, 10, 120, 1000, 12000, 100000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_distribution(draw_uniform, sizes[k], 1 + k);
        check_distribution(draw_lognormal, sizes[k], 11 + k);
        check_distribution(draw_exponential, sizes[k], 21 + k);
        check_distribution(draw_module, sizes[k], 31 + k);
    }
}

Test(sketch, empty_and_constant)
{
    csa_sketch s;
    csa_sketch_init(&s);
    cr_expect(isnan(csa_sketch_quantile(&s, 0.5)));
    for (int i = 0; i < 50; i++)
        csa_sketch_add(&s, 1234.5);
    /* clamped to the exact min and max: a constant comes back exactly */
    cr_expect_eq(csa_sketch_quantile(&s, 0.5), 1234.5);
    cr_expect_eq(csa_sketch_quantile(&s, 0.99), 1234.5);
    cr_expect(isnan(csa_sketch_quantile(&s, 1.5)));
    cr_expect_eq(csa_sketch_add(&s, NAN), -1);
    cr_expect_eq(csa_sketch_add(&s, INFINITY), -1);
    cr_expect_eq(s.count, 50);
    csa_sketch_free(&s);
}

static void expect_same(const csa_sketch *a, const csa_sketch *b)
{
    cr_expect_eq(a->count, b->count);
    cr_expect_eq(a->zero, b->zero);
    cr_expect_eq(a->min, b->min);
    cr_expect_eq(a->max, b->max);
    cr_expect(fabs(a->sum - b->sum) <= 1e-9 * fabs(b->sum));
    for (double q = 0; q <= 1.0; q += 0.01)
        cr_expect_eq(csa_sketch_quantile(a, q), csa_sketch_quantile(b, q), "q=%g", q);
    unsigned char *ea, *eb;
    size_t la, lb;
    cr_assert_eq(csa_sketch_encode(a, &ea, &la), 0);
    cr_assert_eq(csa_sketch_encode(b, &eb, &lb), 0);
    /* identical buckets (the sums may differ in the last bits: addition order) */
    cr_expect_eq(la, lb);
    free(ea);
    free(eb);
}

Test(sketch, merge_is_the_sketch_of_the_union)
{
    uint64_t seed = 7;
    csa_sketch parts[5], merged, all;
    csa_sketch_init(&merged);
    csa_sketch_init(&all);
    for (int p = 0; p < 5; p++) {
        csa_sketch_init(&parts[p]);
        /* days with different distributions, one of them empty */
        for (int i = 0; p != 3 && i < 300 * (p + 1); i++) {
            double v = p == 4 ? draw_module(&seed) : draw_lognormal(&seed) * (p + 1);
            csa_sketch_add(&parts[p], v);
            csa_sketch_add(&all, v);
        }
    }
    for (int p = 0; p < 5; p++)
        cr_assert_eq(csa_sketch_merge(&merged, &parts[p]), 0);
    expect_same(&merged, &all);
    /* merging in another order gives the same */
    csa_sketch other;
    csa_sketch_init(&other);
    for (int p = 4; p >= 0; p--)
        csa_sketch_merge(&other, &parts[p]);
    expect_same(&other, &all);
    for (int p = 0; p < 5; p++)
        csa_sketch_free(&parts[p]);
    csa_sketch_free(&merged);
    csa_sketch_free(&all);
    csa_sketch_free(&other);
}

Test(sketch, encode_decode_round_trip)
{
    uint64_t seed = 3;
    csa_sketch s, back;
    csa_sketch_init(&s);
    csa_sketch_init(&back);
    for (int i = 0; i < 5000; i++)
        csa_sketch_add(&s, draw_module(&seed));
    unsigned char *buf;
    size_t len;
    cr_assert_eq(csa_sketch_encode(&s, &buf, &len), 0);
    cr_assert_eq(csa_sketch_decode(&back, buf, len, 1), (long)len);
    expect_same(&back, &s);
    cr_expect_eq(back.sum, s.sum);
    /* a few bytes per non-empty bucket, not per value */
    cr_expect_lt(len, 4 * (size_t)s.len + 40, "%zu bytes for %u buckets", len, s.len);
    free(buf);
    /* the empty sketch too */
    csa_sketch_free(&s);
    cr_assert_eq(csa_sketch_encode(&s, &buf, &len), 0);
    cr_expect_eq(csa_sketch_decode(&back, buf, len, 1), (long)len);
    cr_expect_eq(back.count, 0);
    free(buf);
    csa_sketch_free(&back);
}

Test(sketch, size_is_bounded_by_collapsing_the_lowest_buckets)
{
    csa_sketch s;
    csa_sketch_init(&s);
    /* values from 1 us to 1e12 ms: more buckets than kept */
    for (double v = 0.001; v < 1e12; v *= 1.01)
        csa_sketch_add(&s, v);
    cr_expect_leq(s.len, CSA_SKETCH_MAX_BUCKETS);
    unsigned char *buf;
    size_t len;
    cr_assert_eq(csa_sketch_encode(&s, &buf, &len), 0);
    cr_expect_leq(len, 2 + 30 + 24 + (size_t)CSA_SKETCH_MAX_BUCKETS * 11);
    /* the high quantiles keep their accuracy; only the collapsed low end answers too high */
    double p99 = csa_sketch_quantile(&s, 0.99);
    double want = 0.001 * pow(1.01, 0.99 * (double)(s.count - 1));
    cr_expect(fabs(p99 - want) <= 0.011 * want, "p99 %g vs %g", p99, want);
    cr_expect_eq(csa_sketch_quantile(&s, 0), 0.001); /* the exact min */
    csa_sketch back;
    csa_sketch_init(&back);
    cr_expect_eq(csa_sketch_decode(&back, buf, len, 1), (long)len);
    cr_expect_eq(csa_sketch_quantile(&back, 0.99), p99);
    /* merging two wide sketches stays bounded */
    cr_expect_eq(csa_sketch_merge(&back, &s), 0);
    cr_expect_leq(back.len, CSA_SKETCH_MAX_BUCKETS);
    cr_expect_eq(back.count, 2 * s.count);
    free(buf);
    csa_sketch_free(&s);
    csa_sketch_free(&back);
}

Test(sketch, bad_and_truncated_encodings_are_refused)
{
    csa_sketch s, back;
    csa_sketch_init(&s);
    csa_sketch_init(&back);
    for (int i = 1; i <= 200; i++)
        csa_sketch_add(&s, i * 3.7);
    unsigned char *buf;
    size_t len;
    cr_assert_eq(csa_sketch_encode(&s, &buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++)
        cr_expect_eq(csa_sketch_decode(&back, buf, cut, 0), -1, "truncated to %zu of %zu bytes", cut, len);
    cr_expect_eq(back.count, 0);
    /* trailing bytes: refused when the encoding must fill the buffer */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    cr_expect_eq(csa_sketch_decode(&back, longer, len + 1, 1), -1);
    cr_expect_eq(csa_sketch_decode(&back, longer, len + 1, 0), (long)len);
    free(longer);
    unsigned char *bad = malloc(len);
    /* wrong magic, an unknown version */
    memcpy(bad, buf, len);
    bad[0] ^= 0xff;
    cr_expect_eq(csa_sketch_decode(&back, bad, len, 1), -1);
    memcpy(bad, buf, len);
    bad[1] = 99;
    cr_expect_eq(csa_sketch_decode(&back, bad, len, 1), -1);
    /* a total that does not match the buckets (count is the varint at byte 2: 200 = 0xc8 0x01) */
    memcpy(bad, buf, len);
    cr_assert_eq(bad[2], 0xc8);
    bad[2] = 0xc9;
    cr_expect_eq(csa_sketch_decode(&back, bad, len, 1), -1);
    /* a NaN sum (bytes 5..12) */
    memcpy(bad, buf, len);
    memset(bad + 5, 0xff, 8);
    cr_expect_eq(csa_sketch_decode(&back, bad, len, 1), -1);
    /* every single-byte corruption either decodes to a consistent sketch or is refused */
    for (size_t k = 0; k < len; k++) {
        memcpy(bad, buf, len);
        bad[k] ^= 0x5a;
        long r = csa_sketch_decode(&back, bad, len, 1);
        if (r >= 0) {
            uint64_t total = back.zero;
            for (uint32_t b = 0; b < back.len; b++)
                total += back.bins[b];
            cr_expect_eq(total, back.count);
            cr_expect_leq(back.len, CSA_SKETCH_MAX_BUCKETS);
        }
    }
    /* a bucket span wider than the bound */
    unsigned char wide[64], *p = wide;
    *p++ = 0xD5;
    *p++ = 1;
    p += csa_varint_put(p, 2);
    p += csa_varint_put(p, 0);
    double d[3] = {2, 1, 1e300};
    for (int k = 0; k < 3; k++) {
        memcpy(p, &d[k], 8); /* little-endian host, as the tests' machines */
        p += 8;
    }
    p += csa_varint_put(p, 2);
    p += csa_varint_put(p, 0);
    p += csa_varint_put(p, 1);
    p += csa_varint_put(p, CSA_SKETCH_MAX_BUCKETS + 5);
    p += csa_varint_put(p, 1);
    cr_expect_eq(csa_sketch_decode(&back, wide, (size_t)(p - wide), 1), -1);
    free(bad);
    free(buf);
    csa_sketch_free(&s);
    csa_sketch_free(&back);
}

/* Merging an encoding (csa_sketch_decode_merge) is decoding it and merging: the same sketch, and
 * an invalid encoding leaves the destination as it was. */
Test(sketch, decode_merge_is_decode_then_merge)
{
    uint64_t seed = 11;
    csa_sketch a, b, expected, got;
    csa_sketch_init(&a);
    csa_sketch_init(&b);
    csa_sketch_init(&expected);
    csa_sketch_init(&got);
    for (int i = 0; i < 3000; i++)
        csa_sketch_add(&a, draw_module(&seed));
    for (int i = 0; i < 2000; i++)
        csa_sketch_add(&b, 1000 * draw_module(&seed)); /* buckets above and overlapping a's */
    csa_sketch_add(&b, 0);                             /* and the zero bucket */
    unsigned char *buf;
    size_t len;
    cr_assert_eq(csa_sketch_encode(&b, &buf, &len), 0);
    cr_assert_eq(csa_sketch_merge(&expected, &a), 0);
    cr_assert_eq(csa_sketch_merge(&expected, &b), 0);
    cr_assert_eq(csa_sketch_merge(&got, &a), 0);
    cr_assert_eq(csa_sketch_decode_merge(&got, buf, len, 1), (long)len);
    expect_same(&got, &expected);
    cr_expect_eq(got.zero, expected.zero);
    cr_expect_float_eq(got.sum, expected.sum, 1e-9 * fabs(expected.sum));
    /* into an empty sketch: the decoded one */
    csa_sketch empty;
    csa_sketch_init(&empty);
    cr_assert_eq(csa_sketch_decode_merge(&empty, buf, len, 1), (long)len);
    expect_same(&empty, &b);
    /* truncated, trailing bytes with exact, a bad version: refused, the destination unchanged */
    uint64_t count = got.count;
    double sum = got.sum;
    cr_expect_eq(csa_sketch_decode_merge(&got, buf, len - 1, 1), -1);
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    cr_expect_eq(csa_sketch_decode_merge(&got, longer, len + 1, 1), -1);
    cr_expect_eq(csa_sketch_decode_merge(&got, longer, len + 1, 0), (long)len, "not exact: the bytes read");
    got.count -= b.count; /* undo the accepted one */
    got.sum = sum;
    longer[1] = 99;
    cr_expect_eq(csa_sketch_decode_merge(&got, longer, len, 1), -1);
    cr_expect_eq(got.count, count);
    free(longer);
    free(buf);
    csa_sketch_free(&a);
    csa_sketch_free(&b);
    csa_sketch_free(&expected);
    csa_sketch_free(&got);
    csa_sketch_free(&empty);
}
