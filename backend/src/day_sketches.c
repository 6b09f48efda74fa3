/* day_sketches.c: see day_sketches.h. */
#include "day_sketches.h"

#include "db.h"
#include "hour_sketches.h"
#include "log.h"
#include "package_rollups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PACKAGES_MAGIC 0xD6
#define PACKAGES_VERSION 1
#define FOLD_LOCK_ID "7305719026342124" /* arbitrary, constant: "coldstart day sketches" */

void csa_day_stats_init(csa_day_stats *d)
{
    memset(d, 0, sizeof *d);
    csa_sketch_init(&d->init);
    d->packages.index = json_object();
}

void csa_day_stats_free(csa_day_stats *d)
{
    csa_sketch_free(&d->init);
    for (size_t i = 0; i < d->packages.n; i++) {
        csa_sketch_free(&d->packages.items[i].sketch);
        free(d->packages.items[i].name);
    }
    free(d->packages.items);
    json_decref(d->packages.index);
    memset(d, 0, sizeof *d);
}

csa_package_stat *csa_package_get(csa_package_map *m, const char *name, size_t len)
{
    if (!m->index)
        return NULL;
    json_t *idx = json_object_getn(m->index, name, len);
    if (idx)
        return &m->items[json_integer_value(idx)];
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        csa_package_stat *items = realloc(m->items, cap * sizeof *items);
        if (!items)
            return NULL;
        m->items = items;
        m->cap = cap;
    }
    char *own = malloc(len + 1);
    if (!own)
        return NULL;
    memcpy(own, name, len);
    own[len] = '\0';
    if (json_object_setn_new(m->index, name, len, json_integer((json_int_t)m->n)) < 0) {
        free(own);
        return NULL;
    }
    csa_package_stat *p = &m->items[m->n];
    memset(p, 0, sizeof *p);
    csa_sketch_init(&p->sketch);
    p->name = own;
    m->n++;
    return p;
}

/* ---- module timings text -------------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* The common case without a JSON library: {"name": 1.5, ...} with keys free of escapes. Returns
 * the entries, or -1 when the text needs the full parser (nothing was reported then). */
static int flat_timings(const char *p, csa_timing_fn fn, void *arg)
{
    /* first pass: is it flat? (so that fn never sees half a row before a fallback) */
    const char *q = skip_ws(p);
    if (*q++ != '{')
        return -1;
    q = skip_ws(q);
    if (*q == '}')
        return 0;
    for (;;) {
        if (*q++ != '"')
            return -1;
        while (*q && *q != '"' && *q != '\\')
            q++;
        if (*q != '"')
            return -1;
        q = skip_ws(q + 1);
        if (*q++ != ':')
            return -1;
        q = skip_ws(q);
        char *end;
        if (!(*q == '-' || (*q >= '0' && *q <= '9')))
            return -1;
        strtod(q, &end);
        if (end == q)
            return -1;
        q = skip_ws(end);
        if (*q == '}')
            break;
        if (*q++ != ',')
            return -1;
        q = skip_ws(q);
    }
    int n = 0;
    p = skip_ws(p) + 1;
    p = skip_ws(p);
    for (;;) {
        const char *key = ++p;
        while (*p != '"')
            p++;
        size_t len = (size_t)(p - key);
        p = skip_ws(skip_ws(p + 1) + 1);
        char *end;
        double v = strtod(p, &end);
        if (fn(key, len, v, arg) < 0)
            return n;
        n++;
        p = skip_ws(end);
        if (*p == '}')
            return n;
        p = skip_ws(p + 1);
    }
}

int csa_each_timing(const char *text, csa_timing_fn fn, void *arg)
{
    int n = flat_timings(text, fn, arg);
    if (n >= 0)
        return n;
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return -1;
    }
    n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (!json_is_number(value))
            continue;
        if (fn(key, strlen(key), json_number_value(value), arg) < 0)
            break;
        n++;
    }
    json_decref(obj);
    return n;
}

/* ---- adding rows ------------------------------------------------------------------------------ */

typedef struct row_ctx {
    csa_day_stats *d;
    const csa_cold_row *row;
    double sum;
    int failed;
} row_ctx;

static int add_timing(const char *key, size_t len, double ms, void *arg)
{
    row_ctx *c = arg;
    csa_package_stat *p = csa_package_get(&c->d->packages, key, len);
    if (!p || csa_sketch_add(&p->sketch, ms) < 0) {
        c->failed = 1;
        return -1;
    }
    p->n++;
    p->sum_ms += ms;
    p->gb_s[c->row->arch] += ms / 1000.0 * c->row->memory_gb;
    c->sum += ms;
    return 0;
}

