/* Unit tests for uuid.c: the layout of the ids the server makes, and the check of a path's id. */
#include "uuid.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

Test(uuid, format_sets_version_and_variant)
{
    unsigned char bytes[16];
    memset(bytes, 0xff, sizeof bytes);
    char out[CSA_UUID_SIZE];
    csa_uuid_format(bytes, 5, out);
    cr_assert_str_eq(out, "ffffffff-ffff-5fff-bfff-ffffffffffff");
    memset(bytes, 0, sizeof bytes);
    csa_uuid_format(bytes, 4, out);
    cr_assert_str_eq(out, "00000000-0000-4000-8000-000000000000");
    cr_assert(csa_is_uuid(out));
}

Test(uuid, random_ids_are_version_4_and_differ)
{
    cr_assert_geq(sodium_init(), 0);
    char a[CSA_UUID_SIZE], b[CSA_UUID_SIZE];
    csa_uuid_random(a);
    csa_uuid_random(b);
    cr_assert_eq(strlen(a), 36);
    cr_assert(csa_is_uuid(a), "%s", a);
    cr_assert_eq(a[14], '4', "version 4: %s", a);
    cr_assert(strchr("89ab", a[19]) != NULL, "RFC 4122 variant: %s", a);
    cr_assert_str_neq(a, b);
}

Test(uuid, is_uuid_takes_the_canonical_form_only)
{
    cr_assert(csa_is_uuid("0A1b2C3d-0000-4000-8000-00000000000f"));
    const char *bad[] = {"", "not-a-uuid", "0a1b2c3d00004000800000000000000f", "0a1b2c3d-0000-4000-8000-00000000000",
                         "0a1b2c3d-0000-4000-8000-00000000000fx", "0a1b2c3d-0000-4000-8000_00000000000f",
                         "0g1b2c3d-0000-4000-8000-00000000000f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(csa_is_uuid(bad[i]), "%s", bad[i]);
    cr_assert_not(csa_is_uuid(NULL));
}
