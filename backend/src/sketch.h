/*
 * sketch.h: a mergeable quantile sketch (DDSketch: Masson, Rim, Lee, VLDB 2019) for init durations
 * and module self times (issue 17), so that a window's percentiles merge per-day sketches instead
 * of reading every cold start.
 *
 * A value v >= CSA_SKETCH_MIN_VALUE goes to bucket i = ceil(log(v) / log(gamma)), gamma =
 * (1 + a) / (1 - a), a = CSA_SKETCH_ALPHA; a bucket answers 2 gamma^i / (gamma + 1), within a
 * relative a of every value it holds. Values below CSA_SKETCH_MIN_VALUE (0, negatives) are counted
 * in a zero bucket and answer 0 (an absolute error under CSA_SKETCH_MIN_VALUE). At most
 * CSA_SKETCH_MAX_BUCKETS consecutive buckets are kept: past that the lowest ones are collapsed into
 * the lowest kept one (their values answer too high; never happens for durations between 1 us and
 * 12 minutes). Quantiles interpolate between order statistics like PostgreSQL's percentile_cont,
 * so they are within a of percentile_cont over the same values, and clamped to the exact min/max.
 * Merging adds bucket counts: the merge of two sketches is the sketch of the union.
 * Ownership: csa_sketch_init/csa_sketch_free pair; encodings are malloc'd, the caller frees.
 */
#ifndef CSA_SKETCH_H
#define CSA_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define CSA_SKETCH_ALPHA 0.01       /* relative accuracy */
#define CSA_SKETCH_MIN_VALUE 0.001  /* smaller values count in the zero bucket (ms: 1 us) */
#define CSA_SKETCH_MAX_BUCKETS 1024 /* consecutive buckets kept: a factor 7e8 between lowest and highest */
#define CSA_SKETCH_MAX_INDEX 100000 /* |bucket index| accepted when decoding (log(1e308)/log(gamma) < 36000) */

typedef struct csa_sketch {
    uint64_t *bins;       /* bins[k]: count of bucket offset + k; NULL while empty */
    int32_t offset;       /* bucket index of bins[0] */
    uint32_t len;         /* buckets in use, from offset */
    uint32_t cap;         /* allocated */
    uint64_t zero;        /* values below CSA_SKETCH_MIN_VALUE */
    uint64_t count;       /* all values: zero + the buckets */
    double sum, min, max; /* of the values added (min/max: meaningful when count > 0) */
} csa_sketch;

void csa_sketch_init(csa_sketch *s);
void csa_sketch_free(csa_sketch *s); /* frees the buckets; s is empty again */

/* Adds v (NaN and infinities are refused). Returns 0, or -1 (not finite, out of memory: s unchanged). */
int csa_sketch_add(csa_sketch *s, double v);

/* Adds every value of src to dst. Returns 0, or -1 when out of memory (dst unchanged). */
int csa_sketch_merge(csa_sketch *dst, const csa_sketch *src);

/* The rank-th smallest value (0-based, rank < count) as the sketch knows it: its bucket's value
 * (within CSA_SKETCH_ALPHA), clamped to the exact min and max; NaN when empty. */
double csa_sketch_value_at_rank(const csa_sketch *s, uint64_t rank);

/* The q-quantile (0 <= q <= 1) as percentile_cont would interpolate it; NaN when empty. */
double csa_sketch_quantile(const csa_sketch *s, double q);

/* The compact binary form (versioned; a few bytes per non-empty bucket): a new buffer in *out
 * (caller frees) of *len bytes. Returns 0, or -1 when out of memory. */
int csa_sketch_encode(const csa_sketch *s, unsigned char **out, size_t *len);

/* Reads an encoding into s (initialised by the caller, replaced). Returns the bytes read, or -1
 * when buf is not a whole valid encoding (truncated, bad version, inconsistent counts, too many
 * buckets): s is then empty. With `exact` the encoding must fill buf (no trailing bytes). */
long csa_sketch_decode(csa_sketch *s, const unsigned char *buf, size_t len, int exact);

/* Adds the values of an encoding to dst without decoding it into a sketch of its own (one
 * allocation at most: dst grows once to cover the encoding's buckets). Returns the bytes read, or
 * -1 when buf is not a whole valid encoding (as csa_sketch_decode; dst is then unchanged). */
long csa_sketch_decode_merge(csa_sketch *dst, const unsigned char *buf, size_t len, int exact);

/* Varint helpers shared with the other encodings built on sketches (rollup_sketches.c). */
size_t csa_varint_put(unsigned char *p, uint64_t v);                                /* p: >= 10 bytes */
int csa_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v); /* 0 or -1 */
/* A finite double as 8 little-endian bytes (the encodings' sums). */
size_t csa_double_put(unsigned char *p, double d);                                /* p: >= 8 bytes */
int csa_double_get(const unsigned char **p, const unsigned char *end, double *d); /* 0 or -1 */

#endif
