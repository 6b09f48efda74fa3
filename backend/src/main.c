/* main.c: coldstartd's command line: serve (the default), migrate, create-project, create-key,
 * revoke-key, maintain, report, version, --help (USAGE below is the list). Settings come from the
 * environment and ./.env (config.h). */
#include "config.h"
#include "day_sketches.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "migrate.h"
#include "projects.h"
#include "queries.h"
#include "report.h"
#include "server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static const char USAGE[] =
    "Usage: coldstartd [COMMAND] [OPTIONS]\n"
    "\n"
    "Cold Start Analyzer server.\n"
    "\n"
    "Commands:\n"
    "  serve                                 run the HTTP API (the default)\n"
    "  migrate                               apply pending database migrations\n"
    "  create-project --name NAME [--slug SLUG]\n"
    "                                        create a project with an admin key (scopes\n"
    "                                        ingest, read, admin) and an ingest key (ingest)\n"
    "  create-key --project SLUG [--name NAME] [--scopes ingest,read,admin]\n"
    "                                        create another API key for a project (default\n"
    "                                        scope: ingest)\n"
    "  revoke-key --prefix csa_xxxx          deactivate the key(s) with this 8-character prefix\n"
    "  maintain                              create the coming months' invocation partitions and\n"
    "                                        drop those older than RETENTION_MONTHS (the server\n"
    "                                        also does this hourly)\n"
    "  report [--project SLUG] [--function NAME] [--json]\n"
    "                                        print functions and one function's module breakdown\n"
    "                                        and recommendations\n"
    "  version                               print the version\n"
    "  --help                                show this help\n"
    "\n"
    "New keys are printed once, each alone on its line after a label: only their hash is kept.\n"
    "create-project prints the ingest key last, create-key its one key.\n"
    "Settings are read from the environment and from ./.env (see .env.example): DATABASE_URL,\n"
    "DATABASE_POOL_SIZE, HOST, PORT, WORKERS, WRITERS, APP_ENV, APP_DEBUG, CORS_ORIGINS, LOG_LEVEL,\n"
    "LOG_REQUESTS, REQUEST_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_BODY_SINGLE, MAX_BODY_BATCH,\n"
    "KEY_CACHE_TTL, AUTH_FAIL_LIMIT, AUTH_FAIL_WINDOW, TRUSTED_PROXIES, WRITER_BATCH_MAX,\n"
    "WRITER_QUEUE_MAX_BYTES, SHUTDOWN_TIMEOUT, MIGRATIONS_DIR, RULES_FILE, APP_SECRET_KEY,\n"
    "RATE_LIMIT_INGEST, RATE_LIMIT_QUERY, RATE_LIMIT_WINDOW, RATE_LIMIT_PROJECT_INGEST,\n"
    "RATE_LIMIT_PROJECT_QUERY, QUERY_THREADS, QUERY_TIMEOUT_MS, MAX_READ_WINDOW_DAYS,\n"
    "MAX_READ_SAMPLES, RETENTION_MONTHS, METRICS_PORT, METRICS_HOST.\n";

/* Finds "--name VALUE" or "--name=VALUE" in argv; returns NULL when absent. */
static const char *option(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], name, n) == 0) {
            if (argv[i][n] == '=')
                return argv[i] + n + 1;
            if (argv[i][n] == '\0' && i + 1 < argc)
                return argv[i + 1];
        }
    }
    return NULL;
}

/* Rejects options that the command does not know (a typo must not be silently ignored). */
static int check_options(int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i++) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) {
            size_t n = strlen(*k);
            if (strncmp(argv[i], *k, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) {
                ok = 1;
                if (argv[i][n] == '\0' && strcmp(*k, "--json") != 0)
                    i++; /* skip the value; --json is the one flag without one */
            }
        }
        if (!ok) {
            fprintf(stderr, "coldstartd %s: unknown option %s (see coldstartd --help)\n", argv[1], argv[i]);
            return -1;
        }
    }
    return 0;
}

static PGconn *connect_or_die(const csa_config *cfg)
{
    char err[512];
    PGconn *conn = csa_db_connect(cfg->database_url, err, sizeof err);
    if (!conn)
        fprintf(stderr, "coldstartd: cannot connect to the database: %s\n", err);
    return conn;
}

static int cmd_migrate(const csa_config *cfg)
{
    PGconn *conn = connect_or_die(cfg);
    if (!conn)
        return 1;
    char err[512];
    int n = csa_migrate(conn, cfg->migrations_dir, err, sizeof err);
    PQfinish(conn);
    if (n < 0) {
        fprintf(stderr, "coldstartd migrate: %s\n", err);
        return 1;
    }
    printf("%d migration(s) applied\n", n);
    return 0;
}

