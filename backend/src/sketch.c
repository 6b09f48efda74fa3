/* sketch.c: see sketch.h. */
#include "sketch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SKETCH_MAGIC 0xD5
#define SKETCH_VERSION 1

static double log_gamma(void)
{
    static double lg;
    if (lg == 0)
        lg = log((1.0 + CSA_SKETCH_ALPHA) / (1.0 - CSA_SKETCH_ALPHA));
    return lg;
}

static int32_t bucket_index(double v) { return (int32_t)ceil(log(v) / log_gamma()); }

/* The value a bucket answers: within CSA_SKETCH_ALPHA of every value in (gamma^(i-1), gamma^i]. */
static double bucket_value(int32_t i)
{
    double gamma = exp(log_gamma());
    return 2.0 * exp((double)i * log_gamma()) / (gamma + 1.0);
}

void csa_sketch_init(csa_sketch *s) { memset(s, 0, sizeof *s); }

void csa_sketch_free(csa_sketch *s)
{
    free(s->bins);
    csa_sketch_init(s);
}

/* Makes the buckets cover [lo, hi] (indexes), collapsing the lowest when the span would pass
 * CSA_SKETCH_MAX_BUCKETS: buckets below the new lowest add into it. Returns 0 or -1 (unchanged). */
static int fit(csa_sketch *s, int32_t lo, int32_t hi)
{
    if (s->len > 0) {
        int32_t cur_hi = s->offset + (int32_t)s->len - 1;
        if (lo >= s->offset && hi <= cur_hi)
            return 0;
        if (s->offset < lo)
            lo = s->offset;
        if (cur_hi > hi)
            hi = cur_hi;
    }
    if ((int64_t)hi - lo + 1 > CSA_SKETCH_MAX_BUCKETS)
        lo = hi - CSA_SKETCH_MAX_BUCKETS + 1;
    uint32_t len = (uint32_t)(hi - lo + 1);
    if (s->len > 0 && lo == s->offset && len <= s->cap) { /* grows upwards in place */
        memset(s->bins + s->len, 0, (len - s->len) * sizeof *s->bins);
        s->len = len;
        return 0;
    }
    uint32_t cap = len + 16 > CSA_SKETCH_MAX_BUCKETS ? len : len + 16;
    uint64_t *bins = calloc(cap, sizeof *bins);
    if (!bins)
        return -1;
    for (uint32_t k = 0; k < s->len; k++) {
        int32_t i = s->offset + (int32_t)k;
        bins[i < lo ? 0 : i - lo] += s->bins[k];
    }
    free(s->bins);
    s->bins = bins;
    s->offset = lo;
    s->len = len;
    s->cap = cap;
    return 0;
}

/* The slot of bucket i once fit() covered it (collapsed buckets land in the lowest). */
static uint32_t slot(const csa_sketch *s, int32_t i) { return i < s->offset ? 0 : (uint32_t)(i - s->offset); }

static void note_value(csa_sketch *s, double v, uint64_t n)
{
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (s->count == 0 || v > s->max)
        s->max = v;
    s->count += n;
}

int csa_sketch_add(csa_sketch *s, double v)
{
    if (!isfinite(v))
        return -1;
    if (v < CSA_SKETCH_MIN_VALUE) {
        s->zero++;
    } else {
        int32_t i = bucket_index(v);
        if (fit(s, i, i) < 0)
            return -1;
        s->bins[slot(s, i)]++;
    }
    s->sum += v;
    note_value(s, v, 1);
    return 0;
}

int csa_sketch_merge(csa_sketch *dst, const csa_sketch *src)
{
    if (src->count == 0)
        return 0;
    if (src->len > 0 && fit(dst, src->offset, src->offset + (int32_t)src->len - 1) < 0)
        return -1;
    for (uint32_t k = 0; k < src->len; k++)
        dst->bins[slot(dst, src->offset + (int32_t)k)] += src->bins[k];
    dst->zero += src->zero;
    dst->sum += src->sum;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    return 0;
}

