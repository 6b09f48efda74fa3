/*
 * day_sketches.h: the per-day statistics of a function's cold starts (migrations/006): exact
 * counts and sums, and DDSketches (sketch.h) of the on-demand init durations and of each package's
 * self time, one set per function, UTC day and deployment. The fold (csa_day_sketches_fold) turns
 * queued cold-start rows into them; readers (queries.c) merge a window's days and add the rows the
 * sketches do not hold yet, all through csa_day_stats.
 * Ownership: csa_day_stats_init/csa_day_stats_free pair; everything inside is owned by the struct.
 */
#ifndef CSA_DAY_SKETCHES_H
#define CSA_DAY_SKETCHES_H

#include "sketch.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#define CSA_PACKAGE_NAME_MAX 1024 /* bytes of a package name kept in an encoding */

enum { CSA_ARCH_X86_64 = 0, CSA_ARCH_ARM64 = 1 };

typedef struct csa_package_stat {
    char *name;        /* NUL-terminated, owned by the map */
    uint64_t n;        /* on-demand cold starts that timed it */
    double sum_ms;     /* its self time, summed */
    double gb_s[2];    /* self seconds x memory GB, by architecture (for its init cost) */
    csa_sketch sketch; /* self ms */
} csa_package_stat;

typedef struct csa_package_map {
    json_t *index; /* name -> position in items */
    csa_package_stat *items;
    size_t n, cap;
} csa_package_map;

typedef struct csa_day_stats {
    long long cold, proactive, provisioned, other; /* cold-start rows by kind */
    double first_cold;                             /* epoch seconds of the earliest cold-start row; 0: none */
    csa_sketch init;                               /* on-demand init durations, ms */
    double init_gb_s[2], proactive_gb_s[2];        /* init seconds x memory GB, by architecture */
    long long module_rows;                         /* on-demand cold starts with module timings and an init */
    double module_rows_ms;                         /* their module self times, summed */
    csa_package_map packages;
} csa_day_stats;

/* One cold-start row as the readers and the fold see it. */
typedef struct csa_cold_row {
    char kind;    /* 'c' on-demand, 'p' proactive, 'v' provisioned, 'o' other */
    int has_init; /* init_ms is set */
    double init_ms;
    double memory_gb;    /* the row's memory (else the function's, else 128 MB) in GB */
    int arch;            /* CSA_ARCH_* */
    double at;           /* epoch seconds */
    const char *modules; /* module_timings as PostgreSQL's text, or NULL */
} csa_cold_row;

/* The columns of a csa_cold_row, as SQL over invocations alias i and functions alias f; read back
 * with csa__cold_row_from. The kinds: a real cold start is cold_start with start_kind "cold" or
 * absent (queries.c's REAL_COLD). */
#define CSA_COLD_ROW_COLUMNS(i, f) \
    "CASE WHEN coalesce(" i ".start_kind, 'cold') = 'cold' THEN 'c' WHEN " i ".start_kind = 'proactive' THEN 'p'" \
    " WHEN " i ".start_kind = 'provisioned' THEN 'v' ELSE 'o' END, " i ".init_duration_ms," \
    " (coalesce(" i ".memory_allocated_mb, " f ".memory_allocated_mb, 128) / 1024.0)::float8," \
    " " i ".architecture = 'arm64', extract(epoch FROM " i ".\"timestamp\")::float8, " i ".module_timings::text"

/* Reads the CSA_COLD_ROW_COLUMNS starting at column col of row r (row->modules points into res). */
void csa__cold_row_from(const PGresult *res, int r, int col, csa_cold_row *row);

void csa_day_stats_init(csa_day_stats *d);
void csa_day_stats_free(csa_day_stats *d);

/* Adds one cold-start row. Returns 0, or -1 when out of memory (d then holds part of the row). */
int csa_day_stats_add_row(csa_day_stats *d, const csa_cold_row *row);

/* Adds src into dst. Returns 0 or -1 (out of memory). */
int csa_day_stats_merge(csa_day_stats *dst, const csa_day_stats *src);

/* The package of that name (len bytes), created empty if new; NULL when out of memory. */
csa_package_stat *csa_package_get(csa_package_map *m, const char *name, size_t len);

/* The packages as one binary blob (the `modules` column): a new buffer (caller frees), or -1. */
int csa_packages_encode(const csa_package_map *m, unsigned char **out, size_t *len);

/* Adds the packages of an encoding into m; -1 when the encoding is invalid (m may hold part). */
int csa_packages_decode_into(csa_package_map *m, const unsigned char *buf, size_t len);

/* Reads one function_day_sketches (or function_hour_sketches) row (columns in the order of
 * CSA_DAY_SKETCH_COLUMNS, from column `col`; modules may be NULL: no packages) and adds it into d.
 * Returns 0, or -1 (invalid encoding, out of memory: d then holds part of the row, to be dropped). */
int csa_day_stats_add_stored(csa_day_stats *d, const PGresult *res, int row, int col);

/* Bytes as "\\x..." text, a bytea parameter of a text-format query: a new string (free it), or NULL
 * when out of memory. */
char *csa_bytea_text(const unsigned char *data, size_t len);

#define CSA_DAY_SKETCH_COLUMNS CSA_DAY_SKETCH_COLUMNS_BUT_MODULES ", modules"
#define CSA_DAY_SKETCH_COLUMNS_BUT_MODULES \
    "cold_starts, proactive_starts, provisioned_starts, extract(epoch FROM first_cold_at)::float8, init_sketch," \
    " init_gb_s_x86_64, init_gb_s_arm64, proactive_gb_s_x86_64, proactive_gb_s_arm64, module_rows," \
    " module_rows_ms, other_starts"

/* Parses PostgreSQL's text form of a module_timings object, calling fn for each numeric entry
 * (key: len bytes, not NUL-terminated). Returns the entries seen, or -1 if text is not an object. */
typedef int (*csa_timing_fn)(const char *key, size_t len, double ms, void *arg);
int csa_each_timing(const char *text, csa_timing_fn fn, void *arg);

/*
 * Folds up to max_rows queued cold starts (function_day_sketch_pending) into function_day_sketches
 * in one transaction; one folder at a time (others return 0 at once). Returns the rows folded, or
 * -1 with the server's message in err.
 */
long long csa_day_sketches_fold(PGconn *conn, int max_rows, char *err, size_t err_size);

/* Folds until the queue is empty or max_batches batches ran; returns the rows folded or -1. */
long long csa_day_sketches_fold_all(PGconn *conn, int max_batches, char *err, size_t err_size);

#endif
