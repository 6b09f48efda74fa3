/*
 * projects.h: creating a project, the one implementation behind `coldstartd create-project` and
 * POST /api/v1/projects, and the slug rule both apply.
 *
 * A new project gets two keys in the same transaction (keys.h): an admin key (scopes ingest, read
 * and admin: it manages the project's keys and reads) and an ingest key (scope ingest only: the
 * one that goes into functions' environments). Nothing exists unless all three rows committed.
 */
#ifndef CSA_PROJECTS_H
#define CSA_PROJECTS_H

#include "error.h"
#include "keys.h"

#include <libpq-fe.h>
#include <stddef.h>

#define CSA_SLUG_MAX 100
#define CSA_PROJECT_NAME_MAX 255 /* characters */

/* 1 if s is a valid slug: 1 to CSA_SLUG_MAX characters of a-z, 0-9, '-' and '_'. */
int csa_slug_valid(const char *s);

/* Derives a slug from a name: ASCII letters and digits lowercased, every other run of characters
 * becomes one '-' between words. The result may be empty (a name without ASCII alphanumerics). */
void csa_slug_from_name(const char *name, char *slug, size_t size);

/* A key just created: what is shown once. */
typedef struct csa_new_key {
    char id[CSA_UUID_LEN + 1];
    char key[CSA_KEY_LEN + 1]; /* wiped by csa_new_project_wipe */
    char created_at[40];
    unsigned scopes;
} csa_new_key;

typedef struct csa_new_project {
    char id[CSA_UUID_LEN + 1];
    csa_new_key admin;  /* scopes ingest, read, admin */
    csa_new_key ingest; /* scope ingest */
} csa_new_project;

/*
 * Creates project (name, slug) and its two keys in one transaction on conn. The caller has
 * checked name (1 to 255 characters) and slug (csa_slug_valid). Returns CSA_OK with *out filled,
 * CSA_ERR_CONFLICT when the slug is taken, or the status of the database failure; detail
 * (CSA_DETAIL_MAX bytes, see queries.h) gets a client-facing message. The caller wipes the keys
 * with csa_new_project_wipe once shown.
 */
csa_status csa_project_create(PGconn *conn, const char *name, const char *slug, csa_new_project *out, char *detail);

void csa_new_project_wipe(csa_new_project *p);

#endif