int csa_day_stats_add_row(csa_day_stats *d, const csa_cold_row *row)
{
    if (d->first_cold == 0 || row->at < d->first_cold)
        d->first_cold = row->at;
    double gb_s = row->has_init ? row->init_ms / 1000.0 * row->memory_gb : 0;
    switch (row->kind) {
    case 'c':
        d->cold++;
        d->init_gb_s[row->arch] += gb_s;
        if (row->has_init && csa_sketch_add(&d->init, row->init_ms) < 0)
            return -1;
        break;
    case 'p':
        d->proactive++;
        d->proactive_gb_s[row->arch] += gb_s;
        return 0;
    case 'v': d->provisioned++; return 0;
    default: d->other++; return 0;
    }
    if (!row->modules)
        return 0;
    row_ctx c = {d, row, 0, 0};
    int n = csa_each_timing(row->modules, add_timing, &c);
    if (c.failed)
        return -1;
    if (n > 0 && row->has_init) {
        d->module_rows++;
        d->module_rows_ms += c.sum;
    }
    return 0;
}

static int package_merge(csa_package_map *dst, const csa_package_stat *src)
{
    csa_package_stat *p = csa_package_get(dst, src->name, strlen(src->name));
    if (!p || csa_sketch_merge(&p->sketch, &src->sketch) < 0)
        return -1;
    p->n += src->n;
    p->sum_ms += src->sum_ms;
    p->gb_s[0] += src->gb_s[0];
    p->gb_s[1] += src->gb_s[1];
    return 0;
}

int csa_day_stats_merge(csa_day_stats *dst, const csa_day_stats *src)
{
    dst->cold += src->cold;
    dst->proactive += src->proactive;
    dst->provisioned += src->provisioned;
    dst->other += src->other;
    if (src->first_cold != 0 && (dst->first_cold == 0 || src->first_cold < dst->first_cold))
        dst->first_cold = src->first_cold;
    for (int a = 0; a < 2; a++) {
        dst->init_gb_s[a] += src->init_gb_s[a];
        dst->proactive_gb_s[a] += src->proactive_gb_s[a];
    }
    dst->module_rows += src->module_rows;
    dst->module_rows_ms += src->module_rows_ms;
    if (csa_sketch_merge(&dst->init, &src->init) < 0)
        return -1;
    for (size_t i = 0; i < src->packages.n; i++)
        if (package_merge(&dst->packages, &src->packages.items[i]) < 0)
            return -1;
    return 0;
}

/* ---- the packages' encoding ----------------------------------------------------------------
 * magic, version, varint packages; per package: varint name length, the name, varint n, sum_ms,
 * gb_s x86_64, gb_s arm64 (8 bytes each, IEEE little-endian), varint sketch length, the sketch.
 */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} buf;

