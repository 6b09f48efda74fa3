/* config.c: see config.h. */
#include "config.h"

#include "webhook.h"

#include <ctype.h>
#include <jansson.h>
#include <errno.h>
#include <libpq-fe.h>
#include <arpa/inet.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One row per integer setting: where it lives, its default and its bounds. */
typedef struct int_setting {
    const char *name;
    size_t offset;
    long long def, min, max;
    int is_size; /* stored as size_t */
} int_setting;

#define OFF(f) offsetof(csa_config, f)
static const int_setting int_settings[] = {
    {"DATABASE_POOL_SIZE", OFF(database_pool_size), 10, 1, 500, 0},
    {"PORT", OFF(port), 8000, 1, 65535, 0},
    {"WORKERS", OFF(workers), 2, 1, 64, 0},
    {"WRITERS", OFF(writers), 2, 1, 16, 0},
    {"REQUEST_TIMEOUT", OFF(request_timeout_s), 30, 1, 3600, 0},
    {"IDLE_TIMEOUT", OFF(idle_timeout_s), 60, 1, 3600, 0},
    {"MAX_CONNECTIONS", OFF(max_connections), 10000, 1, 1000000, 0},
    {"MAX_BODY_SINGLE", OFF(max_body_single), 1048576, 1024, 1073741824, 1},
    {"MAX_BODY_BATCH", OFF(max_body_batch), 10485760, 1024, 1073741824, 1},
    {"KEY_CACHE_TTL", OFF(key_cache_ttl_s), 5, 0, 3600, 0},
    {"WRITER_BATCH_MAX", OFF(writer_batch_max), 2000, 1, 100000, 0},
    {"WRITER_QUEUE_MAX_BYTES", OFF(writer_queue_max_bytes), 134217728, 1048576, 68719476736LL, 1},
    {"AUTH_FAIL_LIMIT", OFF(auth_fail_limit), 100, 1, 100000000, 0},
    {"AUTH_FAIL_WINDOW", OFF(auth_fail_window_s), 60, 1, 86400, 0},
    {"SHUTDOWN_TIMEOUT", OFF(shutdown_timeout_s), 25, 1, 3600, 0},
    {"RATE_LIMIT_INGEST", OFF(rate_limit_ingest), 10000, 1, 100000000, 0},
    {"RATE_LIMIT_QUERY", OFF(rate_limit_query), 100, 1, 100000000, 0},
    {"RATE_LIMIT_WINDOW", OFF(rate_limit_window_s), 60, 1, 86400, 0},
    /* per project, all its keys together; 0 = five times the per-key limit */
    {"RATE_LIMIT_PROJECT_INGEST", OFF(rate_limit_project_ingest), 0, 0, 100000000, 0},
    {"RATE_LIMIT_PROJECT_QUERY", OFF(rate_limit_project_query), 0, 0, 100000000, 0},
    {"QUERY_THREADS", OFF(query_threads), 2, 1, 64, 0},
    {"QUERY_TIMEOUT_MS", OFF(query_timeout_ms), 10000, 0, 3600000, 0},
    {"MAX_READ_WINDOW_DAYS", OFF(max_read_window_days), 90, 1, 3650, 0},
    /* module timings one read may aggregate: about 16 bytes each, so 2,000,000 is ~32 MiB a read */
    {"MAX_READ_SAMPLES", OFF(max_read_samples), 2000000, 1000, 1000000000, 0},
    {"METRICS_PORT", OFF(metrics_port), 0, 0, 65535, 0},
    {"RETENTION_MONTHS", OFF(retention_months), 13, 0, 1200, 0},
    {"ALERT_EVAL_INTERVAL", OFF(alert_eval_interval_s), 60, 1, 86400, 0},
    {"ALERT_WEBHOOK_TIMEOUT", OFF(alert_webhook_timeout_s), 10, 1, 300, 0},
    {"ALERT_RETRY_BASE", OFF(alert_retry_base_s), 10, 1, 3600, 0},
    {"ALERT_MAX_ATTEMPTS", OFF(alert_max_attempts), 20, 1, 1000, 0},
};

