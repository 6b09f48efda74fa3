/* hour_sketches.c: see hour_sketches.h. */
#include "hour_sketches.h"

#include "day_sketches.h"
#include "db.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One fold row: its index in the batch, its function (text) and hour (epoch seconds). */
typedef struct hour_ref {
    int row;
    const char *fn;
    double hour;
} hour_ref;

static int cmp_ref(const void *x, const void *y)
{
    const hour_ref *a = x, *b = y;
    int c = strcmp(a->fn, b->fn);
    if (c)
        return c;
    return a->hour < b->hour ? -1 : a->hour > b->hour ? 1 : a->row - b->row;
}

static void set_err(PGresult *res, PGconn *conn, char *err, size_t err_size)
{
    snprintf(err, err_size, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    err[strcspn(err, "\n")] = '\0';
}

/* Writes one hour's statistics (insert or replace). */
static int store_hour(PGconn *conn, const char *fn, const char *project, double hour, const csa_day_stats *d, char *err,
                      size_t err_size)
{
    unsigned char *init = NULL, *mods = NULL;
    char *init_hex = NULL, *mods_hex = NULL;
    size_t init_len, mods_len;
    int rc = -1;
    if (csa_sketch_encode(&d->init, &init, &init_len) < 0 || csa_packages_encode(&d->packages, &mods, &mods_len) < 0 ||
        !(init_hex = csa_bytea_text(init, init_len)) || !(mods_hex = csa_bytea_text(mods, mods_len))) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    char h[32], n[4][24], g[4][40], first[40], mrows[24], mms[40];
    snprintf(h, sizeof h, "%.0f", hour);
    snprintf(n[0], sizeof n[0], "%lld", d->cold);
    snprintf(n[1], sizeof n[1], "%lld", d->proactive);
    snprintf(n[2], sizeof n[2], "%lld", d->provisioned);
    snprintf(n[3], sizeof n[3], "%lld", d->other);
    for (int a = 0; a < 2; a++) {
        snprintf(g[a], sizeof g[a], "%.17g", d->init_gb_s[a]);
        snprintf(g[2 + a], sizeof g[2 + a], "%.17g", d->proactive_gb_s[a]);
    }
    snprintf(first, sizeof first, "%.6f", d->first_cold);
    snprintf(mrows, sizeof mrows, "%lld", d->module_rows);
    snprintf(mms, sizeof mms, "%.17g", d->module_rows_ms);
    const char *params[] = {fn,       project, h,    n[0], n[1], n[2],  n[3], first,
                            init_hex, g[0],    g[1], g[2], g[3], mrows, mms,  mods_hex};
    PGresult *res = csa_db_exec(
        conn,
        "INSERT INTO function_hour_sketches AS s (function_id, project_id, hour, cold_starts, proactive_starts,"
        "  provisioned_starts, other_starts, first_cold_at, init_sketch, init_gb_s_x86_64, init_gb_s_arm64,"
        "  proactive_gb_s_x86_64, proactive_gb_s_arm64, module_rows, module_rows_ms, modules)"
        " VALUES ($1::uuid, $2::uuid, to_timestamp($3::float8), $4::bigint, $5::bigint, $6::bigint, $7::bigint,"
        "  to_timestamp($8::float8), $9::bytea, $10::float8, $11::float8, $12::float8, $13::float8, $14::bigint,"
        "  $15::float8, $16::bytea)"
        " ON CONFLICT (function_id, hour) DO UPDATE SET cold_starts = EXCLUDED.cold_starts,"
        "  proactive_starts = EXCLUDED.proactive_starts, provisioned_starts = EXCLUDED.provisioned_starts,"
        "  other_starts = EXCLUDED.other_starts, first_cold_at = EXCLUDED.first_cold_at,"
        "  init_sketch = EXCLUDED.init_sketch, init_gb_s_x86_64 = EXCLUDED.init_gb_s_x86_64,"
        "  init_gb_s_arm64 = EXCLUDED.init_gb_s_arm64, proactive_gb_s_x86_64 = EXCLUDED.proactive_gb_s_x86_64,"
        "  proactive_gb_s_arm64 = EXCLUDED.proactive_gb_s_arm64, module_rows = EXCLUDED.module_rows,"
        "  module_rows_ms = EXCLUDED.module_rows_ms, modules = EXCLUDED.modules",
        16, params);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        set_err(res, conn, err, err_size);
    else
        rc = 0;
    PQclear(res);
out:
    free(init);
    free(mods);
    free(init_hex);
    free(mods_hex);
    return rc;
}

int csa_hour_sketches_fold_rows(PGconn *conn, const PGresult *rows, int col, char *err, size_t err_size)
{
    int n = PQntuples(rows);
    if (n == 0)
        return 0;
    hour_ref *refs = malloc((size_t)n * sizeof *refs);
    if (!refs) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (int r = 0; r < n; r++) {
        refs[r].row = r;
        refs[r].fn = PQgetvalue(rows, r, 0);
        refs[r].hour = floor(strtod(PQgetvalue(rows, r, col + 4), NULL) / 3600.0) * 3600.0;
    }
    qsort(refs, (size_t)n, sizeof *refs, cmp_ref);
    int rc = 0;
    for (int from = 0, to; from < n && rc == 0; from = to) {
        for (to = from + 1; to < n; to++)
            if (refs[to].hour != refs[from].hour || strcmp(refs[to].fn, refs[from].fn) != 0)
                break;
        const char *fn = refs[from].fn;
        char h[32];
        snprintf(h, sizeof h, "%.0f", refs[from].hour);
        const char *key[] = {fn, h};
        csa_day_stats d;
        csa_day_stats_init(&d);
        PGresult *res = csa_db_exec(conn,
                                    "SELECT " CSA_DAY_SKETCH_COLUMNS " FROM function_hour_sketches"
                                    " WHERE function_id = $1::uuid AND hour = to_timestamp($2::float8)",
                                    2, key);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            set_err(res, conn, err, err_size);
            rc = -1;
        } else if (PQntuples(res) == 1 && csa_day_stats_add_stored(&d, res, 0, 0) < 0) {
            /* an unreadable stored row: start again rather than block the queue for ever */
            csa_logf(CSA_LOG_ERROR, "hour sketches: function %s, hour %s: invalid stored encoding, replaced", fn, h);
            csa_day_stats_free(&d);
            csa_day_stats_init(&d);
        }
        PQclear(res);
        for (int k = from; k < to && rc == 0; k++) {
            csa_cold_row row;
            csa__cold_row_from(rows, refs[k].row, col, &row);
            if (csa_day_stats_add_row(&d, &row) < 0) {
                snprintf(err, err_size, "out of memory");
                rc = -1;
            }
        }
        if (rc == 0)
            rc = store_hour(conn, fn, PQgetvalue(rows, refs[from].row, 1), refs[from].hour, &d, err, err_size);
        csa_day_stats_free(&d);
    }
    free(refs);
    return rc;
}