static unsigned char *reserve(buf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void put_varint(buf *b, uint64_t v)
{
    unsigned char *p = reserve(b, 10);
    if (p)
        b->len += csa_varint_put(p, v);
}

static void put_bytes(buf *b, const void *data, size_t n)
{
    unsigned char *p = reserve(b, n);
    if (p) {
        memcpy(p, data, n);
        b->len += n;
    }
}

static void put_double(buf *b, double d)
{
    unsigned char bytes[8];
    put_bytes(b, bytes, csa_double_put(bytes, d));
}

int csa_packages_encode(const csa_package_map *m, unsigned char **out, size_t *len)
{
    buf b = {0};
    unsigned char head[2] = {PACKAGES_MAGIC, PACKAGES_VERSION};
    put_bytes(&b, head, 2);
    put_varint(&b, m->n);
    for (size_t i = 0; i < m->n; i++) {
        const csa_package_stat *p = &m->items[i];
        size_t name_len = strlen(p->name);
        if (name_len > CSA_PACKAGE_NAME_MAX)
            name_len = CSA_PACKAGE_NAME_MAX;
        put_varint(&b, name_len);
        put_bytes(&b, p->name, name_len);
        put_varint(&b, p->n);
        put_double(&b, p->sum_ms);
        put_double(&b, p->gb_s[0]);
        put_double(&b, p->gb_s[1]);
        unsigned char *sk;
        size_t sk_len;
        if (csa_sketch_encode(&p->sketch, &sk, &sk_len) < 0) {
            b.failed = 1;
            break;
        }
        put_varint(&b, sk_len);
        put_bytes(&b, sk, sk_len);
        free(sk);
    }
    if (b.failed) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int csa_packages_decode_into(csa_package_map *m, const unsigned char *data, size_t len)
{
    const unsigned char *p = data, *end = data + len;
    uint64_t count;
    if (len < 2 || p[0] != PACKAGES_MAGIC || p[1] != PACKAGES_VERSION)
        return -1;
    p += 2;
    if (csa_varint_get(&p, end, &count) < 0 || count > len)
        return -1;
    csa_package_stat one;
    memset(&one, 0, sizeof one);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t name_len, n, sk_len;
        if (csa_varint_get(&p, end, &name_len) < 0 || name_len > CSA_PACKAGE_NAME_MAX ||
            name_len > (uint64_t)(end - p) || memchr(p, '\0', name_len))
            return -1;
        const char *name = (const char *)p;
        p += name_len;
        if (csa_varint_get(&p, end, &n) < 0 || csa_double_get(&p, end, &one.sum_ms) < 0 ||
            csa_double_get(&p, end, &one.gb_s[0]) < 0 || csa_double_get(&p, end, &one.gb_s[1]) < 0 ||
            csa_varint_get(&p, end, &sk_len) < 0 || sk_len > (uint64_t)(end - p))
            return -1;
        csa_package_stat *dst = csa_package_get(m, name, (size_t)name_len);
        if (!dst || csa_sketch_decode_merge(&dst->sketch, p, (size_t)sk_len, 1) < 0)
            return -1;
        p += sk_len;
        dst->n += n;
        dst->sum_ms += one.sum_ms;
        dst->gb_s[0] += one.gb_s[0];
        dst->gb_s[1] += one.gb_s[1];
    }
    return p == end ? 0 : -1;
}

/* ---- rows of function_day_sketches ------------------------------------------------------------ */

/* PostgreSQL's hex text of a bytea ("\\x0a1b...") as a new buffer; NULL when not hex. */
static unsigned char *unhex(const char *text, size_t *len)
{
    /* a digit's value + 1 (0: not a digit); this runs for every byte of every stored sketch read */
    static const unsigned char value[256] = {
        ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
        ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
        ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
    };
    size_t n = strlen(text);
    if (n < 2 || text[0] != '\\' || text[1] != 'x' || (n - 2) % 2)
        return NULL;
    *len = (n - 2) / 2;
    unsigned char *out = malloc(*len ? *len : 1);
    if (!out)
        return NULL;
    const unsigned char *in = (const unsigned char *)text + 2;
    for (size_t i = 0; i < *len; i++) {
        int hi = value[in[2 * i]] - 1, lo = value[in[2 * i + 1]] - 1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return out;
}

char *csa_bytea_text(const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 3);
    if (!out)
        return NULL;
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = digits[data[i] >> 4];
        out[3 + 2 * i] = digits[data[i] & 15];
    }
    out[2 + 2 * len] = '\0';
    return out;
}

/* A bytea column: its bytes as they came (binary format) or decoded from hex text (into *owned,
 * which the caller frees). NULL when the text is not hex or out of memory. */
static const unsigned char *bytea_of(const PGresult *res, int row, int col, size_t *len, unsigned char **owned)
{
    *owned = NULL;
    if (PQfformat(res, col) == 1) {
        *len = (size_t)PQgetlength(res, row, col);
        return (const unsigned char *)PQgetvalue(res, row, col);
    }
    *owned = unhex(PQgetvalue(res, row, col), len);
    return *owned;
}

int csa_day_stats_add_stored(csa_day_stats *d, const PGresult *res, int row, int col)
{
    /* decoded straight into d (no copy of its own to merge): on failure d holds part of the row,
     * and every caller drops d then */
    size_t len;
    unsigned char *owned;
    const unsigned char *init = bytea_of(res, row, col + 4, &len, &owned);
    int bad = !init || csa_sketch_decode_merge(&d->init, init, len, 1) < 0;
    free(owned);
    if (bad)
        return -1;
    if (!PQgetisnull(res, row, col + 12)) { /* NULL: a reader that needs no packages */
        const unsigned char *mods = bytea_of(res, row, col + 12, &len, &owned);
        bad = !mods || csa_packages_decode_into(&d->packages, mods, len) < 0;
        free(owned);
        if (bad)
            return -1;
    }
    d->cold += csa_db_int64(res, row, col);
    d->proactive += csa_db_int64(res, row, col + 1);
    d->provisioned += csa_db_int64(res, row, col + 2);
    d->other += csa_db_int64(res, row, col + 11);
    double first = csa_db_double(res, row, col + 3);
    if (first != 0 && (d->first_cold == 0 || first < d->first_cold))
        d->first_cold = first;
    d->init_gb_s[0] += csa_db_double(res, row, col + 5);
    d->init_gb_s[1] += csa_db_double(res, row, col + 6);
    d->proactive_gb_s[0] += csa_db_double(res, row, col + 7);
    d->proactive_gb_s[1] += csa_db_double(res, row, col + 8);
    d->module_rows += csa_db_int64(res, row, col + 9);
    d->module_rows_ms += csa_db_double(res, row, col + 10);
    return 0;
}

