/*
 * package_rollups.h: the per-project, per-package hourly and daily rollups of on-demand cold
 * starts' module self times (migrations/007: package_hourly, package_daily), kept for the
 * dashboard's "Slowest packages across all functions" panel (csa_slowest_packages in SQL), and the
 * per-function ones (migrations/011: function_package_hourly for the recent days,
 * function_package_daily) for "Module timing breakdown" and "Init cost by package".
 * They are added to by the day-sketch fold (day_sketches.c), from the same queued rows and in the
 * same transaction, so a cold start counts in both or in neither.
 */
#ifndef CSA_PACKAGE_ROLLUPS_H
#define CSA_PACKAGE_ROLLUPS_H

#include <libpq-fe.h>
#include <stddef.h>

/* The bucket key of the zero bucket in package_hourly.keys (values under CSA_SKETCH_MIN_VALUE). */
#define CSA_PACKAGE_ZERO_KEY (-2147483647 - 1)

/*
 * Adds the on-demand cold starts among `rows` (the fold's batch: function id in column fn_col,
 * project id in project_col, the CSA_COLD_ROW_COLUMNS from cold_col) to package_hourly,
 * package_daily, function_package_hourly and function_package_daily (and drops the hourly rows
 * older than csa_function_package_hours_from()), inside the caller's transaction. Returns 0, or
 * -1 with the reason in err.
 */
int csa_package_rollups_add(PGconn *conn, const PGresult *rows, int fn_col, int project_col, int cold_col, char *err,
                            size_t err_size);

#endif
