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

/* The U statistic of head against base, and its z and two-sided p (normal approximation with the
 * tie and continuity corrections). Both samples are sorted. */
static int mann_whitney(const double *base, size_t nb, const double *head, size_t nh, csa_comparison *out)
{
    size_t n = nb + nh;
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
    double u = sum_head - (double)nh * ((double)nh + 1.0) / 2.0;
    double mean = (double)nb * (double)nh / 2.0;
    double var = (double)nb * (double)nh / 12.0 * (((double)n + 1.0) - tie_term / ((double)n * ((double)n - 1.0)));
    out->u = u;
    if (var <= 0) { /* every value equal */
        out->z = 0;
        out->p_value = 1;
        return 0;
    }
    double d = u - mean;
    double corrected = d > 0.5 ? d - 0.5 : d < -0.5 ? d + 0.5 : 0;
    out->z = corrected / sqrt(var);
    out->p_value = erfc(fabs(out->z) / sqrt(2.0));
    return 0;
}

int csa_compare_samples(double *base, size_t n_base, double *head, size_t n_head, csa_comparison *out)
{
    csa_sort_doubles(base, n_base);
    csa_sort_doubles(head, n_head);
    out->n_base = n_base;
    out->n_head = n_head;
    out->base_p50 = csa_quantile_of(base, n_base, 0.5);
    out->base_p95 = csa_quantile_of(base, n_base, 0.95);
    out->head_p50 = csa_quantile_of(head, n_head, 0.5);
    out->head_p95 = csa_quantile_of(head, n_head, 0.95);
    out->median_change_ms = out->head_p50.value - out->base_p50.value;
    out->median_change_pct = out->base_p50.value > 0 ? 100.0 * out->median_change_ms / out->base_p50.value : NAN;
    out->u = NAN;
    out->z = NAN;
    out->p_value = NAN;
    out->verdict = CSA_VERDICT_NOT_ENOUGH_DATA;
    if (n_base < CSA_COMPARE_MIN_SAMPLES || n_head < CSA_COMPARE_MIN_SAMPLES)
        return 0;
    if (mann_whitney(base, n_base, head, n_head, out) < 0)
        return -1;
    double change = out->median_change_ms;
    int large = fabs(change) >= CSA_COMPARE_MIN_ABS_MS &&
                fabs(change) >= CSA_COMPARE_MIN_RELATIVE * fabs(out->base_p50.value);
    if (out->p_value < CSA_COMPARE_ALPHA && large)
        out->verdict = change > 0 ? CSA_VERDICT_REGRESSION : CSA_VERDICT_IMPROVEMENT;
    else
        out->verdict = CSA_VERDICT_NO_CHANGE;
    return 0;
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
