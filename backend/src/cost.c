/* cost.c: see cost.h. */
#include "cost.h"

#include <math.h>
#include <stdio.h>

void csa_prices_params(const csa_prices *p, char *x86, char *arm)
{
    snprintf(x86, 32, "%.12g", p->x86_64);
    snprintf(arm, 32, "%.12g", p->arm64);
}

json_t *csa_prices_json(const csa_prices *p) { return json_pack("{s:f, s:f}", "x86_64", p->x86_64, "arm64", p->arm64); }

double csa_cost_per_month(double usd, double span_seconds)
{
    if (!isfinite(usd) || !isfinite(span_seconds))
        return NAN;
    if (span_seconds < CSA_PROJECTION_MIN_SECONDS)
        span_seconds = CSA_PROJECTION_MIN_SECONDS;
    return usd / span_seconds * CSA_MONTH_SECONDS;
}

json_t *csa_usd_json(double usd)
{
    if (!isfinite(usd))
        return json_null();
    double r = round(usd * 1e9) / 1e9;
    if (r == 0)
        return json_integer(0);
    return json_real(r);
}
