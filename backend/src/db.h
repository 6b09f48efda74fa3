/*
 * db.h: a thin layer over libpq: connecting with our settings, a small blocking connection pool
 * for request-time queries, and classification of errors (connection lost vs. the statement's
 * own fault). SQL is always sent with parameters (PQexecParams); nothing builds SQL from input.
 */
#ifndef CSA_DB_H
#define CSA_DB_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>

/* Opens a connection (connect_timeout 3 s, application_name coldstartd). Returns NULL and the
 * first line of libpq's message in err when it fails (the message never holds the password). */
PGconn *csa_db_connect(const char *url, char *err, size_t err_size);

/* 1 if res (or the connection) shows the connection is gone or the server is unavailable
 * (SQLSTATE classes 08, 57P, 53, or CONNECTION_BAD), 0 for an error of the statement itself. */
int csa_db_is_unavailable(PGconn *conn, const PGresult *res);

/* What went wrong with a statement: the one place SQLSTATEs are classified. */
typedef enum csa_db_fault {
    CSA_DB_FAULT_UNAVAILABLE, /* connection lost, server shutting down or out of resources */
    CSA_DB_FAULT_TRANSIENT,   /* deadlock, serialisation failure, lock or statement timeout (40, 55P03,
                                 57014): the same request may succeed a moment later */
    CSA_DB_FAULT_UNIQUE,      /* unique violation (23505) */
    CSA_DB_FAULT_BAD_INPUT,   /* data exception (class 22): a value PostgreSQL cannot read */
    CSA_DB_FAULT_OTHER,       /* the statement's own fault: a bug */
} csa_db_fault;

csa_db_fault csa_db_classify(PGconn *conn, const PGresult *res);

/* 1 if res failed on a deadlock (40P01) or a serialisation failure (40001): the same transaction
 * may simply be run again (the writer does, at once). */
int csa_db_is_conflict(const PGresult *res);

/*
 * Logs a failed statement (`what` names it; the server's message goes to the log only) and says
 * what the client gets: CSA_ERR_UNAVAILABLE for UNAVAILABLE and TRANSIENT (503 + Retry-After),
 * CSA_ERR_INTERNAL otherwise, with a short message in detail (detail_size bytes). Callers that
 * give UNIQUE or BAD_INPUT a meaning of their own check csa_db_classify first.
 */
csa_status csa_db_failure(PGconn *conn, const PGresult *res, const char *what, char *detail, size_t detail_size);

/* 1 if the connection is still usable: also notices, without a round trip, a server that closed
 * it while it was idle (terminated backend, restart). */
int csa_db_alive(PGconn *conn);

/* Runs a statement with text parameters; returns the result (caller PQclear()s). */
PGresult *csa_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* The same as a statement prepared on this connection under `name` (prepared on first use, with
 * generic plans: see db.c). For the read API's hot queries over the partitioned table. Inside a
 * transaction the statement runs unprepared (a failed first use would abort the transaction);
 * csa_db_stream_prepared does the same. */
PGresult *csa_db_exec_prepared(PGconn *conn, const char *name, const char *sql, int nparams, const char *const *params);

/* Called with each row (a one-row result, freed by the caller) of csa_db_stream_prepared: 0 to go
 * on, nonzero to stop reading. */
typedef int (*csa_db_row_fn)(const PGresult *row, void *arg);

/*
 * Runs the prepared statement `name` (prepared on first use, as csa_db_exec_prepared) in libpq's
 * single-row mode: rows are handed to row_fn one at a time as they arrive, so that the client
 * never holds the whole result. The rows come in binary format (its readers take stored sketches:
 * bytea as its bytes, half the bytes of hex text and nothing to parse): read numbers with
 * csa_db_double / csa_db_int64 / csa_db_bool, text and bytea with PQgetvalue and PQgetlength
 * (libpq ends every value with a NUL byte, binary ones too). When row_fn stops, the statement is cancelled, the rest
 * discarded, *stopped set and an empty PGRES_TUPLES_OK result returned. Otherwise returns the
 * final result: PGRES_TUPLES_OK once every row was read, or the error; NULL when the query could
 * not be sent (check the connection). The caller PQclear()s it; the connection is idle after.
 */
PGresult *csa_db_stream_prepared(PGconn *conn, const char *name, const char *sql, int nparams,
                                 const char *const *params, csa_db_row_fn row_fn, void *arg, int *stopped);

/* A column of a result in text or binary format (PQfformat) as a number: bigint, integer,
 * smallint, double precision or real, or (text format only) any number PostgreSQL prints; NULL
 * and types not listed give 0. */
double csa_db_double(const PGresult *res, int row, int col);
long long csa_db_int64(const PGresult *res, int row, int col);
/* A boolean column (text "t" or binary 1): 1 or 0 (NULL: 0). */
int csa_db_bool(const PGresult *res, int row, int col);

typedef struct csa_db_pool csa_db_pool;

/* Creates a pool of at most `size` connections, opened lazily. Destroy with csa_db_pool_destroy. */
csa_db_pool *csa_db_pool_create(const char *url, int size);
void csa_db_pool_destroy(csa_db_pool *pool);

/* Every connection the pool opens from now on gets statement_timeout = ms (0: none): a statement
 * running longer is cancelled by PostgreSQL (SQLSTATE 57014, CSA_DB_FAULT_TRANSIENT: 503). */
void csa_db_pool_set_statement_timeout(csa_db_pool *pool, int ms);

/* Takes a connection, waiting up to wait_ms for one to be free; connects if needed.
 * Returns NULL when none is free in time or the database cannot be reached. */
PGconn *csa_db_pool_acquire(csa_db_pool *pool, int wait_ms);

/* Connections currently taken from the pool. */
int csa_db_pool_in_use(csa_db_pool *pool);

/* Gives a connection back; `broken` closes it (the next acquire reconnects). */
void csa_db_pool_release(csa_db_pool *pool, PGconn *conn, int broken);

/*
 * Partition upkeep: creates the coming months' partitions of invocations and, when
 * retention_months > 0, drops the partitions that ended more than retention_months ago. Runs
 * under a transaction-level advisory lock so that several servers never race. Returns 0 and the
 * counts, or -1 with err set.
 */
int csa_db_maintain(PGconn *conn, int retention_months, int *created, int *dropped, char *err, size_t err_size);

/* Folds the rollup deltas the ingest trigger appends into function_hourly (migrations/002):
 * returns the number of delta rows folded (0 when another process is folding), -1 on error. */
long long csa_db_fold_rollups(PGconn *conn, char *err, size_t err_size);

#endif
