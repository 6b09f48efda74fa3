/* migrate.c: see migrate.h. */
#include "migrate.h"

#include "db.h"
#include "log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_LOCK_ID "7305719026342121" /* arbitrary, constant: "coldstart migrations" */
#define MAX_MIGRATIONS 1000
#define MAX_MIGRATION_BYTES (16 * 1024 * 1024)

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n <= MAX_MIGRATION_BYTES && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else if (buf) {
                buf[n] = '\0';
            }
        }
    }
    fclose(f);
    return buf;
}

static int exec_ok(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t err_size)
{
    PGresult *res = nparams ? csa_db_exec(conn, sql, nparams, params) : PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    return ok ? 0 : -1;
}

int csa_migrate(PGconn *conn, const char *dir, char *err, size_t err_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, err_size, "cannot open migrations directory %s", dir);
        return -1;
    }
    char *names[MAX_MIGRATIONS] = {NULL};
    int count = 0;
    struct dirent *de;
    /* readdir_r is deprecated (glibc 2.24): readdir is safe on a stream only this thread reads */
    /* cppcheck-suppress readdirCalled */
    while ((de = readdir(d)) != NULL && count < MAX_MIGRATIONS) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".sql") == 0 && de->d_name[0] >= '0' && de->d_name[0] <= '9')
            names[count++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof names[0], cmp_names);

    int applied = 0;
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    const char *lock[] = {MIGRATION_LOCK_ID};
    if (exec_ok(conn, "SELECT pg_advisory_lock($1::bigint)", 1, lock, err, err_size) < 0) {
        applied = -1;
        goto out;
    }
    if (exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version TEXT PRIMARY KEY, applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW())",
                0, NULL, err, err_size) < 0) {
        applied = -1;
        goto unlock;
    }
    for (int i = 0; i < count; i++) {
        char version[256];
        snprintf(version, sizeof version, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        const char *p[] = {version};
        PGresult *res = csa_db_exec(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p);
        int done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        int failed = PQresultStatus(res) != PGRES_TUPLES_OK;
        PQclear(res);
        if (failed) {
            snprintf(err, err_size, "cannot read schema_migrations: %s", PQerrorMessage(conn));
            err[strcspn(err, "\n")] = '\0';
            applied = -1;
            goto unlock;
        }
        if (done)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *sql = read_file(path);
        if (!sql) {
            snprintf(err, err_size, "cannot read %s", path);
            applied = -1;
            goto unlock;
        }
        char why[400];
        int rc = exec_ok(conn, "BEGIN", 0, NULL, why, sizeof why);
        if (rc == 0)
            rc = exec_ok(conn, sql, 0, NULL, why, sizeof why);
        if (rc == 0)
            rc = exec_ok(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, p, why, sizeof why);
        if (rc == 0)
            rc = exec_ok(conn, "COMMIT", 0, NULL, why, sizeof why);
        free(sql);
        if (rc < 0) {
            PQclear(PQexec(conn, "ROLLBACK"));
            snprintf(err, err_size, "migration %s failed: %s", version, why);
            applied = -1;
            goto unlock;
        }
        csa_logf(CSA_LOG_INFO, "applied migration %s", version);
        applied++;
    }
unlock:
    PQclear(csa_db_exec(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, lock));
out:
    for (int i = 0; i < count; i++)
        free(names[i]);
    return applied;
}
