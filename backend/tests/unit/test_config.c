/* Unit tests for config.c: defaults, overrides, .env files, DATABASE_URL forms, bad values. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const all_vars[] = {"DATABASE_URL",
                                       "DATABASE_POOL_SIZE",
                                       "HOST",
                                       "PORT",
                                       "WORKERS",
                                       "WRITERS",
                                       "APP_ENV",
                                       "APP_DEBUG",
                                       "CORS_ORIGINS",
                                       "LOG_LEVEL",
                                       "LOG_REQUESTS",
                                       "REQUEST_TIMEOUT",
                                       "IDLE_TIMEOUT",
                                       "MAX_CONNECTIONS",
                                       "MAX_BODY_SINGLE",
                                       "MAX_BODY_BATCH",
                                       "KEY_CACHE_TTL",
                                       "WRITER_BATCH_MAX",
                                       "SHUTDOWN_TIMEOUT",
                                       "MIGRATIONS_DIR",
                                       "CSA_TEST_FROM_FILE",
                                       "CSA_TEST_QUOTED",
                                       "TRUSTED_PROXIES",
                                       "APP_SECRET_KEY",
                                       "WRITER_QUEUE_MAX_BYTES",
                                       "AUTH_FAIL_LIMIT",
                                       "AUTH_FAIL_WINDOW",
                                       "PRICE_PER_GB_SECOND_X86_64",
                                       "PRICE_PER_GB_SECOND_ARM64",
                                       NULL};

static void clean_env(void)
{
    for (const char *const *v = all_vars; *v; v++)
        unsetenv(*v);
}

TestSuite(config, .init = clean_env);

Test(config, defaults)
{
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.port, 8000);
    cr_expect_str_eq(cfg.host, "0.0.0.0");
    cr_expect_eq(cfg.database_pool_size, 10);
    cr_expect_eq(cfg.max_body_single, 1048576u);
    cr_expect_eq(cfg.max_body_batch, 10485760u);
    cr_expect_eq(cfg.key_cache_ttl_s, 5);
    cr_expect_str_eq(cfg.app_env, "development");
    cr_expect_eq(cfg.app_debug, 0);
    cr_expect_eq(cfg.log_requests, 1);
    cr_expect_eq(cfg.prices.x86_64, 0.0000166667, "AWS's x86_64 price per GB-second");
    cr_expect_eq(cfg.prices.arm64, 0.0000133334, "AWS's arm64 price per GB-second");
}

Test(config, prices_per_gb_second)
{
    setenv("PRICE_PER_GB_SECOND_X86_64", "0.0000200000", 1);
    setenv("PRICE_PER_GB_SECOND_ARM64", "1.5e-5", 1);
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.prices.x86_64, 0.00002);
    cr_expect_eq(cfg.prices.arm64, 0.000015);
    setenv("PRICE_PER_GB_SECOND_ARM64", "0", 1); /* free is a price (e.g. to hide arm64's cost) */
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.prices.arm64, 0);
}

Test(config, environment_overrides)
{
    setenv("PORT", "9001", 1);
    setenv("WORKERS", "4", 1);
    setenv("APP_DEBUG", "true", 1);
    setenv("APP_ENV", "production", 1);
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.port, 9001);
    cr_expect_eq(cfg.workers, 4);
    cr_expect_eq(cfg.app_debug, 1);
    cr_expect_str_eq(cfg.app_env, "production");
}

static void expect_bad(const char *name, const char *value)
{
    clean_env();
    setenv(name, value, 1);
    csa_config cfg;
    char err[256] = "";
    cr_expect_eq(csa_config_load(&cfg, NULL, err, sizeof err), -1, "%s=%s should be refused", name, value);
    cr_expect(strncmp(err, name, strlen(name)) == 0, "the error names the setting: \"%s\"", err);
    cr_expect(strchr(err, '\n') == NULL, "one line");
}

Test(config, bad_values_name_the_setting)
{
    expect_bad("PORT", "abc");
    expect_bad("PORT", "70000");
    expect_bad("PORT", "80x");
    expect_bad("PORT", "-1");
    expect_bad("WORKERS", "0");
    expect_bad("DATABASE_POOL_SIZE", "1e3");
    expect_bad("APP_DEBUG", "maybe");
    expect_bad("APP_ENV", "prod");
    expect_bad("LOG_LEVEL", "loud");
    expect_bad("PRICE_PER_GB_SECOND_X86_64", "cheap");
    expect_bad("PRICE_PER_GB_SECOND_X86_64", "-0.00001");
    expect_bad("PRICE_PER_GB_SECOND_ARM64", "nan");
    expect_bad("PRICE_PER_GB_SECOND_ARM64", "0.00001 USD");
    expect_bad("DATABASE_URL", "mysql://user@host/db");
    expect_bad("DATABASE_URL", "not a url");
}

Test(config, database_url_forms)
{
    char out[512], err[256];
    cr_assert_eq(csa_normalize_database_url("postgresql+asyncpg://u:p@db:5432/coldstart", out, sizeof out, err,
                                            sizeof err),
                 0, "%s", err);
    cr_expect_str_eq(out, "postgresql://u:p@db:5432/coldstart");
    cr_assert_eq(csa_normalize_database_url("postgres://u@localhost/x", out, sizeof out, err, sizeof err), 0);
    cr_expect_str_eq(out, "postgresql://u@localhost/x");
    cr_assert_eq(csa_normalize_database_url("postgresql://u@localhost:5433/x?sslmode=disable", out, sizeof out, err,
                                            sizeof err),
                 0);
    cr_expect_str_eq(out, "postgresql://u@localhost:5433/x?sslmode=disable");
}