/* ---- the fold ----------------------------------------------------------------------------- */

/* How function_init_hourly and function_init_6h (migrations/010, 013) add a batch's row to a
 * stored one: counts and sums added, min and max kept, the buckets merged. */
#define INIT_MERGE_SET \
    "cold_starts = h.cold_starts + EXCLUDED.cold_starts," \
    " proactive_starts = h.proactive_starts + EXCLUDED.proactive_starts," \
    " provisioned_starts = h.provisioned_starts + EXCLUDED.provisioned_starts," \
    " other_starts = h.other_starts + EXCLUDED.other_starts, init_n = h.init_n + EXCLUDED.init_n," \
    " init_sum = h.init_sum + EXCLUDED.init_sum, init_min = least(h.init_min, EXCLUDED.init_min)," \
    " init_max = greatest(h.init_max, EXCLUDED.init_max)," \
    " (init_keys, init_counts) = (SELECT m.keys, m.counts FROM csa_buckets_merge(h.init_keys, h.init_counts," \
    "  EXCLUDED.init_keys, EXCLUDED.init_counts) m)," \
    " init_gb_s_x86_64 = h.init_gb_s_x86_64 + EXCLUDED.init_gb_s_x86_64," \
    " init_gb_s_arm64 = h.init_gb_s_arm64 + EXCLUDED.init_gb_s_arm64," \
    " proactive_gb_s_x86_64 = h.proactive_gb_s_x86_64 + EXCLUDED.proactive_gb_s_x86_64," \
    " proactive_gb_s_arm64 = h.proactive_gb_s_arm64 + EXCLUDED.proactive_gb_s_arm64"

/* The queued rows of one batch, taken off the queue (the transaction's DELETE), with what the
 * statistics need; ordered so that each (function, day, deployment) is one run of rows. A batch
 * is the oldest queued rows of all functions: a backlog (an upgrade's, a bulk load's) then
 * touches each day's and each hour's rows in one or two batches, not once per function
 * (the package rollups, package_rollups.c, have a row per project, hour and package). The same
 * statement adds the batch to the SQL-readable hours and 6-hour blocks (function_init_hourly and
 * function_init_6h, migrations/010 and 013). */
#define FOLD_ROWS_SQL \
    "WITH batch AS (SELECT function_id, \"timestamp\", id FROM function_day_sketch_pending" \
    "  ORDER BY \"timestamp\" LIMIT $1::int)," \
    " taken AS (DELETE FROM function_day_sketch_pending p USING batch b" \
    "  WHERE p.function_id = b.function_id AND p.\"timestamp\" = b.\"timestamp\" AND p.id = b.id" \
    "  RETURNING p.function_id, p.\"timestamp\", p.id)," \
    " ids AS (SELECT array_agg(id) AS ids, array_agg(\"timestamp\") AS ts FROM taken)," \
    " hours AS MATERIALIZED (SELECT array_agg(s) AS r FROM ids, csa_init_hourly_of(ids.ids, ids.ts) s" \
    "  WHERE ids.ids IS NOT NULL)," \
    " hourly AS (INSERT INTO function_init_hourly AS h SELECT u.* FROM hours, unnest(hours.r) u" \
    "  WHERE hours.r IS NOT NULL ON CONFLICT (function_id, hour, deployment) DO UPDATE SET " INIT_MERGE_SET ")," \
    " blocks AS (INSERT INTO function_init_6h AS h SELECT b.* FROM hours, csa_init_6h_of(hours.r) b" \
    "  WHERE hours.r IS NOT NULL ON CONFLICT (function_id, hour, deployment) DO UPDATE SET " INIT_MERGE_SET ")" \
    " SELECT i.function_id::text, i.project_id::text, to_char((i.\"timestamp\" AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')," \
    "   coalesce(i.code_id, 'version:' || i.function_version, '')," \
    "   " CSA_COLD_ROW_COLUMNS( \
        "i", "f") " FROM taken t JOIN invocations i ON i.id = t.id AND i.\"timestamp\" = t.\"timestamp\"" \
                  " JOIN functions f ON f.id = i.function_id" \
                  " WHERE i.cold_start" \
                  " ORDER BY 1, 3, 4"

