/* webhook.c: see webhook.h. */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_HEAD_MAX 4096 /* bytes read of the answer: its status line is all we need */

int csa_webhook_parse_url(const char *url, csa_webhook_url *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n >= CSA_WEBHOOK_URL_MAX) {
        snprintf(why, why_size, "a URL of 1 to %d characters is required", CSA_WEBHOOK_URL_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) {
            snprintf(why, why_size, "the URL must be printable ASCII without spaces (percent-encode the rest)");
            return -1;
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(why, why_size,
                 "https webhooks are not supported by this build (no TLS client): use http, or an https relay "
                 "(docs/alerts.md)");
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(why, why_size, "the URL must start with http://");
        return -1;
    }
    const char *auth = url + 7;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (memchr(auth, '@', alen)) {
        snprintf(why, why_size, "user information in the URL is not allowed (put credentials in the path)");
        return -1;
    }
    if (strchr(rest, '#')) {
        snprintf(why, why_size, "a fragment (#...) is not allowed");
        return -1;
    }
    const char *port = NULL;
    size_t hlen;
    if (alen > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close) {
            snprintf(why, why_size, "unterminated [IPv6] host");
            return -1;
        }
        hlen = (size_t)(close - auth - 1);
        if (hlen == 0 || hlen >= sizeof out->host) {
            snprintf(why, why_size, "bad [IPv6] host");
            return -1;
        }
        memcpy(out->host, auth + 1, hlen);
        out->ipv6_literal = 1;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1) {
            snprintf(why, why_size, "bad [IPv6] host");
            return -1;
        }
        const char *after = close + 1;
        if (after < auth + alen) {
            if (*after != ':') {
                snprintf(why, why_size, "unexpected characters after the [IPv6] host");
                return -1;
            }
            port = after + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        hlen = colon ? (size_t)(colon - auth) : alen;
        if (hlen == 0 || hlen >= sizeof out->host) {
            snprintf(why, why_size, "the URL has no host, or one longer than 255 characters");
            return -1;
        }
        memcpy(out->host, auth, hlen);
        for (size_t i = 0; i < hlen; i++) {
            char c = out->host[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
                snprintf(why, why_size, "the host may hold only letters, digits, '-' and '.'");
                return -1;
            }
        }
        if (colon)
            port = colon + 1;
    }
    if (port) {
        size_t plen = (size_t)(auth + alen - port);
        long p = 0;
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9' || i >= 5) {
                p = -1;
                break;
            }
            p = p * 10 + (port[i] - '0');
        }
        if (plen == 0 || p < 1 || p > 65535) {
            snprintf(why, why_size, "the port must be a number from 1 to 65535");
            return -1;
        }
        snprintf(out->port, sizeof out->port, "%ld", p);
    } else {
        snprintf(out->port, sizeof out->port, "80");
    }
    snprintf(out->path, sizeof out->path, "%s%s", *rest == '/' ? "" : "/", rest);
    return 0;
}

static int v4_public(const unsigned char *b)
{
    if (b[0] == 0 || b[0] == 10 || b[0] == 127)
        return 0;                                    /* this network, RFC 1918, loopback */
    if (b[0] == 100 && (b[1] & 0xc0) == 64)
        return 0;                                    /* 100.64.0.0/10 shared (CGNAT) */
    if (b[0] == 169 && b[1] == 254)
        return 0;                                    /* link-local: 169.254.169.254 metadata */
    if (b[0] == 172 && (b[1] & 0xf0) == 16)
        return 0;                                    /* 172.16.0.0/12 */
    if (b[0] == 192 && b[1] == 168)
        return 0;                                    /* 192.168.0.0/16 */
    if (b[0] == 192 && b[1] == 0 && b[2] == 0)
        return 0;                                    /* 192.0.0.0/24 protocol assignments */
    if (b[0] == 198 && (b[1] & 0xfe) == 18)
        return 0;                                    /* 198.18.0.0/15 benchmarking */
    if (b[0] >= 224)
        return 0;                                    /* multicast, reserved, broadcast */
    return 1;
}