/* One row per decimal setting. */
typedef struct double_setting {
    const char *name;
    size_t offset;
    double def, min, max;
} double_setting;

static const double_setting double_settings[] = {
    /* Lambda's price per GB-second by architecture, for the init cost (cost.h) */
    {"PRICE_PER_GB_SECOND_X86_64", OFF(prices.x86_64), CSA_PRICE_GB_S_X86_64_DEFAULT, 0, 1},
    {"PRICE_PER_GB_SECOND_ARM64", OFF(prices.arm64), CSA_PRICE_GB_S_ARM64_DEFAULT, 0, 1},
};

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int copy_setting(char *dst, size_t size, const char *name, const char *value, char *err, size_t err_size)
{
    size_t n = strlen(value);
    if (n >= size) {
        snprintf(err, err_size, "%s: value too long (%zu bytes, at most %zu)", name, n, size - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

int csa_normalize_database_url(const char *in, char *out, size_t out_size, char *err, size_t err_size)
{
    const char *rest = NULL;
    const char *sep = strstr(in, "://");
    if (sep) {
        size_t scheme_len = (size_t)(sep - in);
        char scheme[64];
        if (scheme_len < sizeof scheme) {
            memcpy(scheme, in, scheme_len);
            scheme[scheme_len] = '\0';
            char *plus = strchr(scheme, '+');
            if (plus)
                *plus = '\0'; /* postgresql+asyncpg -> postgresql */
            if (strcasecmp(scheme, "postgresql") == 0 || strcasecmp(scheme, "postgres") == 0)
                rest = sep + 3;
        }
    }
    if (!rest) {
        snprintf(err, err_size,
                 "DATABASE_URL: expected postgresql://user:password@host:port/database "
                 "(postgres:// and postgresql+asyncpg:// are accepted too)");
        return -1;
    }
    int n = snprintf(out, out_size, "postgresql://%s", rest);
    if (n < 0 || (size_t)n >= out_size) {
        snprintf(err, err_size, "DATABASE_URL: too long");
        return -1;
    }
    char *pqerr = NULL;
    PQconninfoOption *opts = PQconninfoParse(out, &pqerr);
    if (!opts) {
        /* libpq's message names the problem, never the password */
        char reason[200] = "malformed URL";
        if (pqerr) {
            snprintf(reason, sizeof reason, "%s", pqerr);
            reason[strcspn(reason, "\n")] = '\0';
            PQfreemem(pqerr);
        }
        snprintf(err, err_size, "DATABASE_URL: %s", reason);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "port") == 0 && o->val) {
            for (const char *c = o->val; *c; c++) {
                if ((*c < '0' || *c > '9') && *c != ',') { /* libpq allows a list for multiple hosts */
                    PQconninfoFree(opts);
                    snprintf(err, err_size, "DATABASE_URL: the port must be a number");
                    return -1;
                }
            }
        }
    }
    PQconninfoFree(opts);
    return 0;
}

static int unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && ((v[0] == '"' && v[n - 1] == '"') || (v[0] == '\'' && v[n - 1] == '\''))) {
        memmove(v, v + 1, n - 2);
        v[n - 2] = '\0';
        return 0;
    }
    if (n >= 1 && (v[0] == '"' || v[0] == '\''))
        return -1; /* unterminated quote */
    return 0;
}

