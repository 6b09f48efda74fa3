/* Unit tests for webhook.c: URL parsing, the address policy against SSRF, the signature. The
 * delivery itself is tested over real HTTP in tests/integration/alerts.test.mjs. */
#include "webhook.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

static int is_public(const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, addr, &a->sin6_addr), 1, "%s", addr);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, addr, &a->sin_addr), 1, "%s", addr);
    }
    return csa_webhook_address_public((struct sockaddr *)&ss);
}

Test(webhook, refuses_loopback_private_link_local_and_reserved_addresses)
{
    const char *refused[] = {"127.0.0.1",       "127.255.0.9",   "10.0.0.1",     "172.16.0.1",  "172.31.255.255",
                             "192.168.0.10",    "169.254.169.254", "100.64.0.1", "0.0.0.0",     "224.0.0.1",
                             "255.255.255.255", "198.18.0.1",    "192.0.0.8",    "::1",         "::",
                             "fe80::1",         "fd12:3456::1",  "fc00::1",      "ff02::1",     "::ffff:127.0.0.1",
                             "::ffff:169.254.169.254", "64:ff9b::a00:1", "fec0::1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        cr_assert_eq(is_public(refused[i]), 0, "%s must be refused", refused[i]);
    const char *allowed[] = {"93.184.216.34", "203.0.113.7", "172.32.0.1", "172.15.255.255", "100.128.0.1",
                             "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        cr_assert_eq(is_public(allowed[i]), 1, "%s is public", allowed[i]);
}

Test(webhook, parses_http_urls_and_refuses_the_rest)
{
    csa_webhook_url u;
    char why[300];
    cr_assert_eq(csa_webhook_parse_url("http://hooks.example.com/a/b?c=d", &u, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(u.host, "hooks.example.com");
    cr_assert_str_eq(u.port, "80");
    cr_assert_str_eq(u.path, "/a/b?c=d");
    cr_assert_eq(csa_webhook_parse_url("http://[2606:4700::1]:8080", &u, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(u.host, "2606:4700::1");
    cr_assert_str_eq(u.port, "8080");
    cr_assert_str_eq(u.path, "/");
    cr_assert(u.ipv6_literal);
    cr_assert_eq(csa_webhook_parse_url("http://x.example?q=1", &u, why, sizeof why), 0);
    cr_assert_str_eq(u.path, "/?q=1");
    const char *bad[] = {"",
                         "https://hooks.slack.com/x",
                         "ftp://example.com/",
                         "http://",
                         "http://:80/",
                         "http://user:pw@example.com/",
                         "http://example.com:0/",
                         "http://example.com:65536/",
                         "http://example.com:80a/",
                         "http://exa mple.com/",
                         "http://example.com/#frag",
                         "http://[::1/",
                         "http://[nothex]/",
                         "http://exa_mple.com/",
                         "http://example.com/\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(csa_webhook_parse_url(bad[i], &u, why, sizeof why), -1, "%s must be refused", bad[i]);
    cr_assert_eq(csa_webhook_parse_url("https://hooks.slack.com/x", &u, why, sizeof why), -1);
    cr_assert(strstr(why, "https") && strstr(why, "not supported"), "%s", why);
}

Test(webhook, creation_check_refuses_literals_and_localhost_unless_allowed)
{
    char why[300];
    const char *refused[] = {"http://169.254.169.254/latest/meta-data/", "http://localhost:8080/", "http://LocalHost./",
                             "http://a.b.localhost/", "http://127.0.0.1/", "http://[::1]:9/", "http://10.2.3.4/"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        cr_assert_eq(csa_webhook_check_url(refused[i], 0, why, sizeof why), -1, "%s", refused[i]);
        cr_assert(strstr(why, "ALERT_ALLOW_PRIVATE_WEBHOOKS"), "%s: %s", refused[i], why);
        cr_assert_eq(csa_webhook_check_url(refused[i], 1, why, sizeof why), 0, "%s allowed: %s", refused[i], why);
    }
    /* names are resolved (and checked) at delivery, not at creation */
    cr_assert_eq(csa_webhook_check_url("http://hooks.example.com/x", 0, why, sizeof why), 0, "%s", why);
    cr_assert_eq(csa_webhook_check_url("http://203.0.113.7/x", 0, why, sizeof why), 0, "%s", why);
}

Test(webhook, signature_is_hmac_sha256_of_the_body_with_the_whole_secret_as_key)
{
    char sig[CSA_WEBHOOK_SIGNATURE_MAX];
    /* RFC 4231, test case 2 */
    const char *body = "what do ya want for nothing?";
    csa_webhook_sign("Jefe", body, strlen(body), sig);
    cr_assert_str_eq(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* a secret longer than a block (whsec_ + 64 hex digits is 70 bytes) */
    char other[CSA_WEBHOOK_SIGNATURE_MAX];
    csa_webhook_sign("whsec_00000000000000000000000000000000000000000000000000000000000000000", body, strlen(body), other);
    cr_assert_str_neq(sig, other);
    cr_assert_eq(strlen(other), 71);
}