Test(config, database_url_error_hides_password)
{
    char out[512], err[256];
    cr_assert_eq(csa_normalize_database_url("postgresql://u:s3cretpw@host:notaport/db", out, sizeof out, err,
                                            sizeof err),
                 -1);
    cr_expect(strstr(err, "s3cretpw") == NULL, "password leaked into: %s", err);
    cr_expect(strncmp(err, "DATABASE_URL", 12) == 0, "%s", err);
}

Test(config, env_file_fills_unset_names_only)
{
    char path[] = "/tmp/csa_env_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n\nexport CSA_TEST_FROM_FILE=hello # trailing\nPORT=7000\nCSA_TEST_QUOTED=\"a b # c\"\n", f);
    fclose(f);
    setenv("PORT", "7001", 1);
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.port, 7001, "the environment wins over .env");
    cr_expect_str_eq(getenv("CSA_TEST_FROM_FILE"), "hello");
    cr_expect_str_eq(getenv("CSA_TEST_QUOTED"), "a b # c");
    unlink(path);
}

Test(config, env_file_bad_line_is_reported_with_its_number)
{
    char path[] = "/tmp/csa_env_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("PORT=7000\nthis is not a setting\n", f);
    fclose(f);
    csa_config cfg;
    char err[256] = "";
    cr_expect_eq(csa_config_load(&cfg, path, err, sizeof err), -1);
    cr_expect(strstr(err, ":2:") != NULL, "line number in: %s", err);
    unlink(path);
}

Test(config, missing_env_file_is_fine)
{
    csa_config cfg;
    char err[256] = "";
    cr_expect_eq(csa_config_load(&cfg, "/nonexistent/.env", err, sizeof err), 0, "%s", err);
}

Test(config, cors_origins_json_array_and_comma_list)
{
    setenv("CORS_ORIGINS", "[\"http://localhost:3000\",\"https://app.coldstart.dev\"]", 1);
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.ncors, 2);
    cr_expect_str_eq(cfg.cors[0], "http://localhost:3000");
    cr_expect_str_eq(cfg.cors[1], "https://app.coldstart.dev");
    setenv("CORS_ORIGINS", "http://a.example, https://b.example/", 1);
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.ncors, 2);
    cr_expect_str_eq(cfg.cors[1], "https://b.example");
    expect_bad("CORS_ORIGINS", "[\"http://ok\", 3]");
    expect_bad("CORS_ORIGINS", "ftp://nope");
}

Test(config, secret_strength)
{
    char why[128];
    cr_expect_eq(csa_secret_strong("", why, sizeof why), 0);
    cr_expect_eq(csa_secret_strong("s0m3-short-s3cret", why, sizeof why), 0);
    cr_expect_eq(csa_secret_strong("ssssssssssssssssssssssssssssssssssssssss", why, sizeof why), 0);
    cr_expect_eq(csa_secret_strong("changeme-changeme-changeme-changeme-changeme", why, sizeof why), 0, "%s", why);
    cr_expect(strstr(why, "repetitive") != NULL, "%s", why);
    cr_expect_eq(csa_secret_strong("abababababababababababababababababab", why, sizeof why), 0);
    /* what openssl rand -base64 32 and -hex 32 print */
    cr_expect_eq(csa_secret_strong("q8Yl2mN0vX+3kR7tP1sJ9wZc4bH6fD5gE0aLuQiMyTo=", why, sizeof why), 1, "%s", why);
    cr_expect_eq(csa_secret_strong("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", why, sizeof why),
                 1, "%s", why);
}

Test(config, weak_secret_disables_the_admin_api)
{
    csa_config cfg;
    char err[256] = "";
    setenv("APP_SECRET_KEY", "ssssssssssssssssssssssssssssssssssssssss", 1);
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.admin_secret_ok, 0);
    setenv("APP_SECRET_KEY", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 1);
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.admin_secret_ok, 1);
}

Test(config, trusted_proxies)
{
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.nproxies, 0, "off by default");
    setenv("TRUSTED_PROXIES", " 127.0.0.1, ::1 ,10.0.0.2", 1);
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.nproxies, 3);
    cr_expect_str_eq(cfg.proxies[0], "127.0.0.1");
    cr_expect_str_eq(cfg.proxies[1], "::1");
    cr_expect_str_eq(cfg.proxies[2], "10.0.0.2");
    setenv("TRUSTED_PROXIES", "nginx", 1);
    cr_expect_eq(csa_config_load(&cfg, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "TRUSTED_PROXIES") != NULL, "%s", err);
}

Test(config, writer_queue_bytes)
{
    csa_config cfg;
    char err[256] = "";
    cr_assert_eq(csa_config_load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.writer_queue_max_bytes, (size_t)134217728);
    setenv("WRITER_QUEUE_MAX_BYTES", "1000", 1);
    cr_expect_eq(csa_config_load(&cfg, NULL, err, sizeof err), -1);
}
