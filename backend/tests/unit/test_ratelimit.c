/* Unit tests for ratelimit.c: limits per key and class, window reset, headers' numbers. */
#include "ratelimit.h"

#include <criterion/criterion.h>
#include <stdio.h>

Test(ratelimit, allows_up_to_the_limit_then_refuses_until_the_window_ends)
{
    csa_ratelimit *rl = csa_ratelimit_create(5, 2, 60, 100);
    time_t t0 = 1000000;
    for (int i = 0; i < 5; i++) {
        csa_rate_result r = csa_ratelimit_hit(rl, "key-a", CSA_RATE_INGEST, t0 + i);
        cr_assert(r.allowed, "request %d", i);
        cr_expect_eq(r.limit, 5);
        cr_expect_eq(r.remaining, 4 - i);
        cr_expect_eq(r.reset_s, 60 - i);
    }
    csa_rate_result r = csa_ratelimit_hit(rl, "key-a", CSA_RATE_INGEST, t0 + 10);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(r.reset_s, 50, "Retry-After is the rest of the window");
    r = csa_ratelimit_hit(rl, "key-a", CSA_RATE_INGEST, t0 + 60);
    cr_expect(r.allowed, "a new window starts after 60 s");
    cr_expect_eq(r.remaining, 4);
    csa_ratelimit_destroy(rl);
}

Test(ratelimit, classes_and_keys_are_independent)
{
    csa_ratelimit *rl = csa_ratelimit_create(1, 1, 60, 100);
    cr_expect(csa_ratelimit_hit(rl, "key-a", CSA_RATE_INGEST, 10).allowed);
    cr_expect_not(csa_ratelimit_hit(rl, "key-a", CSA_RATE_INGEST, 10).allowed);
    cr_expect(csa_ratelimit_hit(rl, "key-a", CSA_RATE_QUERY, 10).allowed, "query has its own budget");
    cr_expect(csa_ratelimit_hit(rl, "key-b", CSA_RATE_INGEST, 10).allowed, "another key has its own budget");
    csa_ratelimit_destroy(rl);
}

Test(ratelimit, memory_stays_bounded_under_many_keys)
{
    csa_ratelimit *rl = csa_ratelimit_create(1, 1, 60, 64);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert(csa_ratelimit_hit(rl, key, CSA_RATE_QUERY, 10).allowed);
    }
    csa_ratelimit_destroy(rl);
}

Test(ratelimit, a_project_budget_is_shared_by_all_its_keys)
{
    csa_ratelimit *rl = csa_ratelimit_create(3, 3, 60, 100);
    csa_ratelimit_set_project_limits(rl, 5, 5);
    const char *p = "00000000-0000-4000-8000-000000000001";
    int allowed = 0;
    char key[16];
    for (int k = 0; k < 10; k++) { /* ten keys of one project: the project allows 5 in all */
        snprintf(key, sizeof key, "key-%d", k);
        for (int i = 0; i < 3; i++)
            allowed += csa_ratelimit_hit_key(rl, key, p, CSA_RATE_INGEST, 100).allowed;
    }
    cr_expect_eq(allowed, 5, "minting keys buys no budget");
    csa_rate_result r = csa_ratelimit_hit_key(rl, "key-new", p, CSA_RATE_INGEST, 100);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.limit, 5, "the headers name the project's limit when it is the one that refused");
    cr_expect(csa_ratelimit_hit_key(rl, "key-x", "00000000-0000-4000-8000-000000000002", CSA_RATE_INGEST, 100).allowed,
              "another project has its own budget");
    cr_expect(csa_ratelimit_hit_key(rl, "key-0", p, CSA_RATE_QUERY, 100).allowed, "and the query class too");
    cr_expect(csa_ratelimit_hit_key(rl, "key-0", p, CSA_RATE_INGEST, 160).allowed, "a new window");
    csa_ratelimit_destroy(rl);
}

Test(ratelimit, the_headers_report_the_tighter_window)
{
    csa_ratelimit *rl = csa_ratelimit_create(3, 3, 60, 100);
    csa_ratelimit_set_project_limits(rl, 10, 10);
    const char *p = "00000000-0000-4000-8000-000000000001";
    csa_rate_result r = csa_ratelimit_hit_key(rl, "a", p, CSA_RATE_QUERY, 100);
    cr_expect(r.allowed);
    cr_expect_eq(r.limit, 3);
    cr_expect_eq(r.remaining, 2);
    csa_ratelimit_hit_key(rl, "a", p, CSA_RATE_QUERY, 100);
    csa_ratelimit_hit_key(rl, "a", p, CSA_RATE_QUERY, 100);
    r = csa_ratelimit_hit_key(rl, "a", p, CSA_RATE_QUERY, 100);
    cr_expect_not(r.allowed, "the key's own limit still holds");
    cr_expect_eq(r.limit, 3);
    r = csa_ratelimit_hit_key(rl, "b", p, CSA_RATE_QUERY, 100);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 2, "b's own window (2 left) is tighter than the project's (6 left)");
    csa_ratelimit_destroy(rl);
}