int csa_webhook_address_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_public((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family != AF_INET6)
        return 0;
    const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zero[12] = {0};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0) /* ::ffff:a.b.c.d, ::a.b.c.d, ::1, :: */
        return memcmp(b, zero, 12) == 0 ? 0 : v4_public(b + 12);
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && !memcmp(b + 4, zero, 8)) /* 64:ff9b::/96 NAT64 */
        return v4_public(b + 12);
    if ((b[0] & 0xfe) == 0xfc)
        return 0; /* fc00::/7 unique local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return 0; /* fe80::/10 link-local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return 0; /* fec0::/10 site-local (deprecated) */
    if (b[0] == 0xff)
        return 0; /* multicast */
    return 1;
}

/* Is host a name for this machine that resolves without DNS ("localhost", "x.localhost")? */
static int is_localhost_name(const char *host)
{
    size_t n = strlen(host);
    while (n > 0 && host[n - 1] == '.')
        n--;
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
}

int csa_webhook_check_url(const char *url, int allow_private, char *why, size_t why_size)
{
    csa_webhook_url u;
    if (csa_webhook_parse_url(url, &u, why, why_size) < 0)
        return -1;
    if (allow_private)
        return 0;
    if (is_localhost_name(u.host)) {
        snprintf(why, why_size,
                 "the host is this machine (localhost); webhooks to the server's own network are refused unless "
                 "ALERT_ALLOW_PRIVATE_WEBHOOKS is set");
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_NUMERICHOST; /* literals only: names are resolved (and checked) at delivery */
    if (getaddrinfo(u.host, NULL, &hints, &res) == 0) {
        int ok = csa_webhook_address_public(res->ai_addr);
        freeaddrinfo(res);
        if (!ok) {
            snprintf(why, why_size,
                     "%.60s is a loopback, private, link-local or reserved address; webhooks to the server's own "
                     "network are refused unless ALERT_ALLOW_PRIVATE_WEBHOOKS is set",
                     u.host);
            return -1;
        }
    }
    return 0;
}

void csa_webhook_sign(const char *secret, const char *body, size_t body_len, char *out)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, CSA_WEBHOOK_SIGNATURE_MAX - 7, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until fd is ready for `events`, the deadline passes (0) or cancel_fd is readable (-2).
 * Returns 1 when ready, 0 on timeout, -1 on error, -2 when cancelled. */
static int wait_fd(int fd, short events, double deadline, int cancel_fd)
{
    for (;;) {
        double left = deadline - now_mono();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
        int r = poll(p, cancel_fd >= 0 ? 2 : 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (cancel_fd >= 0 && (p[1].revents & POLLIN))
            return -2;
        if (r > 0 && p[0].revents)
            return 1;
    }
}

/* A non-blocking connection to addr within the deadline: the socket, -1 on failure (error set),
 * -2 when cancelled. */
static int connect_to(const struct addrinfo *ai, double deadline, int cancel_fd, char *error, size_t error_size)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(error, error_size, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        snprintf(error, error_size, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int w = wait_fd(fd, POLLOUT, deadline, cancel_fd);
    if (w != 1) {
        close(fd);
        if (w == -2)
            return -2;
        snprintf(error, error_size, "connect: %s", w == 0 ? "timed out" : strerror(errno));
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        snprintf(error, error_size, "connect: %s", strerror(soerr));
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of buf; 0, -1 (error set) or -2 (cancelled). */
static int send_all(int fd, const char *buf, size_t len, double deadline, int cancel_fd, char *error,
                    size_t error_size)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(error, error_size, "send: %s", strerror(errno));
            return -1;
        }
        int w = wait_fd(fd, POLLOUT, deadline, cancel_fd);
        if (w == -2)
            return -2;
        if (w != 1) {
            snprintf(error, error_size, "send: timed out");
            return -1;
        }
    }
    return 0;
}

csa_webhook_outcome csa_webhook_post(const char *url, const char *body, size_t body_len,
                                     const csa_webhook_header *headers, int nheaders, int allow_private,
                                     int timeout_s, int cancel_fd, int *status, char *error, size_t error_size)
{
    *status = 0;
    error[0] = '\0';
    csa_webhook_url u;
    if (csa_webhook_parse_url(url, &u, error, error_size) < 0)
        return CSA_WEBHOOK_FAILED;
    double deadline = now_mono() + timeout_s;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(u.host, u.port, &hints, &res);
    if (rc != 0) {
        snprintf(error, error_size, "cannot resolve %.100s: %s", u.host, gai_strerror(rc));
        return CSA_WEBHOOK_FAILED;
    }
    int fd = -1, refused = 0;
    char refused_addr[INET6_ADDRSTRLEN] = "";
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        if (!allow_private && !csa_webhook_address_public(ai->ai_addr)) {
            const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                     : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if (!refused)
                inet_ntop(ai->ai_family, a, refused_addr, sizeof refused_addr);
            refused = 1;
            continue;
        }
        fd = connect_to(ai, deadline, cancel_fd, error, error_size);
        if (fd == -2) {
            freeaddrinfo(res);
            return CSA_WEBHOOK_CANCELLED;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (refused && !error[0])
            snprintf(error, error_size,
                     "refused: %.100s resolves to %s, a loopback, private, link-local or reserved address "
                     "(ALERT_ALLOW_PRIVATE_WEBHOOKS)",
                     u.host, refused_addr);
        return CSA_WEBHOOK_FAILED;
    }
    /* the request head: our headers only, each value from the server, never from the client */
    size_t cap = 1024 + strlen(u.path) + strlen(u.host);
    for (int i = 0; i < nheaders; i++)
        cap += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    char *head = malloc(cap);
    if (!head) {
        close(fd);
        snprintf(error, error_size, "out of memory");
        return CSA_WEBHOOK_FAILED;
    }
    int is_default_port = strcmp(u.port, "80") == 0;
    size_t len = (size_t)snprintf(head, cap,
                                  "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: coldstartd/" CSA_VERSION
                                  "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n",
                                  u.path, u.ipv6_literal ? "[" : "", u.host, u.ipv6_literal ? "]" : "",
                                  is_default_port ? "" : ":", is_default_port ? "" : u.port, body_len);
    for (int i = 0; i < nheaders && len < cap; i++)
        len += (size_t)snprintf(head + len, cap - len, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (len < cap)
        len += (size_t)snprintf(head + len, cap - len, "\r\n");
    csa_webhook_outcome outcome = CSA_WEBHOOK_FAILED;
    int s = len < cap ? send_all(fd, head, len, deadline, cancel_fd, error, error_size) : -1;
    if (s == 0)
        s = send_all(fd, body, body_len, deadline, cancel_fd, error, error_size);
    free(head);
    if (s == -2)
        outcome = CSA_WEBHOOK_CANCELLED;
    if (s != 0)
        goto out;
    char answer[RESPONSE_HEAD_MAX + 1];
    size_t got = 0;
    while (got < RESPONSE_HEAD_MAX && !memchr(answer, '\n', got)) {
        ssize_t n = recv(fd, answer + got, RESPONSE_HEAD_MAX - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            snprintf(error, error_size, "the connection closed before a response");
            goto out;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(error, error_size, "recv: %s", strerror(errno));
            goto out;
        }
        int w = wait_fd(fd, POLLIN, deadline, cancel_fd);
        if (w == -2) {
            outcome = CSA_WEBHOOK_CANCELLED;
            goto out;
        }
        if (w != 1) {
            snprintf(error, error_size, "no response within %d s", timeout_s);
            goto out;
        }
    }
    answer[got] = '\0';
    int code = 0;
    if (strncmp(answer, "HTTP/1.", 7) != 0 || sscanf(answer + 8, " %3d", &code) != 1 || code < 100) {
        snprintf(error, error_size, "not an HTTP response");
        goto out;
    }
    *status = code;
    if (code >= 200 && code < 300)
        outcome = CSA_WEBHOOK_DELIVERED;
    else
        snprintf(error, error_size, "HTTP %d", code);
out:
    close(fd);
    return outcome;
}
