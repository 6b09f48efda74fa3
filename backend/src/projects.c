/* projects.c: see projects.h. */
#include "projects.h"

#include "db.h"
#include "queries.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int csa_slug_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CSA_SLUG_MAX)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

void csa_slug_from_name(const char *name, char *slug, size_t size)
{
    size_t k = 0;
    int dash = 0;
    for (const char *p = name; *p && k + 1 < size; p++) {
        char c = *p;
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum) {
            if (dash && k > 0)
                slug[k++] = '-';
            if (k + 1 < size)
                slug[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    if (size)
        slug[k] = '\0';
}

void csa_new_project_wipe(csa_new_project *p) { sodium_memzero(p, sizeof *p); }

/* Inserts one key of the new project into *k. */
static csa_status insert_key(PGconn *conn, const char *project_id, const char *name, unsigned scopes, csa_new_key *k,
                             char *detail)
{
    PGresult *res = csa_key_insert(conn, project_id, name, scopes, k->key);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        csa_status st = csa_db_failure(conn, res, "create project key", detail, CSA_DETAIL_MAX);
        PQclear(res);
        return st;
    }
    snprintf(k->id, sizeof k->id, "%s", PQgetvalue(res, 0, 0));
    snprintf(k->created_at, sizeof k->created_at, "%s", PQgetvalue(res, 0, 1));
    k->scopes = scopes;
    PQclear(res);
    return CSA_OK;
}

csa_status csa_project_create(PGconn *conn, const char *name, const char *slug, csa_new_project *out, char *detail)
{
    memset(out, 0, sizeof *out);
    csa_status st = CSA_OK;
    PGresult *res = PQexec(conn, "BEGIN");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = csa_db_failure(conn, res, "create project", detail, CSA_DETAIL_MAX);
        PQclear(res);
        return st;
    }
    PQclear(res);
    const char *params[] = {name, slug};
    res = csa_db_exec(conn, "INSERT INTO projects (name, slug) VALUES ($1, $2) RETURNING id::text", 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (csa_db_classify(conn, res) == CSA_DB_FAULT_UNIQUE) {
            snprintf(detail, CSA_DETAIL_MAX, "A project with this slug already exists");
            st = CSA_ERR_CONFLICT;
        } else {
            st = csa_db_failure(conn, res, "create project", detail, CSA_DETAIL_MAX);
        }
        PQclear(res);
        goto fail;
    }
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    st = insert_key(conn, out->id, "admin", CSA_SCOPES_ALL, &out->admin, detail);
    if (st != CSA_OK)
        goto fail;
    st = insert_key(conn, out->id, "ingest", CSA_SCOPE_INGEST, &out->ingest, detail);
    if (st != CSA_OK)
        goto fail;
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = csa_db_failure(conn, res, "create project (commit)", detail, CSA_DETAIL_MAX);
        PQclear(res);
        csa_new_project_wipe(out);
        return st;
    }
    PQclear(res);
    return CSA_OK;
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    csa_new_project_wipe(out);
    return st;
}
