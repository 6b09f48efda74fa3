/*
 * fuzz_config.c: libFuzzer target for configuration parsing: csa_normalize_database_url and
 * csa_parse_cors_origins on the input as a string, and csa_load_env_file on the input as the
 * content of a .env file (an in-memory file, memfd, opened through /proc/self/fd).
 * The environment is cleared after each run so that it does not grow across runs.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    char out[CSA_CONFIG_STR], err[512];
    if (csa_normalize_database_url(s, out, sizeof out, err, sizeof err) == 0 && !memchr(out, '\0', sizeof out))
        abort();

    static csa_config cfg; /* large: keep it off the stack */
    memset(&cfg, 0, sizeof cfg);
    if (csa_parse_cors_origins(s, &cfg, err, sizeof err) == 0 && (cfg.ncors < 0 || cfg.ncors > CSA_MAX_CORS_ORIGINS))
        abort();
    free(s);

    int fd = memfd_create("fuzz_env", 0);
    if (fd < 0)
        return 0;
    if (size == 0 || write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        (void)csa_load_env_file(path, err, sizeof err);
        clearenv();
    }
    close(fd);
    return 0;
}
