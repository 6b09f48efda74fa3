/*
 * hour_sketches.h: the per-hour statistics of a function's cold starts (migrations/008): the
 * columns of a day sketch (day_sketches.h) per function and UTC hour, all deployments together.
 * The function detail takes the whole hours of its window's partial days, and its timeline every
 * whole hour, from them (queries.c); the fold writes them from the same batch as the days.
 */
#ifndef CSA_HOUR_SKETCHES_H
#define CSA_HOUR_SKETCHES_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Merges the cold-start rows of one fold batch (the result of day_sketches.c's FOLD_ROWS_SQL:
 * function id in column 0, project id in column 1, CSA_COLD_ROW_COLUMNS from column `col`) into
 * function_hour_sketches, inside the caller's transaction. Returns 0, or -1 with the server's
 * message in err.
 */
int csa_hour_sketches_fold_rows(PGconn *conn, const PGresult *rows, int col, char *err, size_t err_size);

#endif
