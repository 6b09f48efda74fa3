/*
 * migrate.h: forward-only schema migrations. Files "NNN_name.sql" in the migrations directory are
 * applied in name order, each once, each in its own transaction together with its row in
 * schema_migrations. A session advisory lock makes concurrent runs wait for each other.
 */
#ifndef CSA_MIGRATE_H
#define CSA_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Applies pending migrations from dir. Returns the number applied (>= 0), or -1 with err set. */
int csa_migrate(PGconn *conn, const char *dir, char *err, size_t err_size);

#endif
