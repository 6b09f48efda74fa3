/* Unit tests for keys.c: format, randomness, hashing. */
#include "keys.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

Test(keys, scope_names_round_trip)
{
    cr_expect_eq(csa_scope_from_name("ingest"), CSA_SCOPE_INGEST);
    cr_expect_eq(csa_scope_from_name("read"), CSA_SCOPE_READ);
    cr_expect_eq(csa_scope_from_name("admin"), CSA_SCOPE_ADMIN);
    cr_expect_eq(csa_scope_from_name("Admin"), 0u);
    cr_expect_eq(csa_scope_from_name(""), 0u);
    cr_expect_eq(csa_scope_from_name(NULL), 0u);
    char out[40];
    csa_scopes_format(CSA_SCOPES_ALL, ",", out, sizeof out);
    cr_expect_str_eq(out, "ingest,read,admin");
    csa_scopes_format(CSA_SCOPE_ADMIN | CSA_SCOPE_INGEST, ", ", out, sizeof out);
    cr_expect_str_eq(out, "ingest, admin");
    cr_expect_eq(csa_scopes_parse_pg("{ingest,read,admin}"), CSA_SCOPES_ALL);
    cr_expect_eq(csa_scopes_parse_pg("{read}"), CSA_SCOPE_READ);
    cr_expect_eq(csa_scopes_parse_pg("{}"), 0u);
    cr_expect_eq(csa_scopes_parse_pg("{admin,bogus}"), CSA_SCOPE_ADMIN);
}

Test(keys, check_without_entries_says_not_cached)
{
    csa_keycache *c = csa_keycache_create(60, 64);
    csa_key_identity who;
    char touch[CSA_UUID_LEN + 1];
    cr_expect_eq(csa_keycache_check(c, "csa_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", &who, touch), CSA_ERR_NOT_FOUND);
    cr_expect_eq(strlen(who.key_hash), 64u, "the hash is set for the lookup that follows");
    cr_expect_eq(csa_keycache_check(c, "nope", &who, touch), CSA_ERR_AUTH);
    csa_keycache_destroy(c);
}

/* Caches key as known (valid) or unknown at time now. */
static void plant(csa_keycache *c, const char *key, int valid, unsigned scopes, time_t now)
{
    csa_key_identity who = {.scopes = scopes};
    snprintf(who.project_id, sizeof who.project_id, "00000000-0000-4000-8000-000000000001");
    csa_key_hash(key, who.key_hash);
    csa__keycache_store(c, who.key_hash, valid, &who, "00000000-0000-4000-8000-000000000002", now);
}

Test(keys, a_flood_of_unknown_keys_never_evicts_a_known_one)
{
    csa_keycache *c = csa_keycache_create(3600, 64);
    char good[CSA_KEY_LEN + 1], junk[CSA_KEY_LEN + 1], touch[CSA_UUID_LEN + 1];
    csa_key_generate(good);
    time_t now = time(NULL);
    plant(c, good, 1, CSA_SCOPE_INGEST | CSA_SCOPE_READ, now);
    for (int i = 0; i < 100000; i++) {
        csa_key_generate(junk);
        plant(c, junk, 0, 0, now);
    }
    int known, unknown;
    csa_keycache_counts(c, &known, &unknown);
    cr_expect_eq(known, 1);
    cr_expect_eq(unknown, 64, "the unknown table stays at its capacity");
    csa_key_identity who;
    cr_assert_eq(csa_keycache_check(c, good, &who, touch), CSA_OK);
    cr_expect_eq(who.scopes, CSA_SCOPE_INGEST | CSA_SCOPE_READ);
    cr_expect_str_eq(who.project_id, "00000000-0000-4000-8000-000000000001");
    cr_expect_eq(csa_keycache_check(c, junk, &who, touch), CSA_ERR_AUTH, "the latest unknown key is cached");
    csa_keycache_destroy(c);
}

Test(keys, clock_gives_a_recently_used_key_a_second_chance)
{
    csa_keycache *c = csa_keycache_create(3600, 64);
    char keys[65][CSA_KEY_LEN + 1], touch[CSA_UUID_LEN + 1];
    csa_key_identity who;
    time_t now = time(NULL);
    for (int i = 0; i < 64; i++) {
        csa_key_generate(keys[i]);
        plant(c, keys[i], 1, CSA_SCOPE_INGEST, now);
    }
    cr_assert_eq(csa_keycache_check(c, keys[0], &who, touch), CSA_OK); /* referenced */
    csa_key_generate(keys[64]);
    plant(c, keys[64], 1, CSA_SCOPE_INGEST, now); /* full: one is evicted, never keys[0] */
    int known, unknown, cached = 0;
    csa_keycache_counts(c, &known, &unknown);
    cr_expect_eq(known, 64);
    cr_expect_eq(csa_keycache_check(c, keys[0], &who, touch), CSA_OK, "the referenced key survived");
    cr_expect_eq(csa_keycache_check(c, keys[1], &who, touch), CSA_ERR_NOT_FOUND, "the next one in CLOCK order went");
    for (int i = 0; i < 65; i++)
        cached += csa_keycache_check(c, keys[i], &who, touch) == CSA_OK;
    cr_expect_eq(cached, 64);
    csa_keycache_destroy(c);
}

Test(keys, a_revoked_key_moves_to_the_unknown_table)
{
    csa_keycache *c = csa_keycache_create(3600, 64);
    char key[CSA_KEY_LEN + 1], touch[CSA_UUID_LEN + 1];
    csa_key_identity who;
    csa_key_generate(key);
    time_t now = time(NULL);
    plant(c, key, 1, CSA_SCOPES_ALL, now);
    plant(c, key, 0, 0, now);
    cr_expect_eq(csa_keycache_check(c, key, &who, touch), CSA_ERR_AUTH);
    int known, unknown;
    csa_keycache_counts(c, &known, &unknown);
    cr_expect_eq(known, 0);
    cr_expect_eq(unknown, 1);
    csa_keycache_destroy(c);
}

Test(keys, entries_past_the_ttl_are_not_trusted)
{
    csa_keycache *c = csa_keycache_create(5, 64);
    char key[CSA_KEY_LEN + 1], touch[CSA_UUID_LEN + 1];
    csa_key_identity who;
    csa_key_generate(key);
    plant(c, key, 1, CSA_SCOPES_ALL, time(NULL) - 10);
    cr_expect_eq(csa_keycache_check(c, key, &who, touch), CSA_ERR_NOT_FOUND);
    csa_keycache_destroy(c);
}