/* Parses --scopes (a comma list of ingest, read, admin) into bits; 0 when malformed. */
static unsigned parse_scopes_option(const char *list)
{
    unsigned bits = 0;
    char name[16];
    size_t n = 0;
    for (const char *p = list;; p++) {
        if (*p == ',' || *p == '\0') {
            name[n] = '\0';
            unsigned bit = csa_scope_from_name(name);
            if (!bit)
                return 0;
            bits |= bit;
            n = 0;
            if (*p == '\0')
                return bits;
        } else if (n + 1 < sizeof name) {
            name[n++] = *p;
        } else {
            return 0;
        }
    }
}

static int print_new_key(PGconn *conn, const char *project_id, const char *key_name, unsigned scopes)
{
    char key[CSA_KEY_LEN + 1], names[40];
    PGresult *res = csa_key_insert(conn, project_id, key_name, scopes, key);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "coldstartd: cannot create the key: %s", PQresultErrorMessage(res));
    PQclear(res);
    if (!ok)
        return -1;
    csa_scopes_format(scopes, ", ", names, sizeof names);
    printf("API key with scopes %s (shown only now; store it safely):\n%s\n", names, key);
    sodium_memzero(key, sizeof key);
    return 0;
}

static int cmd_create_project(const csa_config *cfg, int argc, char **argv)
{
    static const char *const known[] = {"--name", "--slug", NULL};
    if (check_options(argc, argv, known) < 0)
        return EXIT_USAGE;
    const char *name = option(argc, argv, "--name");
    const char *slug_opt = option(argc, argv, "--slug");
    if (!name || !*name || strlen(name) > CSA_PROJECT_NAME_MAX) {
        fprintf(stderr, "coldstartd create-project: --name NAME is required (1 to 255 characters)\n");
        return EXIT_USAGE;
    }
    char slug[CSA_SLUG_MAX + 1];
    if (slug_opt)
        snprintf(slug, sizeof slug, "%s", slug_opt);
    else
        csa_slug_from_name(name, slug, sizeof slug);
    if (!csa_slug_valid(slug) || (slug_opt && strlen(slug_opt) > CSA_SLUG_MAX)) {
        fprintf(stderr, "coldstartd create-project: --slug must be 1 to 100 characters of a-z, 0-9, '-' and '_'\n");
        return EXIT_USAGE;
    }
    PGconn *conn = connect_or_die(cfg);
    if (!conn)
        return 1;
    csa_new_project p;
    char detail[CSA_DETAIL_MAX];
    csa_status st = csa_project_create(conn, name, slug, &p, detail);
    PQfinish(conn);
    if (st == CSA_ERR_CONFLICT) {
        fprintf(stderr, "coldstartd create-project: a project with slug \"%s\" already exists\n", slug);
        return 1;
    }
    if (st != CSA_OK) {
        fprintf(stderr, "coldstartd create-project: %s (details in the log above)\n", detail);
        return 1;
    }
    /* printed only after the commit; the ingest key last, alone on its line, so that scripts
     * taking the last line hand functions the key that can do nothing but send records */
    printf("Project \"%s\" created (slug: %s, id: %s)\n", name, slug, p.id);
    printf("Admin key, scopes ingest, read, admin: manages keys and reads; keep it off functions\n"
           "(shown only now; store it safely):\n%s\n",
           p.admin.key);
    printf("Ingest key, scope ingest: put this one in your functions (COLDSTART_API_KEY)\n"
           "(shown only now; store it safely):\n%s\n",
           p.ingest.key);
    csa_new_project_wipe(&p);
    return 0;
}