void csa__cold_row_from(const PGresult *res, int r, int col, csa_cold_row *row)
{
    row->kind = PQgetvalue(res, r, col)[0];
    row->has_init = !PQgetisnull(res, r, col + 1);
    row->init_ms = row->has_init ? csa_db_double(res, r, col + 1) : 0;
    row->memory_gb = csa_db_double(res, r, col + 2);
    row->arch = csa_db_bool(res, r, col + 3) ? CSA_ARCH_ARM64 : CSA_ARCH_X86_64;
    row->at = csa_db_double(res, r, col + 4);
    row->modules = PQgetisnull(res, r, col + 5) ? NULL : PQgetvalue(res, r, col + 5);
}

static void set_err(PGresult *res, PGconn *conn, char *err, size_t err_size)
{
    snprintf(err, err_size, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    err[strcspn(err, "\n")] = '\0';
}

/* Merges one run of rows [from, to) (one function, day, deployment) into its stored row. */
static int fold_group(PGconn *conn, const PGresult *rows, int from, int to, char *err, size_t err_size)
{
    const char *fn = PQgetvalue(rows, from, 0), *day = PQgetvalue(rows, from, 2), *dep = PQgetvalue(rows, from, 3);
    csa_day_stats d;
    csa_day_stats_init(&d);
    int rc = -1;
    char *init_hex = NULL, *mods_hex = NULL;
    unsigned char *init = NULL, *mods = NULL;
    const char *key[] = {fn, day, dep};
    PGresult *res = csa_db_exec(conn,
                                "SELECT " CSA_DAY_SKETCH_COLUMNS " FROM function_day_sketches"
                                " WHERE function_id = $1::uuid AND day = $2::date AND deployment = $3",
                                3, key);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_err(res, conn, err, err_size);
        goto out;
    }
    if (PQntuples(res) == 1 && csa_day_stats_add_stored(&d, res, 0, 0) < 0) {
        /* an unreadable stored row: start again rather than block the queue for ever */
        csa_logf(CSA_LOG_ERROR, "day sketches: function %s, day %s: invalid stored encoding, replaced", fn, day);
        csa_day_stats_free(&d);
        csa_day_stats_init(&d);
    }
    PQclear(res);
    res = NULL;
    for (int r = from; r < to; r++) {
        csa_cold_row row;
        csa__cold_row_from(rows, r, 4, &row);
        if (csa_day_stats_add_row(&d, &row) < 0) {
            snprintf(err, err_size, "out of memory");
            goto out;
        }
    }
    size_t init_len, mods_len;
    if (csa_sketch_encode(&d.init, &init, &init_len) < 0 || csa_packages_encode(&d.packages, &mods, &mods_len) < 0 ||
        !(init_hex = csa_bytea_text(init, init_len)) || !(mods_hex = csa_bytea_text(mods, mods_len))) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    char n[4][24], g[4][40], first[40], mrows[24], mms[40];
    snprintf(n[0], sizeof n[0], "%lld", d.cold);
    snprintf(n[1], sizeof n[1], "%lld", d.proactive);
    snprintf(n[2], sizeof n[2], "%lld", d.provisioned);
    snprintf(n[3], sizeof n[3], "%lld", d.other);
    snprintf(g[0], sizeof g[0], "%.17g", d.init_gb_s[0]);
    snprintf(g[1], sizeof g[1], "%.17g", d.init_gb_s[1]);
    snprintf(g[2], sizeof g[2], "%.17g", d.proactive_gb_s[0]);
    snprintf(g[3], sizeof g[3], "%.17g", d.proactive_gb_s[1]);
    snprintf(first, sizeof first, "%.6f", d.first_cold);
    snprintf(mrows, sizeof mrows, "%lld", d.module_rows);
    snprintf(mms, sizeof mms, "%.17g", d.module_rows_ms);
    const char *params[] = {fn,       PQgetvalue(rows, from, 1),
                            day,      dep,
                            n[0],     n[1],
                            n[2],     first,
                            init_hex, g[0],
                            g[1],     g[2],
                            g[3],     mrows,
                            mms,      mods_hex,
                            n[3]};
    res = csa_db_exec(
        conn,
        "INSERT INTO function_day_sketches AS s (function_id, project_id, day, deployment, cold_starts,"
        "  proactive_starts, provisioned_starts, first_cold_at, init_sketch, init_gb_s_x86_64,"
        "  init_gb_s_arm64, proactive_gb_s_x86_64, proactive_gb_s_arm64, module_rows, module_rows_ms,"
        "  modules, other_starts)"
        " VALUES ($1::uuid, $2::uuid, $3::date, $4, $5::bigint, $6::bigint, $7::bigint,"
        "  to_timestamp($8::float8), $9::bytea, $10::float8, $11::float8, $12::float8, $13::float8,"
        "  $14::bigint, $15::float8, $16::bytea, $17::bigint)"
        " ON CONFLICT (function_id, day, deployment) DO UPDATE SET cold_starts = EXCLUDED.cold_starts,"
        "  proactive_starts = EXCLUDED.proactive_starts, provisioned_starts = EXCLUDED.provisioned_starts,"
        "  first_cold_at = EXCLUDED.first_cold_at, init_sketch = EXCLUDED.init_sketch,"
        "  init_gb_s_x86_64 = EXCLUDED.init_gb_s_x86_64, init_gb_s_arm64 = EXCLUDED.init_gb_s_arm64,"
        "  proactive_gb_s_x86_64 = EXCLUDED.proactive_gb_s_x86_64,"
        "  proactive_gb_s_arm64 = EXCLUDED.proactive_gb_s_arm64, module_rows = EXCLUDED.module_rows,"
        "  module_rows_ms = EXCLUDED.module_rows_ms, modules = EXCLUDED.modules,"
        "  other_starts = EXCLUDED.other_starts",
        17, params);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(res, conn, err, err_size);
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    free(init);
    free(mods);
    free(init_hex);
    free(mods_hex);
    csa_day_stats_free(&d);
    return rc;
}