int csa_load_env_file(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 1 : (snprintf(err, err_size, "%s: cannot read", path), -1);
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, err_size, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        while (n > 0 && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        char *eq = strchr(p, '=');
        if (!eq || eq == p) {
            snprintf(err, err_size, "%s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = p, *value = eq + 1;
        for (char *k = key; *k; k++) {
            if (!(isalnum((unsigned char)*k) || *k == '_')) {
                snprintf(err, err_size, "%s:%d: bad variable name", path, lineno);
                rc = -1;
                goto out;
            }
        }
        while (isspace((unsigned char)*value))
            value++;
        if (value[0] != '"' && value[0] != '\'') {
            char *hash = strstr(value, " #"); /* trailing comment on an unquoted value */
            if (hash)
                *hash = '\0';
            size_t vn = strlen(value);
            while (vn > 0 && isspace((unsigned char)value[vn - 1]))
                value[--vn] = '\0';
        }
        if (unquote(value) != 0) {
            snprintf(err, err_size, "%s:%d: %s: unterminated quote", path, lineno, key);
            rc = -1;
            break;
        }
        setenv(key, value, 0);
    }
out:
    fclose(f);
    return rc;
}

static int add_origin(csa_config *cfg, const char *o, size_t n, char *err, size_t err_size)
{
    while (n > 0 && (*o == ' ' || *o == '\t')) {
        o++;
        n--;
    }
    while (n > 0 && (o[n - 1] == ' ' || o[n - 1] == '\t' || o[n - 1] == '/'))
        n--;
    if (n == 0)
        return 0;
    if (cfg->ncors >= CSA_MAX_CORS_ORIGINS || n >= sizeof cfg->cors[0]) {
        snprintf(err, err_size, "CORS_ORIGINS: at most %d origins of at most %zu characters", CSA_MAX_CORS_ORIGINS,
                 sizeof cfg->cors[0] - 1);
        return -1;
    }
    if (!(n == 1 && o[0] == '*') && strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0) {
        snprintf(err, err_size, "CORS_ORIGINS: \"%.*s\" is not an origin (http://host[:port], https://... or *)",
                 (int)(n > 60 ? 60 : n), o);
        return -1;
    }
    memcpy(cfg->cors[cfg->ncors], o, n);
    cfg->cors[cfg->ncors][n] = '\0';
    cfg->ncors++;
    return 0;
}

int csa_parse_cors_origins(const char *value, csa_config *cfg, char *err, size_t err_size)
{
    cfg->ncors = 0;
    const char *p = value;
    while (*p == ' ')
        p++;
    if (*p == '[') {
        json_error_t jerr;
        json_t *arr = json_loads(p, 0, &jerr);
        if (!json_is_array(arr)) {
            json_decref(arr);
            snprintf(err, err_size, "CORS_ORIGINS: not a JSON array of strings");
            return -1;
        }
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            if (!json_is_string(v)) {
                json_decref(arr);
                snprintf(err, err_size, "CORS_ORIGINS: not a JSON array of strings");
                return -1;
            }
            if (add_origin(cfg, json_string_value(v), json_string_length(v), err, err_size) < 0) {
                json_decref(arr);
                return -1;
            }
        }
        json_decref(arr);
        return 0;
    }
    while (*p) {
        size_t n = strcspn(p, ",");
        if (add_origin(cfg, p, n, err, err_size) < 0)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* TRUSTED_PROXIES: comma-separated IPv4/IPv6 literals, kept in their canonical text form. */
static int parse_trusted_proxies(csa_config *cfg, char *err, size_t err_size)
{
    cfg->nproxies = 0;
    for (const char *p = cfg->trusted_proxies; *p;) {
        size_t n = strcspn(p, ",");
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m > 0) {
            char one[64];
            unsigned char bin[16];
            int family = memchr(p, ':', m) ? AF_INET6 : AF_INET;
            if (m >= sizeof one || cfg->nproxies >= CSA_MAX_TRUSTED_PROXIES) {
                snprintf(err, err_size, "TRUSTED_PROXIES: at most %d addresses", CSA_MAX_TRUSTED_PROXIES);
                return -1;
            }
            memcpy(one, p, m);
            one[m] = '\0';
            if (inet_pton(family, one, bin) != 1) {
                snprintf(err, err_size, "TRUSTED_PROXIES: \"%.60s\" is not an IP address", one);
                return -1;
            }
            inet_ntop(family, bin, cfg->proxies[cfg->nproxies], sizeof cfg->proxies[0]);
            cfg->nproxies++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int csa_secret_strong(const char *secret, char *why, size_t why_size)
{
    char scratch[8];
    if (!why) {
        why = scratch;
        why_size = sizeof scratch;
    }
    size_t len = strlen(secret);
    if (len < 32) {
        snprintf(why, why_size, "shorter than 32 characters");
        return 0;
    }
    size_t freq[256] = {0};
    for (size_t i = 0; i < len; i++)
        freq[(unsigned char)secret[i]]++;
    double bits = 0;
    for (int c = 0; c < 256; c++) {
        if (freq[c]) {
            double p = (double)freq[c] / (double)len;
            bits -= (double)freq[c] * log2(p);
        }
    }
    if (bits < 96.0) {
        snprintf(why, why_size, "too little variety (about %.0f bits; 96 needed)", bits);
        return 0;
    }
    size_t repeats = 0, trigrams = len - 2;
    for (size_t i = 1; i < trigrams; i++) {
        for (size_t j = 0; j < i; j++) {
            if (memcmp(secret + i, secret + j, 3) == 0) {
                repeats++;
                break;
            }
        }
    }
    if (repeats * 4 > trigrams) {
        snprintf(why, why_size, "repetitive (%zu of %zu three-character sequences repeat)", repeats, trigrams);
        return 0;
    }
    return 1;
}

int csa_config_load(csa_config *cfg, const char *env_file, char *err, size_t err_size)
{
    memset(cfg, 0, sizeof *cfg);
    if (env_file && csa_load_env_file(env_file, err, err_size) < 0)
        return -1;

    for (size_t i = 0; i < sizeof int_settings / sizeof int_settings[0]; i++) {
        const int_setting *s = &int_settings[i];
        long long v = s->def;
        const char *raw = getenv(s->name);
        if (raw && *raw) {
            char *end = NULL;
            errno = 0;
            v = strtoll(raw, &end, 10);
            if (errno || end == raw || *end != '\0' || v < s->min || v > s->max) {
                snprintf(err, err_size, "%s: expected an integer from %lld to %lld, got \"%.40s\"", s->name, s->min,
                         s->max, raw);
                return -1;
            }
        }
        if (s->is_size)
            *(size_t *)((char *)cfg + s->offset) = (size_t)v;
        else
            *(int *)((char *)cfg + s->offset) = (int)v;
    }

    for (size_t i = 0; i < sizeof double_settings / sizeof double_settings[0]; i++) {
        const double_setting *s = &double_settings[i];
        double v = s->def;
        const char *raw = getenv(s->name);
        if (raw && *raw) {
            char *end = NULL;
            errno = 0;
            v = strtod(raw, &end);
            if (errno || end == raw || *end != '\0' || !isfinite(v) || v < s->min || v > s->max) {
                snprintf(err, err_size,
                         "%s: expected a decimal number from %g to %g (USD per GB-second), got \"%.40s\"", s->name,
                         s->min, s->max, raw);
                return -1;
            }
        }
        memcpy((char *)cfg + s->offset, &v, sizeof v); /* a double member at offsetof(): see the table */
    }

    const char *url = getenv("DATABASE_URL");
    if (!url || !*url)
        url = "postgresql://postgres:postgres@127.0.0.1:5432/coldstart";
    if (csa_normalize_database_url(url, cfg->database_url, sizeof cfg->database_url, err, err_size) < 0)
        return -1;

    struct {
        const char *name, *def;
        char *dst;
        size_t size;
    } strs[] = {
        {"HOST", "0.0.0.0", cfg->host, sizeof cfg->host},
        {"APP_ENV", "development", cfg->app_env, sizeof cfg->app_env},
        {"CORS_ORIGINS", "", cfg->cors_origins, sizeof cfg->cors_origins},
        {"LOG_LEVEL", "info", cfg->log_level, sizeof cfg->log_level},
        {"MIGRATIONS_DIR", CSA_DEFAULT_MIGRATIONS_DIR, cfg->migrations_dir, sizeof cfg->migrations_dir},
        {"RULES_FILE", CSA_DEFAULT_RULES_FILE, cfg->rules_file, sizeof cfg->rules_file},
        {"APP_SECRET_KEY", "", cfg->app_secret_key, sizeof cfg->app_secret_key},
        {"METRICS_HOST", "127.0.0.1", cfg->metrics_host, sizeof cfg->metrics_host},
        {"TRUSTED_PROXIES", "", cfg->trusted_proxies, sizeof cfg->trusted_proxies},
        {"ALERT_WEBHOOK_CA_FILE", "", cfg->alert_webhook_ca_file, sizeof cfg->alert_webhook_ca_file},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const char *v = getenv(strs[i].name);
        if (!v || !*v)
            v = strs[i].def;
        if (copy_setting(strs[i].dst, strs[i].size, strs[i].name, v, err, err_size) < 0)
            return -1;
    }
    if (strcmp(cfg->app_env, "development") && strcmp(cfg->app_env, "production") && strcmp(cfg->app_env, "test") &&
        strcmp(cfg->app_env, "staging")) {
        snprintf(err, err_size, "APP_ENV: expected development, staging, production or test, got \"%.40s\"",
                 cfg->app_env);
        return -1;
    }
    static const char *const levels[] = {"debug", "info", "warn", "warning", "error"};
    int level_ok = 0;
    for (int i = 0; i < 5; i++)
        level_ok |= strcasecmp(cfg->log_level, levels[i]) == 0;
    if (!level_ok) {
        snprintf(err, err_size, "LOG_LEVEL: expected debug, info, warn or error, got \"%.40s\"", cfg->log_level);
        return -1;
    }

    struct {
        const char *name;
        int def;
        int *dst;
    } bools[] = {
        {"APP_DEBUG", 0, &cfg->app_debug},
        {"LOG_REQUESTS", 1, &cfg->log_requests},
        {"ALERT_ALLOW_PRIVATE_WEBHOOKS", 0, &cfg->alert_allow_private_webhooks},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        const char *v = getenv(bools[i].name);
        *bools[i].dst = bools[i].def;
        if (v && *v && parse_bool(v, bools[i].dst) < 0) {
            snprintf(err, err_size, "%s: expected true or false, got \"%.40s\"", bools[i].name, v);
            return -1;
        }
    }
    if (csa_parse_cors_origins(cfg->cors_origins, cfg, err, err_size) < 0)
        return -1;
    if (cfg->rate_limit_project_ingest == 0)
        cfg->rate_limit_project_ingest = cfg->rate_limit_ingest > 100000000 / 5 ? 100000000
                                                                                : cfg->rate_limit_ingest * 5;
    if (cfg->rate_limit_project_query == 0)
        cfg->rate_limit_project_query = cfg->rate_limit_query > 100000000 / 5 ? 100000000 : cfg->rate_limit_query * 5;
    if (parse_trusted_proxies(cfg, err, err_size) < 0)
        return -1;
    char why[400];
    if (cfg->alert_webhook_ca_file[0] && csa_webhook_check_ca_file(cfg->alert_webhook_ca_file, why, sizeof why) < 0) {
        snprintf(err, err_size, "ALERT_WEBHOOK_CA_FILE: %s", why);
        return -1;
    }
    cfg->admin_secret_ok = csa_secret_strong(cfg->app_secret_key, NULL, 0);
    if (cfg->max_body_single > cfg->max_body_batch) {
        snprintf(err, err_size, "MAX_BODY_SINGLE: must not exceed MAX_BODY_BATCH");
        return -1;
    }
    return 0;
}