static int cmd_create_key(const csa_config *cfg, int argc, char **argv)
{
    static const char *const known[] = {"--project", "--name", "--scopes", NULL};
    if (check_options(argc, argv, known) < 0)
        return EXIT_USAGE;
    const char *slug = option(argc, argv, "--project");
    const char *name = option(argc, argv, "--name");
    const char *scope_list = option(argc, argv, "--scopes");
    if (!slug || !*slug) {
        fprintf(stderr, "coldstartd create-key: --project SLUG is required\n");
        return EXIT_USAGE;
    }
    if (name && strlen(name) > 255) {
        fprintf(stderr, "coldstartd create-key: --name must be at most 255 characters\n");
        return EXIT_USAGE;
    }
    unsigned scopes = scope_list ? parse_scopes_option(scope_list) : CSA_SCOPE_INGEST;
    if (!scopes) {
        fprintf(stderr, "coldstartd create-key: --scopes takes a comma list of ingest, read and admin\n");
        return EXIT_USAGE;
    }
    PGconn *conn = connect_or_die(cfg);
    if (!conn)
        return 1;
    const char *params[] = {slug};
    PGresult *res = csa_db_exec(conn, "SELECT id::text FROM projects WHERE slug = $1", 1, params);
    int rc = 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "coldstartd create-key: %s", PQresultErrorMessage(res));
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "coldstartd create-key: no project with slug \"%s\"\n", slug);
    } else {
        char project_id[CSA_UUID_LEN + 1];
        snprintf(project_id, sizeof project_id, "%s", PQgetvalue(res, 0, 0));
        rc = print_new_key(conn, project_id, name, scopes) == 0 ? 0 : 1;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int cmd_revoke_key(const csa_config *cfg, int argc, char **argv)
{
    static const char *const known[] = {"--prefix", NULL};
    if (check_options(argc, argv, known) < 0)
        return EXIT_USAGE;
    const char *prefix = option(argc, argv, "--prefix");
    if (!prefix || strlen(prefix) != CSA_KEY_PREFIX_LEN || strncmp(prefix, "csa_", 4) != 0) {
        fprintf(stderr, "coldstartd revoke-key: --prefix takes the key's first 8 characters, e.g. csa_a1b2\n");
        return EXIT_USAGE;
    }
    PGconn *conn = connect_or_die(cfg);
    if (!conn)
        return 1;
    const char *params[] = {prefix};
    PGresult *res = csa_db_exec(conn, "UPDATE api_keys SET is_active = false WHERE key_prefix = $1 AND is_active", 1,
                                params);
    int rc = 1;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "coldstartd revoke-key: %s", PQresultErrorMessage(res));
    } else {
        int n = atoi(PQcmdTuples(res));
        if (n == 0) {
            fprintf(stderr, "coldstartd revoke-key: no active key with prefix %s\n", prefix);
        } else {
            printf("%d key(s) with prefix %s revoked\n", n, prefix);
            rc = 0;
        }
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("coldstartd %s\n", CSA_VERSION);
        return 0;
    }
    static const char *const commands[] = {"serve",      "migrate", "create-project", "create-key",
                                           "revoke-key", "report",  "maintain",       NULL};
    int known = 0;
    for (const char *const *c = commands; *c; c++)
        known |= strcmp(cmd, *c) == 0;
    if (!known) {
        fprintf(stderr, "coldstartd: unknown command \"%s\" (see coldstartd --help)\n", cmd);
        return EXIT_USAGE;
    }
    csa_config cfg;
    char err[512];
    if (csa_config_load(&cfg, ".env", err, sizeof err) < 0) {
        fprintf(stderr, "coldstartd: configuration error: %s\n", err);
        return EXIT_USAGE;
    }
    csa_log_level level = CSA_LOG_INFO;
    csa_log_parse_level(cfg.log_level, &level);
    csa_log_set_level(level);
    if (csa_keys_init() < 0) {
        fprintf(stderr, "coldstartd: libsodium failed to initialise\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cmd, "serve") == 0) {
        static const char *const none[] = {NULL};
        if (argc > 2 && check_options(argc, argv, none) < 0)
            return EXIT_USAGE;
        return csa_server_run(&cfg);
    }
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(&cfg);
    if (strcmp(cmd, "maintain") == 0) {
        PGconn *conn = connect_or_die(&cfg);
        if (!conn)
            return 1;
        int created = 0, dropped = 0;
        int rc = csa_db_maintain(conn, cfg.retention_months, &created, &dropped, err, sizeof err);
        long long folded = rc < 0 ? -1 : csa_db_fold_rollups(conn, err, sizeof err);
        long long sketched = folded < 0 ? -1 : csa_day_sketches_fold_all(conn, 1 << 30, err, sizeof err);
        PQfinish(conn);
        if (rc < 0 || folded < 0 || sketched < 0) {
            fprintf(stderr, "coldstartd maintain: %s\n", err);
            return 1;
        }
        printf("partitions: %d created, %d dropped (retention %d months)\n", created, dropped, cfg.retention_months);
        printf("rollups: %lld delta rows folded\n", folded);
        printf("day sketches: %lld cold starts folded\n", sketched);
        return 0;
    }
    if (strcmp(cmd, "create-project") == 0)
        return cmd_create_project(&cfg, argc, argv);
    if (strcmp(cmd, "create-key") == 0)
        return cmd_create_key(&cfg, argc, argv);
    if (strcmp(cmd, "report") == 0) {
        static const char *const report_options[] = {"--project", "--function", "--json", NULL};
        if (check_options(argc, argv, report_options) < 0)
            return EXIT_USAGE;
        int as_json = 0;
        for (int i = 2; i < argc; i++)
            as_json |= strcmp(argv[i], "--json") == 0;
        return csa_report(&cfg, option(argc, argv, "--project"), option(argc, argv, "--function"), as_json);
    }
    return cmd_revoke_key(&cfg, argc, argv);
}
