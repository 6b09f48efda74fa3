/*
 * fuzz_rules.c: libFuzzer target for the recommendation rule loader (csa_rules_load, from an
 * in-memory file) and, when a table loads, for the engine applied to a fixed breakdown
 * (csa_rules_recommend), so that whatever a loadable table holds is also exercised.
 */
#include "rules.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static json_t *modules, *context;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    modules = json_pack("{s:{s:f, s:f, s:f, s:f, s:f, s:s}, s:{s:f, s:f, s:f, s:f, s:n}, s:{s:f, s:f, s:f, s:f}, "
                        "s:{s:f, s:f, s:f, s:f, s:s}}",
                        "aws-sdk", "avg_load_time_ms", 850.0, "p50_ms", 800.0, "p95_ms", 900.0, "p99_ms", 950.0,
                        "seen_in", 1.0, "version", "2.1500.0",
                        "@aws-sdk/client-s3", "avg_load_time_ms", 120.0, "p50_ms", 110.0, "p95_ms", 150.0, "p99_ms",
                        160.0, "version",
                        "moment", "avg_load_time_ms", 340.5, "p50_ms", 330.0, "p95_ms", 400.0, "p99_ms", 420.0,
                        "./src/handlers/payment", "avg_load_time_ms", 45.0, "p50_ms", 44.0, "p95_ms", 50.0, "p99_ms",
                        60.0, "version", "v1.2.3-beta+build");
    context = json_pack("{s:f, s:f, s:i}", "init_p50_ms", 2850.0, "module_load_p50_ms", 1284.0, "cold_starts", 40);
    return modules && context ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_rules", 0);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    csa_rules *rules = csa_rules_load(path, err, sizeof err);
    close(fd);
    if (!rules)
        return 0;
    json_t *recs = csa_rules_recommend(rules, modules, context);
    if (!json_is_array(recs))
        abort();
    json_decref(recs);
    csa_rules_free(rules);
    return 0;
}
