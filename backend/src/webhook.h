/*
 * webhook.h: sending one alert notification to a webhook: the URL's parts, the address policy
 * that keeps webhooks off the server's own network (SSRF), the signature, and a small blocking
 * HTTP/1.1 client for a thread that may block (the alert thread, alerts.c).
 *
 * The address policy is applied to the addresses the host resolves to at delivery time, and the
 * connection goes to the address that was checked (no second lookup), so a name that resolves to
 * a public address when the rule is created and to 127.0.0.1 later (DNS rebinding) is refused.
 * Plain http only: this build has no TLS client (docs/alerts.md says how to reach https).
 */
#ifndef CSA_WEBHOOK_H
#define CSA_WEBHOOK_H

#include <stddef.h>
#include <sys/socket.h>

#define CSA_WEBHOOK_URL_MAX 2048
#define CSA_WEBHOOK_SIGNATURE_MAX 72 /* "sha256=" + 64 hex digits + NUL */

typedef struct csa_webhook_url {
    char host[256];                 /* without brackets for an IPv6 literal */
    char port[8];                   /* "80" unless given */
    char path[CSA_WEBHOOK_URL_MAX]; /* path and query, "/" at least */
    int ipv6_literal;               /* host was [v6] */
} csa_webhook_url;

/* Parses an http:// URL (no user info, no fragment, printable ASCII). Returns 0, or -1 with the
 * reason in why (why_size bytes). */
int csa_webhook_parse_url(const char *url, csa_webhook_url *out, char *why, size_t why_size);

/* 1 if an address is public: not loopback, private (RFC 1918, fc00::/7), link-local
 * (169.254.0.0/16 with the cloud metadata service, fe80::/10), CGNAT, unspecified, multicast or
 * reserved; IPv4-mapped IPv6 addresses are judged by their IPv4 address. */
int csa_webhook_address_public(const struct sockaddr *sa);

/*
 * The check at rule creation: a valid URL, and unless allow_private, a host that is not a
 * literal non-public address nor "localhost" (names are checked again, resolved, at each
 * delivery). Returns 0, or -1 with the reason in why.
 */
int csa_webhook_check_url(const char *url, int allow_private, char *why, size_t why_size);

/* "sha256=" + lowercase hex of HMAC-SHA256(body) keyed with the secret's bytes, into out
 * (CSA_WEBHOOK_SIGNATURE_MAX bytes). */
void csa_webhook_sign(const char *secret, const char *body, size_t body_len, char *out);

typedef struct csa_webhook_header {
    const char *name, *value;
} csa_webhook_header;

/* What became of a POST. */
typedef enum csa_webhook_outcome {
    CSA_WEBHOOK_DELIVERED, /* 2xx */
    CSA_WEBHOOK_FAILED,    /* anything else: retried later; reason in error */
    CSA_WEBHOOK_CANCELLED, /* cancel_fd became readable (shutdown): not an attempt */
} csa_webhook_outcome;

/*
 * POSTs body (Content-Type: application/json) with the given extra headers to url, within
 * timeout_s seconds for connect, send and the response's status line together. Resolves the
 * host, skips addresses that are not public unless allow_private, connects to the first that
 * answers. cancel_fd (-1: none) aborts the wait when it becomes readable. The HTTP status (0 if
 * none) goes to *status, a one-line reason to error (error_size bytes) when not delivered.
 */
csa_webhook_outcome csa_webhook_post(const char *url, const char *body, size_t body_len,
                                     const csa_webhook_header *headers, int nheaders, int allow_private,
                                     int timeout_s, int cancel_fd, int *status, char *error, size_t error_size);

#endif
