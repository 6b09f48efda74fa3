/*
 * compare.h: the statistics behind GET /api/v1/functions/{id}/compare (deployments.c): quantiles
 * with a distribution-free interval, and the verdict between two samples of init durations.
 *
 * The verdict is decided by a two-sided Mann-Whitney U test (normal approximation with the tie
 * correction and a continuity correction), which assumes nothing about the shape of init times
 * (they are skewed, with a long tail). A difference is called a regression or an improvement only
 * when all of these hold: each side has at least CSA_COMPARE_MIN_SAMPLES cold starts (else "not
 * enough data"), p < CSA_COMPARE_ALPHA, and the medians differ by at least
 * CSA_COMPARE_MIN_RELATIVE of the base median and CSA_COMPARE_MIN_ABS_MS (a real but tiny shift
 * is "no change"). Everything here is pure: no allocation survives a call, no I/O.
 */
#ifndef CSA_COMPARE_H
#define CSA_COMPARE_H

#include "sketch.h"

#include <stddef.h>

#define CSA_COMPARE_MIN_SAMPLES 20        /* cold starts per side below which there is no verdict */
#define CSA_COMPARE_ALPHA 0.01            /* two-sided significance level of the U test */
#define CSA_COMPARE_MIN_RELATIVE 0.05     /* smallest median change called a change: 5 % ... */
#define CSA_COMPARE_MIN_ABS_MS 2.0        /* ... and 2 ms */
#define CSA_COMPARE_CONFIDENCE_Z 1.959964 /* 95 % intervals */

typedef enum csa_verdict {
    CSA_VERDICT_NOT_ENOUGH_DATA = 0,
    CSA_VERDICT_NO_CHANGE,
    CSA_VERDICT_REGRESSION,
    CSA_VERDICT_IMPROVEMENT,
} csa_verdict;

/* A quantile of a sample with its 95 % distribution-free confidence interval (order statistics:
 * the ranks n*q -+ z*sqrt(n*q*(1-q)), clamped to the sample). All NAN when n == 0. */
typedef struct csa_quantile {
    double value; /* linear interpolation, as PostgreSQL's percentile_cont */
    double low;   /* interval bounds: sample values */
    double high;
} csa_quantile;

typedef struct csa_comparison {
    size_t n_base, n_head;
    csa_quantile base_p50, base_p95, head_p50, head_p95;
    double median_change_ms;  /* head p50 - base p50 */
    double median_change_pct; /* relative to the base p50 (NAN when it is 0) */
    double u;                 /* Mann-Whitney U of head against base */
    double z;                 /* its standardised value (positive: head slower) */
    double p_value;           /* two-sided */
    csa_verdict verdict;
} csa_comparison;

/* Sorts v[0..n) ascending in place. */
void csa_sort_doubles(double *v, size_t n);

/* The q-quantile (0 <= q <= 1) of sorted[0..n) with its interval. */
csa_quantile csa_quantile_of(const double *sorted, size_t n, double q);

/* percentile_cont (PostgreSQL's interpolation) over n > 0 ascending values: the value alone. */
double csa_percentile_sorted(const double *sorted, size_t n, double q);

/* Compares two samples (sorted in place). Returns 0, or -1 when out of memory (ranks need
 * n_base + n_head doubles of scratch, freed before returning). */
int csa_compare_samples(double *base, size_t n_base, double *head, size_t n_head, csa_comparison *out);

/* The same comparison on two sketches (sketch.h) of the init durations: quantiles and their
 * intervals read at the same ranks from the sketches (each value within CSA_SKETCH_ALPHA), and
 * the U test on the values as the sketches hold them: one bucket is one tied value (the tie
 * correction counts them), so the test is exact for the bucketed values and keeps its level (two
 * samples of one distribution give buckets of one distribution). No allocation. */
void csa_compare_sketches(const csa_sketch *base, const csa_sketch *head, csa_comparison *out);

/* "regression", "improvement", "no change" or "not enough data". */
const char *csa_verdict_name(csa_verdict v);

#endif
