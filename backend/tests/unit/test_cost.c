/* Unit tests for cost.c: the monthly projection, dollars as JSON, prices as SQL parameters. */
#include "cost.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

Test(cost, per_month_extends_the_rate_to_30_days)
{
    /* $1 over one day is $30 over 30 days; over a week, 30/7 */
    cr_expect_float_eq(csa_cost_per_month(1.0, 86400.0), 30.0, 1e-12);
    cr_expect_float_eq(csa_cost_per_month(7.0, 7 * 86400.0), 30.0, 1e-12);
    cr_expect_eq(csa_cost_per_month(0.0, 86400.0), 0.0);
}

Test(cost, per_month_counts_at_least_an_hour)
{
    /* minutes of data, a negative span (a window before the function existed): an hour */
    cr_expect_float_eq(csa_cost_per_month(1.0, 60.0), 720.0, 1e-9);
    cr_expect_float_eq(csa_cost_per_month(1.0, -5.0), 720.0, 1e-9);
    cr_expect_float_eq(csa_cost_per_month(1.0, 3600.0), 720.0, 1e-9);
    cr_expect(isnan(csa_cost_per_month(NAN, 3600.0)));
    cr_expect(isnan(csa_cost_per_month(1.0, INFINITY)));
}

Test(cost, usd_json_rounds_to_nano_dollars)
{
    json_t *v = csa_usd_json(0.0000123456789);
    cr_assert(json_is_real(v));
    cr_expect_float_eq(json_real_value(v), 0.000012346, 1e-15);
    json_decref(v);
    v = csa_usd_json(4e-10); /* under half a nano-dollar */
    cr_expect(json_is_integer(v) && json_integer_value(v) == 0);
    json_decref(v);
    v = csa_usd_json(NAN);
    cr_expect(json_is_null(v));
    json_decref(v);
}

Test(cost, prices_as_sql_parameters_and_json)
{
    csa_prices p = {CSA_PRICE_GB_S_X86_64_DEFAULT, CSA_PRICE_GB_S_ARM64_DEFAULT};
    char x86[32], arm[32];
    csa_prices_params(&p, x86, arm);
    cr_expect_str_eq(x86, "1.66667e-05");
    cr_expect_str_eq(arm, "1.33334e-05");
    json_t *j = csa_prices_json(&p);
    cr_expect_eq(json_real_value(json_object_get(j, "x86_64")), 0.0000166667);
    cr_expect_eq(json_real_value(json_object_get(j, "arm64")), 0.0000133334);
    json_decref(j);
}
