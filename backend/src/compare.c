/* compare.c: see compare.h. */
#include "compare.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

void csa_sort_doubles(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_double);
}

double csa_percentile_sorted(const double *sorted, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

csa_quantile csa_quantile_of(const double *sorted, size_t n, double q)
{
    csa_quantile r = {NAN, NAN, NAN};
    if (n == 0)
        return r;
    r.value = csa_percentile_sorted(sorted, n, q);
    double spread = CSA_COMPARE_CONFIDENCE_Z * sqrt((double)n * q * (1.0 - q));
    double low_rank = floor((double)n * q - spread), high_rank = ceil((double)n * q + spread) + 1.0;
    if (low_rank < 1)
        low_rank = 1;
    if (high_rank > (double)n)
        high_rank = (double)n;
    r.low = sorted[(size_t)low_rank - 1];
    r.high = sorted[(size_t)high_rank - 1];
    if (r.low > r.value)
        r.low = r.value;
    if (r.high < r.value)
        r.high = r.value;
    return r;
}

static void u_test(double u, double nb, double nh, double tie_term, csa_comparison *out);

/* The U statistic of head against base, and its z and two-sided p (normal approximation with the
 * tie and continuity corrections). Both samples are sorted. */
static int mann_whitney(const double *base, size_t nb, const double *head, size_t nh, csa_comparison *out)
{
    double *ranks_head = malloc(nh * sizeof *ranks_head);
    if (!ranks_head)
        return -1;
    /* merge the two sorted samples, giving tied values their average rank */
    size_t i = 0, j = 0, rank = 0;
    double tie_term = 0;
    while (i < nb || j < nh) {
        double v = (j >= nh || (i < nb && base[i] <= head[j])) ? base[i] : head[j];
        size_t ib = i, jh = j;
        while (i < nb && base[i] == v)
            i++;
        while (j < nh && head[j] == v)
            j++;
        size_t t = (i - ib) + (j - jh);
        double average = (double)rank + ((double)t + 1.0) / 2.0;
        for (size_t k = jh; k < j; k++)
            ranks_head[k] = average;
        rank += t;
        tie_term += (double)t * (double)t * (double)t - (double)t;
    }
    double sum_head = 0;
    for (size_t k = 0; k < nh; k++)
        sum_head += ranks_head[k];
    free(ranks_head);
    u_test(sum_head - (double)nh * ((double)nh + 1.0) / 2.0, (double)nb, (double)nh, tie_term, out);
    return 0;
}

/* z and the two-sided p of U (normal approximation with the continuity correction). */
static void u_test(double u, double nb, double nh, double tie_term, csa_comparison *out)
{
    double n = nb + nh;
    double mean = nb * nh / 2.0;
    double var = nb * nh / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    out->u = u;
    if (var <= 0) { /* every value equal */
        out->z = 0;
        out->p_value = 1;
        return;
    }
    double d = u - mean;
    double corrected = d > 0.5 ? d - 0.5 : d < -0.5 ? d + 0.5 : 0;
    out->z = corrected / sqrt(var);
    out->p_value = erfc(fabs(out->z) / sqrt(2.0));
}

/* The medians' change, and the verdict once the quantiles and the test are set. */
static void set_change(csa_comparison *out)
{
    out->median_change_ms = out->head_p50.value - out->base_p50.value;
    out->median_change_pct = out->base_p50.value > 0 ? 100.0 * out->median_change_ms / out->base_p50.value : NAN;
}

static void set_verdict(csa_comparison *out)
{
    double change = out->median_change_ms;
    int large = fabs(change) >= CSA_COMPARE_MIN_ABS_MS &&
                fabs(change) >= CSA_COMPARE_MIN_RELATIVE * fabs(out->base_p50.value);
    if (out->p_value < CSA_COMPARE_ALPHA && large)
        out->verdict = change > 0 ? CSA_VERDICT_REGRESSION : CSA_VERDICT_IMPROVEMENT;
    else
        out->verdict = CSA_VERDICT_NO_CHANGE;
}

static void reset(csa_comparison *out, size_t n_base, size_t n_head)
{
    out->n_base = n_base;
    out->n_head = n_head;
    out->u = NAN;
    out->z = NAN;
    out->p_value = NAN;
    out->verdict = CSA_VERDICT_NOT_ENOUGH_DATA;
}

int csa_compare_samples(double *base, size_t n_base, double *head, size_t n_head, csa_comparison *out)
{
    csa_sort_doubles(base, n_base);
    csa_sort_doubles(head, n_head);
    reset(out, n_base, n_head);
    out->base_p50 = csa_quantile_of(base, n_base, 0.5);
    out->base_p95 = csa_quantile_of(base, n_base, 0.95);
    out->head_p50 = csa_quantile_of(head, n_head, 0.5);
    out->head_p95 = csa_quantile_of(head, n_head, 0.95);
    set_change(out);
    if (n_base < CSA_COMPARE_MIN_SAMPLES || n_head < CSA_COMPARE_MIN_SAMPLES)
        return 0;
    if (mann_whitney(base, n_base, head, n_head, out) < 0)
        return -1;
    set_verdict(out);
    return 0;
}

/* csa_quantile_of on a sketch: the same ranks, read from its buckets. */
static csa_quantile sketch_quantile(const csa_sketch *s, double q)
{
    csa_quantile r = {NAN, NAN, NAN};
    if (s->count == 0)
        return r;
    double n = (double)s->count;
    r.value = csa_sketch_quantile(s, q);
    double spread = CSA_COMPARE_CONFIDENCE_Z * sqrt(n * q * (1.0 - q));
    double low_rank = floor(n * q - spread), high_rank = ceil(n * q + spread) + 1.0;
    if (low_rank < 1)
        low_rank = 1;
    if (high_rank > n)
        high_rank = n;
    r.low = csa_sketch_value_at_rank(s, (uint64_t)low_rank - 1);
    r.high = csa_sketch_value_at_rank(s, (uint64_t)high_rank - 1);
    if (r.low > r.value)
        r.low = r.value;
    if (r.high < r.value)
        r.high = r.value;
    return r;
}

/* The count of bucket index i in s (0 outside its buckets). */
static uint64_t bucket_count(const csa_sketch *s, int64_t i)
{
    if (s->len == 0 || i < s->offset || i >= (int64_t)s->offset + (int64_t)s->len)
        return 0;
    return s->bins[i - s->offset];
}

void csa_compare_sketches(const csa_sketch *base, const csa_sketch *head, csa_comparison *out)
{
    reset(out, (size_t)base->count, (size_t)head->count);
    out->base_p50 = sketch_quantile(base, 0.5);
    out->base_p95 = sketch_quantile(base, 0.95);
    out->head_p50 = sketch_quantile(head, 0.5);
    out->head_p95 = sketch_quantile(head, 0.95);
    set_change(out);
    if (base->count < CSA_COMPARE_MIN_SAMPLES || head->count < CSA_COMPARE_MIN_SAMPLES)
        return;
    /* the buckets in value order (the zero bucket first), each one group of tied values with
     * the average of its ranks */
    double rank = 0, sum_head = 0, tie_term = 0;
    int64_t lo = 0, hi = -1;
    if (base->len > 0) {
        lo = base->offset;
        hi = (int64_t)base->offset + base->len - 1;
    }
    if (head->len > 0) {
        int64_t h_lo = head->offset, h_hi = (int64_t)head->offset + head->len - 1;
        if (hi < lo) {
            lo = h_lo;
            hi = h_hi;
        } else {
            lo = h_lo < lo ? h_lo : lo;
            hi = h_hi > hi ? h_hi : hi;
        }
    }
    for (int64_t i = lo - 1; i <= hi; i++) {
        /* lo - 1 stands for the zero bucket */
        double b = (double)(i < lo ? base->zero : bucket_count(base, i));
        double h = (double)(i < lo ? head->zero : bucket_count(head, i));
        double t = b + h;
        if (t == 0)
            continue;
        sum_head += h * (rank + (t + 1.0) / 2.0);
        rank += t;
        tie_term += t * t * t - t;
    }
    double nb = (double)base->count, nh = (double)head->count;
    u_test(sum_head - nh * (nh + 1.0) / 2.0, nb, nh, tie_term, out);
    set_verdict(out);
}

const char *csa_verdict_name(csa_verdict v)
{
    switch (v) {
    case CSA_VERDICT_NO_CHANGE: return "no change";
    case CSA_VERDICT_REGRESSION: return "regression";
    case CSA_VERDICT_IMPROVEMENT: return "improvement";
    case CSA_VERDICT_NOT_ENOUGH_DATA: break;
    }
    return "not enough data";
}