long long csa_day_sketches_fold(PGconn *conn, int max_rows, char *err, size_t err_size)
{
    PGresult *res = csa_db_exec(conn, "BEGIN", 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(res, conn, err, err_size);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    long long folded = -1;
    res = csa_db_exec(conn, "SELECT pg_try_advisory_xact_lock(" FOLD_LOCK_ID ")", 0, NULL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_err(res, conn, err, err_size);
        goto rollback;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) { /* another folder runs */
        folded = 0;
        goto rollback;
    }
    PQclear(res);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", max_rows);
    const char *params[] = {limit};
    res = csa_db_exec(conn, FOLD_ROWS_SQL, 1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_err(res, conn, err, err_size);
        goto rollback;
    }
    int n = PQntuples(res);
    for (int from = 0, to; from < n; from = to) {
        for (to = from + 1; to < n; to++)
            if (strcmp(PQgetvalue(res, to, 0), PQgetvalue(res, from, 0)) != 0 ||
                strcmp(PQgetvalue(res, to, 2), PQgetvalue(res, from, 2)) != 0 ||
                strcmp(PQgetvalue(res, to, 3), PQgetvalue(res, from, 3)) != 0)
                break;
        if (fold_group(conn, res, from, to, err, err_size) < 0)
            goto rollback;
    }
    if (csa_hour_sketches_fold_rows(conn, res, 4, err, err_size) < 0) /* the same rows by hour (migrations/008) */
        goto rollback;
    /* the project's package rollups (migrations/007) from the same rows, in the same transaction */
    if (csa_package_rollups_add(conn, res, 0, 1, 4, err, err_size) < 0)
        goto rollback;
    PQclear(res);
    res = csa_db_exec(conn, "COMMIT", 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(res, conn, err, err_size);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return n;
rollback:
    PQclear(res);
    PQclear(csa_db_exec(conn, "ROLLBACK", 0, NULL));
    return folded;
}

long long csa_day_sketches_fold_all(PGconn *conn, int max_batches, char *err, size_t err_size)
{
    long long total = 0;
    for (int b = 0; b < max_batches; b++) {
        long long n = csa_day_sketches_fold(conn, 2000, err, err_size);
        if (n < 0)
            return -1;
        total += n;
        if (n < 2000)
            break;
    }
    return total;
}
