/*
 * config.h: settings from the environment and an optional .env file.
 *
 * Names follow the spec (DATABASE_URL, HOST, PORT, ...). The process environment wins over .env;
 * .env only fills names that are unset. Every value is checked at load: a bad one is reported in
 * one line naming the setting, and the caller stops.
 */
#ifndef CSA_CONFIG_H
#define CSA_CONFIG_H

#include "cost.h"

#include <stddef.h>

#define CSA_CONFIG_STR 1024
#define CSA_MAX_CORS_ORIGINS 32
#define CSA_MAX_TRUSTED_PROXIES 16

typedef struct csa_config {
    char database_url[CSA_CONFIG_STR];         /* libpq form: "postgresql://..." (a +driver suffix removed) */
    int database_pool_size;                    /* connections for request-time queries (auth, health) */
    char host[256];                            /* listen address */
    int port;                                  /* listen port */
    int workers;                               /* HTTP event-loop threads */
    int writers;                               /* group-commit writer threads, each with its own connection */
    char app_env[64];                          /* development | production | test */
    int app_debug;                             /* 0 or 1 */
    char cors_origins[CSA_CONFIG_STR];         /* as given (JSON array or comma list) */
    char log_level[16];                        /* debug | info | warn | error */
    int log_requests;                          /* one log line per request */
    int request_timeout_s;                     /* whole-request deadline, from accept to the full request */
    int idle_timeout_s;                        /* keep-alive idle limit */
    int max_connections;                       /* open client connections, all workers together */
    size_t max_body_single;                    /* bytes, POST /api/v1/ingest */
    size_t max_body_batch;                     /* bytes, POST /api/v1/ingest/batch */
    int key_cache_ttl_s;                       /* seconds a key lookup is trusted (revocation delay) */
    int writer_batch_max;                      /* records per group-commit transaction */
    size_t writer_queue_max_bytes;             /* request bytes the writer may hold (queued + being written) */
    int auth_fail_limit;                       /* failed authentications per client address per window */
    int auth_fail_window_s;                    /* that window, seconds */
    char trusted_proxies[CSA_CONFIG_STR];      /* as given: addresses whose X-Real-IP / X-Forwarded-For count */
    char proxies[CSA_MAX_TRUSTED_PROXIES][64]; /* parsed TRUSTED_PROXIES (IP literals); none by default */
    int nproxies;
    int admin_secret_ok;    /* APP_SECRET_KEY is long and varied enough to enable the admin API */
    int shutdown_timeout_s; /* SIGTERM drain limit */
    char migrations_dir[CSA_CONFIG_STR];
    char rules_file[CSA_CONFIG_STR];            /* recommendation rule table */
    char app_secret_key[256];                   /* admin token for POST /api/v1/projects; "" = disabled */
    int rate_limit_ingest;                      /* ingest requests per key per window (a batch is one) */
    int rate_limit_query;                       /* query requests per key per window */
    int rate_limit_window_s;                    /* the window, seconds */
    int rate_limit_project_ingest;              /* ingest requests per project (all its keys) per window */
    int rate_limit_project_query;               /* query requests per project per window */
    int query_threads;                          /* threads running read-API queries */
    int query_timeout_ms;                       /* statement_timeout of read-API queries; 0 = none */
    int max_read_window_days;                   /* widest from..to a read may ask for (400 beyond) */
    int max_read_samples;                       /* module timings one read may aggregate (400 beyond) */
    int metrics_port;                           /* GET /metrics listener; 0 = off */
    char metrics_host[256];                     /* its address (default 127.0.0.1: not on the public listener) */
    int retention_months;                       /* drop invocation partitions older than this; 0 = keep all */
    int alert_eval_interval_s;                  /* seconds between evaluations of the alert rules (alerts.h) */
    int alert_webhook_timeout_s;                /* one webhook delivery: connect, send, status line */
    int alert_retry_base_s;                     /* first retry of a failed delivery; doubles per attempt, 1 h at most */
    int alert_max_attempts;                     /* deliveries tried before one is given up */
    int alert_allow_private_webhooks;           /* webhooks may reach loopback, private and link-local addresses */
    char alert_webhook_ca_file[CSA_CONFIG_STR]; /* PEM CAs trusted for https webhooks besides the system's; "" none */
    char cors[CSA_MAX_CORS_ORIGINS][256];       /* allowed origins parsed from CORS_ORIGINS ("*" = any) */
    int ncors;
    csa_prices prices; /* PRICE_PER_GB_SECOND_X86_64 / _ARM64: USD per GB-second (cost.h) */
} csa_config;

/* Parses CORS_ORIGINS: a JSON array of strings (the spec's form) or a comma-separated list.
 * Returns 0, or -1 with err set. */
int csa_parse_cors_origins(const char *value, csa_config *cfg, char *err, size_t err_size);

/*
 * Is `secret` (APP_SECRET_KEY) strong enough to guard the admin API? At least 32 characters, an
 * estimated entropy (Shannon, over its characters) of at least 96 bits, and at most a quarter of
 * its three-character sequences repeated (catches "changeme-changeme-..."). A heuristic: it
 * refuses obviously weak secrets; `openssl rand -base64 32` always passes. Returns 1, or 0 with
 * the reason in why.
 */
int csa_secret_strong(const char *secret, char *why, size_t why_size);

/*
 * Loads defaults, then `env_file` (may be NULL or missing), then the environment.
 * Returns 0, or -1 with one line (naming the setting, never a password) in err.
 */
int csa_config_load(csa_config *cfg, const char *env_file, char *err, size_t err_size);

/*
 * Normalises a DATABASE_URL into libpq's form: accepts postgresql://, postgres:// and the spec's
 * postgresql+asyncpg:// (any "+driver"), and checks it with libpq's parser.
 * Returns 0 and writes the result into out, or -1 with the reason in err (no password echoed).
 */
int csa_normalize_database_url(const char *in, char *out, size_t out_size, char *err, size_t err_size);

/* Reads KEY=VALUE lines (comments, blank lines, `export`, single/double quotes) from path and
 * calls setenv(key, value, 0) for each. Returns 0, 1 if the file does not exist, -1 on a bad line
 * (err names the file and line). */
int csa_load_env_file(const char *path, char *err, size_t err_size);

#endif
