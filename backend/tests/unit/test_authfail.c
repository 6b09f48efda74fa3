/* Unit tests for the per-address failed-authentication limit (authfail.c). */
#include "authfail.h"

#include <criterion/criterion.h>
#include <stdio.h>

Test(authfail, blocks_after_the_limit_until_the_window_ends)
{
    csa_authfail *af = csa_authfail_create(3, 60, 64);
    long retry = 0;
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(csa_authfail_blocked(af, "10.0.0.1", 1000, &retry), 0);
        csa_authfail_record(af, "10.0.0.1", 1000);
    }
    cr_expect_eq(csa_authfail_blocked(af, "10.0.0.1", 1010, &retry), 1);
    cr_expect_eq(retry, 50);
    cr_expect_eq(csa_authfail_blocked(af, "10.0.0.2", 1010, &retry), 0, "other addresses unaffected");
    cr_expect_eq(csa_authfail_blocked(af, "10.0.0.1", 1060, &retry), 0, "a new window");
    csa_authfail_record(af, "10.0.0.1", 1060);
    cr_expect_eq(csa_authfail_blocked(af, "10.0.0.1", 1061, &retry), 0, "counting starts again");
    csa_authfail_destroy(af);
}

Test(authfail, memory_is_fixed_under_many_addresses)
{
    csa_authfail *af = csa_authfail_create(2, 60, 64);
    for (int k = 0; k < 2; k++)
        csa_authfail_record(af, "192.0.2.1", 1000);
    char addr[32];
    /* a flood of other addresses with one failure each cannot push out the blocked one: it has
     * the most failures of its set */
    for (int i = 0; i < 100000; i++) {
        snprintf(addr, sizeof addr, "198.51.%d.%d", (i >> 8) & 255, i & 255);
        csa_authfail_record(af, addr, 1001);
    }
    cr_expect_eq(csa_authfail_blocked(af, "192.0.2.1", 1002, NULL), 1);
    cr_expect_eq(csa_authfail_blocked(af, "", 1002, NULL), 0);
    cr_expect_eq(csa_authfail_blocked(af, NULL, 1002, NULL), 0);
    csa_authfail_destroy(af);
}
