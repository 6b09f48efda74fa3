/*
 * cost.h: what init costs in dollars (issue 17). Since August 2025 Lambda bills the INIT phase of
 * on-demand functions like the handler's time: seconds x memory (GB) x the price per GB-second of
 * the function's architecture. The prices are settings (PRICE_PER_GB_SECOND_X86_64 and _ARM64,
 * config.c), AWS's public us-east-1 prices by default.
 *
 * How inits are counted (the same in the list, the detail, the deployments, the report and the
 * dashboards):
 *   - init_cost_usd: on-demand cold starts (start_kind "cold" or absent): the inits a request
 *     waited for, the request path's cost.
 *   - proactive_init_cost_usd: proactive inits (Lambda started the environment ahead of demand):
 *     billed at the same rate, but no request waited; reported apart, never in init_cost_usd.
 *   - provisioned inits: paid for by provisioned concurrency's own pricing, not estimated here;
 *     only counted (provisioned_starts).
 * A record without memory_allocated_mb counts its function's memory, else Lambda's default 128 MB;
 * an architecture other than arm64 (or none) is priced as x86_64.
 * A projection per month (csa_cost_per_month) extends a window's rate to 30 days: the window
 * counts from when the function was first seen if that is later (first_seen_at, or its first
 * cold start in the window if earlier) and up to now, and as at least an hour; a deployment's from
 * its first to its last record.
 */
#ifndef CSA_COST_H
#define CSA_COST_H

#include <jansson.h>

/* AWS Lambda's public price per GB-second, us-east-1, first tier (aws.amazon.com/lambda/pricing). */
#define CSA_PRICE_GB_S_X86_64_DEFAULT 0.0000166667
#define CSA_PRICE_GB_S_ARM64_DEFAULT 0.0000133334
#define CSA_MONTH_SECONDS (30.0 * 86400.0) /* "per month" is 30 days */
#define CSA_PROJECTION_MIN_SECONDS 3600.0  /* a projection extrapolates at least one hour of data */

typedef struct csa_prices {
    double x86_64; /* USD per GB-second */
    double arm64;
} csa_prices;

/* The dollars of one invocation row's init, as SQL: i is the invocations alias, f the functions
 * alias, x86 and arm the SQL text of the two price parameters (e.g. "$4", "$5"). */
#define CSA_INIT_COST_SQL(i, f, x86, arm) \
    "(" i ".init_duration_ms / 1000.0 * coalesce(" i ".memory_allocated_mb, " f ".memory_allocated_mb, 128)" \
    " / 1024.0 * CASE WHEN " i ".architecture = 'arm64' THEN " arm "::float8 ELSE " x86 "::float8 END)"

/* The dollars of one millisecond of one invocation row's init, as SQL (aliases and parameters as
 * CSA_INIT_COST_SQL): a package's share of a cold start is its self time (ms) times this. */
#define CSA_USD_PER_INIT_MS_SQL(i, f, x86, arm) \
    "(coalesce(" i ".memory_allocated_mb, " f ".memory_allocated_mb, 128) / 1024.0 / 1000.0" \
    " * CASE WHEN " i ".architecture = 'arm64' THEN " arm "::float8 ELSE " x86 "::float8 END)"

/* Prices as the text of SQL parameters (x86 and arm hold at least 32 bytes each). */
void csa_prices_params(const csa_prices *p, char *x86, char *arm);

/* {"x86_64": ..., "arm64": ...}: a new object. */
json_t *csa_prices_json(const csa_prices *p);

/* usd spent over span_seconds extended to 30 days; spans under CSA_PROJECTION_MIN_SECONDS count
 * as that minimum (a few minutes of data do not make a month). */
double csa_cost_per_month(double usd, double span_seconds);

/* Dollars as JSON: rounded to 1e-9 (a nano-dollar: one package's share of a cold start is often
 * under a micro-dollar); not finite -> null. A new value. */
json_t *csa_usd_json(double usd);

#endif
