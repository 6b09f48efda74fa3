/* Unit tests for webhook.c: URL parsing, the address policy against SSRF, the signature, the CA
 * file check and the TLS settings. The delivery itself is tested over real HTTP and HTTPS (a
 * local receiver with a CA made at test time) in tests/integration/alerts.test.mjs. */
#include "webhook.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    cr_assert_not(u.tls);
    cr_assert_eq(csa_webhook_parse_url("https://hooks.slack.com/services/T0/B0/XX", &u, why, sizeof why), 0, "%s", why);
    cr_assert(u.tls);
    cr_assert_str_eq(u.host, "hooks.slack.com");
    cr_assert_str_eq(u.port, "443");
    cr_assert_str_eq(u.path, "/services/T0/B0/XX");
    cr_assert_eq(csa_webhook_parse_url("HTTPS://[2606:4700::1]:8443/h", &u, why, sizeof why), 0, "%s", why);
    cr_assert(u.tls && u.ipv6_literal);
    cr_assert_str_eq(u.port, "8443");
    const char *bad[] = {"",
                         "ftp://example.com/",
                         "https://",
                         "https://user@example.com/",
                         "https//example.com/",
                         "httpss://example.com/",
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
    cr_assert_eq(csa_webhook_parse_url("ftp://example.com/", &u, why, sizeof why), -1);
    cr_assert(strstr(why, "http:// or https://"), "%s", why);
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

/* A CA certificate (P-256, self-signed, "unit test CA"): only parsed here, never trusted for a
 * connection, so its validity dates do not matter. */
static const char TEST_CA_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                                  "MIIBhDCCASmgAwIBAgIUSNSnOlYJsQqY7xaGOUggTISc+wUwCgYIKoZIzj0EAwIw\n"
                                  "FzEVMBMGA1UEAwwMdW5pdCB0ZXN0IENBMB4XDTI2MTIwNjE2MzcyMFoXDTI2MTIw\n"
                                  "NzE2MzcyMFowFzEVMBMGA1UEAwwMdW5pdCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYI\n"
                                  "KoZIzj0DAQcDQgAEkQ+QW6AHr6XhqQzGuAUZj/NpAIQUAmZbZw4Yr7vkgtJ+56ZA\n"
                                  "xHCySQx7URXnnfS8wkJdetZ8sOclAV2z03fqPKNTMFEwHQYDVR0OBBYEFMXBHBRG\n"
                                  "beFij0Ohd0FNboUppJbuMB8GA1UdIwQYMBaAFMXBHBRGbeFij0Ohd0FNboUppJbu\n"
                                  "MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhALJd1DY+FSBbkr5M\n"
                                  "AYYCzdb8NB7HhtmMas1EYekfVXQ/AiEA+lxfPtGlBbpM4WDEdCdhPZrnLLVPg5/P\n"
                                  "89IBsKZLaac=\n"
                                  "-----END CERTIFICATE-----\n";

/* Writes text into a new temporary file; its path into path (64 bytes). */
static void temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/csa-test-webhook-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

Test(webhook, ca_file_check_counts_pem_certificates_and_names_what_is_wrong)
{
    char path[64], err[400];
    /* a bundle: two certificates with text around them, as ca-certificates.crt has */
    char bundle[4096];
    snprintf(bundle, sizeof bundle, "# internal CA\n%s\nsome comment\n%s", TEST_CA_PEM, TEST_CA_PEM);
    temp_file(path, bundle);
    cr_assert_eq(csa_webhook_check_ca_file(path, err, sizeof err), 2, "%s", err);
    unlink(path);

    cr_assert_eq(csa_webhook_check_ca_file("/nonexistent/ca.pem", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/ca.pem") && strstr(err, "No such file"), "%s", err);
    cr_assert_eq(csa_webhook_check_ca_file("/tmp", err, sizeof err), -1);
    cr_assert(strstr(err, "not a file"), "%s", err);
    temp_file(path, "this is not a certificate\n");
    cr_assert_eq(csa_webhook_check_ca_file(path, err, sizeof err), -1);
    cr_assert(strstr(err, "no PEM certificate"), "%s", err);
    unlink(path);
    /* a PEM block cut short */
    char cut[200];
    snprintf(cut, sizeof cut, "%.150s", TEST_CA_PEM);
    temp_file(path, cut);
    cr_assert_eq(csa_webhook_check_ca_file(path, err, sizeof err), -1);
    unlink(path);
}

Test(webhook, tls_settings_load_the_system_store_and_the_ca_file)
{
    char path[64], err[400];
    int system_certs = -1;
    csa_webhook_tls *tls = csa_webhook_tls_create(NULL, &system_certs, err, sizeof err);
    cr_assert(tls, "%s", err);
    cr_assert_gt(system_certs, 0, "the system's trust store (ca-certificates) holds certificates");
    csa_webhook_tls_destroy(tls);

    temp_file(path, TEST_CA_PEM);
    tls = csa_webhook_tls_create(path, NULL, err, sizeof err);
    cr_assert(tls, "%s", err);
    csa_webhook_tls_destroy(tls);
    unlink(path);

    cr_assert_null(csa_webhook_tls_create("/nonexistent/ca.pem", NULL, err, sizeof err));
    cr_assert(strstr(err, "ALERT_WEBHOOK_CA_FILE") && strstr(err, "No such file"), "%s", err);
    csa_webhook_tls_destroy(NULL);
}

Test(webhook, an_https_url_without_tls_settings_fails_with_a_reason)
{
    int status = -1;
    char error[300];
    csa_webhook_outcome o =
        csa_webhook_post("https://203.0.113.7/x", "{}", 2, NULL, 0, NULL, 0, 1, -1, &status, error, sizeof error);
    cr_assert_eq(o, CSA_WEBHOOK_FAILED);
    cr_assert_eq(status, 0);
    cr_assert(strstr(error, "https is unavailable"), "%s", error);
}
