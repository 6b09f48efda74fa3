/* Unit tests for keys.c: format, randomness, hashing. */
#include "keys.h"

#include <criterion/criterion.h>
#include <string.h>

TestSuite(keys, .init = (void (*)(void))csa_keys_init);

Test(keys, generated_keys_have_the_documented_format)
{
    for (int i = 0; i < 1000; i++) {
        char key[CSA_KEY_LEN + 1];
        csa_key_generate(key);
        cr_assert_eq(strlen(key), 36u);
        cr_assert(strncmp(key, "csa_", 4) == 0);
        cr_assert(csa_key_well_formed(key), "%s", key);
    }
}

Test(keys, generated_keys_differ_and_use_the_whole_alphabet)
{
    char a[CSA_KEY_LEN + 1], b[CSA_KEY_LEN + 1];
    csa_key_generate(a);
    csa_key_generate(b);
    cr_expect_str_neq(a, b);
    int seen[128] = {0};
    for (int i = 0; i < 2000; i++) {
        char k[CSA_KEY_LEN + 1];
        csa_key_generate(k);
        for (int j = 4; j < CSA_KEY_LEN; j++)
            seen[(unsigned char)k[j]]++;
    }
    int distinct = 0;
    for (int c = 0; c < 128; c++)
        distinct += seen[c] > 0;
    cr_expect_eq(distinct, 62, "all 62 alphanumerics appear in 64,000 draws");
}

Test(keys, well_formed_rejects_bad_keys)
{
    cr_expect_not(csa_key_well_formed(NULL));
    cr_expect_not(csa_key_well_formed(""));
    cr_expect_not(csa_key_well_formed("csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p"));   /* 31 */
    cr_expect_not(csa_key_well_formed("csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q")); /* 33 */
    cr_expect_not(csa_key_well_formed("csb_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"));
    cr_expect_not(csa_key_well_formed("csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5-6"));
    cr_expect(csa_key_well_formed("csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"));
}

Test(keys, hash_is_hex_sha256)
{
    char hex[CSA_HASH_HEX_LEN + 1];
    csa_key_hash("abc", hex);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    csa_key_hash("csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", hex);
    cr_expect_eq(strlen(hex), 64u);
    cr_expect(strstr(hex, "csa_") == NULL);
}