/* The value of the rank-th smallest (0-based) as the sketch knows it, clamped to [min, max]. */
double csa_sketch_value_at_rank(const csa_sketch *s, uint64_t rank)
{
    if (s->count == 0)
        return NAN;
    if (rank == 0)
        return s->min;
    if (rank >= s->count - 1)
        return s->max;
    double v = 0;
    if (rank >= s->zero) {
        uint64_t seen = s->zero;
        for (uint32_t k = 0; k < s->len; k++) {
            seen += s->bins[k];
            if (seen > rank) {
                v = bucket_value(s->offset + (int32_t)k);
                break;
            }
        }
    }
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

double csa_sketch_quantile(const csa_sketch *s, double q)
{
    if (s->count == 0 || !(q >= 0 && q <= 1))
        return NAN;
    double pos = q * (double)(s->count - 1);
    uint64_t lo = (uint64_t)floor(pos), hi = (uint64_t)ceil(pos);
    double a = csa_sketch_value_at_rank(s, lo);
    if (hi == lo)
        return a;
    double b = csa_sketch_value_at_rank(s, hi);
    return a + (b - a) * (pos - (double)lo);
}

/* ---- encoding ----------------------------------------------------------------------------
 * magic, version, varint count, varint zero; when count > 0: sum, min, max (8 bytes each, IEEE
 * little-endian), varint number of non-empty buckets, then per bucket: the first one's index
 * (zigzag varint), each next one's gap to the previous minus one (varint), and its count (varint).
 */

size_t csa_varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

int csa_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        if (shift == 63 && b > 1)
            return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

size_t csa_double_put(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(u >> (8 * k));
    return 8;
}

int csa_double_get(const unsigned char **p, const unsigned char *end, double *d)
{
    if (end - *p < 8)
        return -1;
    uint64_t u = 0;
    for (int k = 0; k < 8; k++)
        u |= (uint64_t)(*p)[k] << (8 * k);
    *p += 8;
    memcpy(d, &u, sizeof u);
    return isfinite(*d) ? 0 : -1;
}

int csa_sketch_encode(const csa_sketch *s, unsigned char **out, size_t *len)
{
    size_t cap = 2 + 3 * 10 + 3 * 8 + (size_t)s->len * 20;
    unsigned char *buf = malloc(cap), *p = buf;
    if (!buf)
        return -1;
    *p++ = SKETCH_MAGIC;
    *p++ = SKETCH_VERSION;
    p += csa_varint_put(p, s->count);
    p += csa_varint_put(p, s->zero);
    if (s->count > 0) {
        p += csa_double_put(p, s->sum);
        p += csa_double_put(p, s->min);
        p += csa_double_put(p, s->max);
        uint64_t nonempty = 0;
        for (uint32_t k = 0; k < s->len; k++)
            nonempty += s->bins[k] > 0;
        p += csa_varint_put(p, nonempty);
        int32_t prev = 0;
        int first = 1;
        for (uint32_t k = 0; k < s->len; k++) {
            if (!s->bins[k])
                continue;
            int32_t i = s->offset + (int32_t)k;
            if (first) {
                uint64_t zz = i < 0 ? ((uint64_t)(-(int64_t)i) << 1) - 1 : (uint64_t)i << 1;
                p += csa_varint_put(p, zz);
                first = 0;
            } else {
                p += csa_varint_put(p, (uint64_t)(i - prev - 1));
            }
            p += csa_varint_put(p, s->bins[k]);
            prev = i;
        }
    }
    *out = buf;
    *len = (size_t)(p - buf);
    return 0;
}

long csa_sketch_decode(csa_sketch *s, const unsigned char *buf, size_t len, int exact)
{
    csa_sketch_free(s);
    const unsigned char *p = buf, *end = buf + len;
    uint64_t count, zero, nonempty = 0;
    if (len < 2 || p[0] != SKETCH_MAGIC || p[1] != SKETCH_VERSION)
        return -1;
    p += 2;
    if (csa_varint_get(&p, end, &count) < 0 || csa_varint_get(&p, end, &zero) < 0 || zero > count)
        goto bad;
    s->count = count;
    s->zero = zero;
    if (count > 0) {
        if (csa_double_get(&p, end, &s->sum) < 0 || csa_double_get(&p, end, &s->min) < 0 ||
            csa_double_get(&p, end, &s->max) < 0 || s->min > s->max || csa_varint_get(&p, end, &nonempty) < 0 ||
            nonempty > CSA_SKETCH_MAX_BUCKETS)
            goto bad;
        uint64_t total = zero;
        int64_t index = 0;
        for (uint64_t b = 0; b < nonempty; b++) {
            uint64_t v, n;
            if (csa_varint_get(&p, end, &v) < 0 || csa_varint_get(&p, end, &n) < 0 || n == 0)
                goto bad;
            if (b == 0)
                index = (v & 1) ? -(int64_t)((v + 1) >> 1) : (int64_t)(v >> 1);
            else if (v > 2 * CSA_SKETCH_MAX_INDEX)
                goto bad;
            else
                index += (int64_t)v + 1;
            if (index < -CSA_SKETCH_MAX_INDEX || index > CSA_SKETCH_MAX_INDEX)
                goto bad;
            if (b == 0) {
                s->offset = (int32_t)index;
            } else if (index - s->offset + 1 > CSA_SKETCH_MAX_BUCKETS) {
                goto bad;
            }
            if (fit(s, (int32_t)index, (int32_t)index) < 0)
                goto bad;
            if (n > count - total)
                goto bad;
            total += n;
            s->bins[slot(s, (int32_t)index)] += n;
        }
        if (total != count)
            goto bad;
    }
    if (exact && p != end)
        goto bad;
    return (long)(p - buf);
bad:
    csa_sketch_free(s);
    return -1;
}

/* csa_varint_get with the common one-byte case inline (bucket gaps and counts are mostly < 128) */
static inline int varint_next(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    if (*p < end && !(**p & 0x80)) {
        *v = *(*p)++;
        return 0;
    }
    return csa_varint_get(p, end, v);
}

long csa_sketch_decode_merge(csa_sketch *dst, const unsigned char *buf, size_t len, int exact)
{
    const unsigned char *p = buf, *end = buf + len;
    uint64_t count, zero, nonempty = 0;
    double sum = 0, min = 0, max = 0;
    if (len < 2 || buf[0] != SKETCH_MAGIC || buf[1] != SKETCH_VERSION)
        return -1;
    p += 2;
    if (csa_varint_get(&p, end, &count) < 0 || csa_varint_get(&p, end, &zero) < 0 || zero > count)
        return -1;
    /* the buckets as read (one pass: validated here, added to dst once all of them are valid) */
    int32_t index_of[CSA_SKETCH_MAX_BUCKETS];
    uint64_t count_of[CSA_SKETCH_MAX_BUCKETS];
    if (count > 0) {
        if (csa_double_get(&p, end, &sum) < 0 || csa_double_get(&p, end, &min) < 0 ||
            csa_double_get(&p, end, &max) < 0 || min > max || csa_varint_get(&p, end, &nonempty) < 0 ||
            nonempty > CSA_SKETCH_MAX_BUCKETS)
            return -1;
        uint64_t total = zero;
        int64_t index = 0, lo = 0;
        for (uint64_t b = 0; b < nonempty; b++) {
            uint64_t v, n;
            if (varint_next(&p, end, &v) < 0 || varint_next(&p, end, &n) < 0 || n == 0)
                return -1;
            if (b == 0)
                index = (v & 1) ? -(int64_t)((v + 1) >> 1) : (int64_t)(v >> 1);
            else if (v > 2 * CSA_SKETCH_MAX_INDEX)
                return -1;
            else
                index += (int64_t)v + 1;
            if (index < -CSA_SKETCH_MAX_INDEX || index > CSA_SKETCH_MAX_INDEX)
                return -1;
            if (b == 0)
                lo = index;
            else if (index - lo + 1 > CSA_SKETCH_MAX_BUCKETS)
                return -1;
            if (n > count - total)
                return -1;
            total += n;
            index_of[b] = (int32_t)index;
            count_of[b] = n;
        }
        if (total != count)
            return -1;
    }
    if (exact && p != end)
        return -1;
    long used = (long)(p - buf);
    if (count == 0)
        return used;
    if (nonempty > 0 && fit(dst, index_of[0], index_of[nonempty - 1]) < 0)
        return -1;
    for (uint64_t b = 0; b < nonempty; b++)
        dst->bins[slot(dst, index_of[b])] += count_of[b];
    dst->zero += zero;
    dst->sum += sum;
    if (dst->count == 0 || min < dst->min)
        dst->min = min;
    if (dst->count == 0 || max > dst->max)
        dst->max = max;
    dst->count += count;
    return used;
}
