/* webhook.c: see webhook.h. */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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
        out->tls = 1;
    } else if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(why, why_size, "the URL must start with http:// or https://");
        return -1;
    }
    const char *auth = url + (out->tls ? 8 : 7);
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
        snprintf(out->port, sizeof out->port, "%s", out->tls ? "443" : "80");
    }
    snprintf(out->path, sizeof out->path, "%s%s", *rest == '/' ? "" : "/", rest);
    return 0;
}

static int v4_public(const unsigned char *b)
{
    if (b[0] == 0 || b[0] == 10 || b[0] == 127)
        return 0; /* this network, RFC 1918, loopback */
    if (b[0] == 100 && (b[1] & 0xc0) == 64)
        return 0; /* 100.64.0.0/10 shared (CGNAT) */
    if (b[0] == 169 && b[1] == 254)
        return 0; /* link-local: 169.254.169.254 metadata */
    if (b[0] == 172 && (b[1] & 0xf0) == 16)
        return 0; /* 172.16.0.0/12 */
    if (b[0] == 192 && b[1] == 168)
        return 0; /* 192.168.0.0/16 */
    if (b[0] == 192 && b[1] == 0 && b[2] == 0)
        return 0; /* 192.0.0.0/24 protocol assignments */
    if (b[0] == 198 && (b[1] & 0xfe) == 18)
        return 0; /* 198.18.0.0/15 benchmarking */
    if (b[0] >= 224)
        return 0; /* multicast, reserved, broadcast */
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

/* ---- TLS settings --------------------------------------------------------------------------- */

struct csa_webhook_tls {
    SSL_CTX *ctx;
};

/* what + the reason of the newest entry of this thread's OpenSSL error queue, which is emptied */
static void openssl_reason(char *out, size_t size, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, size, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
    ERR_clear_error();
}

int csa_webhook_check_ca_file(const char *path, char *err, size_t err_size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_size, "cannot read %.200s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%.200s is not a file (give a file of PEM certificates)", path);
        return -1;
    }
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        int e = errno;
        ERR_clear_error();
        snprintf(err, err_size, "cannot read %.200s: %s", path, strerror(e));
        return -1;
    }
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!infos) {
        char why[160];
        openssl_reason(why, sizeof why, "not a file of PEM certificates");
        snprintf(err, err_size, "%.200s: %s", path, why);
        return -1;
    }
    int n = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++)
        n += sk_X509_INFO_value(infos, i)->x509 != NULL;
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (n == 0) {
        snprintf(err, err_size, "%.200s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path);
        return -1;
    }
    return n;
}

csa_webhook_tls *csa_webhook_tls_create(const char *ca_file, int *system_certs, char *err, size_t err_size)
{
    ERR_clear_error();
    csa_webhook_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        openssl_reason(err, err_size, "cannot make a TLS context");
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
        openssl_reason(err, err_size, "cannot require TLS 1.2");
        goto fail;
    }
    /* verification is on, always: the handshake fails unless the chain ends at a trusted CA (the
     * host name is set per connection, see tls_handshake) */
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        openssl_reason(err, err_size, "cannot load the system's trust store");
        goto fail;
    }
    if (system_certs)
        *system_certs = sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(t->ctx)));
    if (ca_file && *ca_file) {
        char why[300];
        if (csa_webhook_check_ca_file(ca_file, why, sizeof why) < 0) {
            snprintf(err, err_size, "ALERT_WEBHOOK_CA_FILE: %s", why);
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
            openssl_reason(why, sizeof why, "cannot load");
            snprintf(err, err_size, "ALERT_WEBHOOK_CA_FILE: %s %.200s", why, ca_file);
            goto fail;
        }
    }
    ERR_clear_error();
    return t;
fail:
    csa_webhook_tls_destroy(t);
    return NULL;
}

void csa_webhook_tls_destroy(csa_webhook_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* ---- one connection, plain or TLS ----------------------------------------------------------- */

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

/* A connection: its socket (non-blocking) and, over https, its TLS session. */
typedef struct conn {
    int fd;
    SSL *ssl;        /* NULL: plain http */
    int established; /* the TLS handshake completed (a close_notify may be sent) */
    double deadline; /* of the whole attempt, now_mono() */
    int cancel_fd;
} conn;

/* A non-blocking connection to addr within the deadline into c->fd: 0, -1 on failure (error
 * set), -2 when cancelled. */
static int connect_to(conn *c, const struct addrinfo *ai, char *error, size_t error_size)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(error, error_size, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        c->fd = fd;
        return 0;
    }
    if (errno != EINPROGRESS) {
        snprintf(error, error_size, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int w = wait_fd(fd, POLLOUT, c->deadline, c->cancel_fd);
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
    c->fd = fd;
    return 0;
}

/*
 * After an SSL_* call on c returned r <= 0: waits for what OpenSSL wants (1: call again), or
 * says why it failed (-1, error set to "<what>: <reason>"), or -2 when cancelled.
 */
static int tls_retry(conn *c, int r, const char *what, char *error, size_t error_size)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline, c->cancel_fd);
        if (w == 1)
            return 1;
        if (w == -2)
            return -2;
        snprintf(error, error_size, "%s: %s", what, w == 0 ? "timed out" : strerror(errno));
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(error, error_size, "%s: the server closed the TLS connection", what);
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(error, error_size, "%s: %s", what, errno ? strerror(errno) : "the connection closed");
    else
        openssl_reason(error, error_size, what);
    ERR_clear_error();
    return -1;
}

/*
 * The TLS handshake over c->fd for host: SNI (a name, not an address literal, RFC 6066) and a
 * certificate that must chain to a trusted CA and be valid for host (its DNS name, or its IP
 * address for a literal; no partial wildcards such as "f*.example.com"). 0, -1 (error set), -2.
 */
static int tls_handshake(conn *c, csa_webhook_tls *tls, const csa_webhook_url *u, char *error, size_t error_size)
{
    ERR_clear_error();
    c->ssl = SSL_new(tls->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        openssl_reason(error, error_size, "TLS setup");
        return -1;
    }
    unsigned char addr[sizeof(struct in6_addr)];
    int literal = u->ipv6_literal || inet_pton(AF_INET, u->host, addr) == 1;
    int ok;
    if (literal) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host) == 1;
    } else {
        char name[sizeof u->host];
        snprintf(name, sizeof name, "%s", u->host);
        size_t n = strlen(name);
        while (n > 0 && name[n - 1] == '.') /* "example.com." is example.com */
            name[--n] = '\0';
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = n > 0 && SSL_set_tlsext_host_name(c->ssl, name) == 1 && SSL_set1_host(c->ssl, name) == 1;
    }
    if (!ok) {
        openssl_reason(error, error_size, "TLS setup for the host name");
        return -1;
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        long verify = SSL_get_verify_result(c->ssl);
        if (verify != X509_V_OK) { /* the reason a user can act on: the certificate's */
            snprintf(error, error_size, "TLS handshake with %.100s: certificate verify failed: %s", u->host,
                     X509_verify_cert_error_string(verify));
            ERR_clear_error();
            return -1;
        }
        char what[160];
        snprintf(what, sizeof what, "TLS handshake with %.100s", u->host);
        int t = tls_retry(c, r, what, error, error_size);
        if (t != 1)
            return t;
    }
    c->established = 1;
    return 0;
}

/* Sends all of buf; 0, -1 (error set) or -2 (cancelled). */
static int conn_send_all(conn *c, const char *buf, size_t len, char *error, size_t error_size)
{
    size_t off = 0;
    while (off < len) {
        if (c->ssl) {
            ERR_clear_error();
            errno = 0;
            size_t chunk = len - off > INT_MAX ? INT_MAX : len - off;
            int r = SSL_write(c->ssl, buf + off, (int)chunk); /* all of chunk, or a retry with it */
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            int t = tls_retry(c, r, "send", error, error_size);
            if (t != 1)
                return t;
            continue;
        }
        ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(error, error_size, "send: %s", strerror(errno));
            return -1;
        }
        int w = wait_fd(c->fd, POLLOUT, c->deadline, c->cancel_fd);
        if (w == -2)
            return -2;
        if (w != 1) {
            snprintf(error, error_size, "send: timed out");
            return -1;
        }
    }
    return 0;
}

/* Reads what has come, at most size bytes: the count (> 0), 0 when the peer closed, -1 (error
 * set; a timeout says "no response within N s") or -2 (cancelled). */
static int conn_recv(conn *c, char *buf, size_t size, int timeout_s, char *error, size_t error_size)
{
    for (;;) {
        if (c->ssl) {
            ERR_clear_error();
            errno = 0;
            int r = SSL_read(c->ssl, buf, size > INT_MAX ? INT_MAX : (int)size);
            if (r > 0)
                return r;
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                return 0;
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                int w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline, c->cancel_fd);
                if (w == 1)
                    continue;
                if (w == -2)
                    return -2;
                snprintf(error, error_size, "no response within %d s", timeout_s);
                return -1;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
                return 0; /* closed without close_notify: as plain TCP would */
            return tls_retry(c, r, "recv", error, error_size);
        }
        ssize_t n = recv(c->fd, buf, size, 0);
        if (n >= 0)
            return (int)n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(error, error_size, "recv: %s", strerror(errno));
            return -1;
        }
        int w = wait_fd(c->fd, POLLIN, c->deadline, c->cancel_fd);
        if (w == -2)
            return -2;
        if (w != 1) {
            snprintf(error, error_size, "no response within %d s", timeout_s);
            return -1;
        }
    }
}

/* Closes c: a close_notify when the TLS session was established (not waited for), the session
 * freed, the socket closed. */
static void conn_close(conn *c)
{
    if (c->ssl) {
        if (c->established)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

/* ---- the POST ------------------------------------------------------------------------------- */

csa_webhook_outcome csa_webhook_post(const char *url, const char *body, size_t body_len,
                                     const csa_webhook_header *headers, int nheaders, csa_webhook_tls *tls,
                                     int allow_private, int timeout_s, int cancel_fd, int *status, char *error,
                                     size_t error_size)
{
    *status = 0;
    error[0] = '\0';
    csa_webhook_url u;
    if (csa_webhook_parse_url(url, &u, error, error_size) < 0)
        return CSA_WEBHOOK_FAILED;
    if (u.tls && !tls) {
        snprintf(error, error_size, "https is unavailable: the TLS client could not be set up (see the log at start)");
        return CSA_WEBHOOK_FAILED;
    }
    conn c = {.fd = -1, .deadline = now_mono() + timeout_s, .cancel_fd = cancel_fd};
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(u.host, u.port, &hints, &res);
    if (rc != 0) {
        snprintf(error, error_size, "cannot resolve %.100s: %s", u.host, gai_strerror(rc));
        return CSA_WEBHOOK_FAILED;
    }
    int refused = 0;
    char refused_addr[INET6_ADDRSTRLEN] = "";
    for (struct addrinfo *ai = res; ai && c.fd < 0; ai = ai->ai_next) {
        if (!allow_private && !csa_webhook_address_public(ai->ai_addr)) {
            const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                     : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if (!refused)
                inet_ntop(ai->ai_family, a, refused_addr, sizeof refused_addr);
            refused = 1;
            continue;
        }
        if (connect_to(&c, ai, error, error_size) == -2) {
            freeaddrinfo(res);
            return CSA_WEBHOOK_CANCELLED;
        }
    }
    freeaddrinfo(res);
    if (c.fd < 0) {
        if (refused && !error[0])
            snprintf(error, error_size,
                     "refused: %.100s resolves to %s, a loopback, private, link-local or reserved address "
                     "(ALERT_ALLOW_PRIVATE_WEBHOOKS)",
                     u.host, refused_addr);
        return CSA_WEBHOOK_FAILED;
    }
    csa_webhook_outcome outcome = CSA_WEBHOOK_FAILED;
    char *head = NULL;
    int s = 0;
    /* over https: the handshake on the connection to the checked address, for the URL's host */
    if (u.tls && (s = tls_handshake(&c, tls, &u, error, error_size)) != 0)
        goto out;
    /* the request head: our headers only, each value from the server, never from the client */
    size_t cap = 1024 + strlen(u.path) + strlen(u.host);
    for (int i = 0; i < nheaders; i++)
        cap += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    head = malloc(cap);
    if (!head) {
        snprintf(error, error_size, "out of memory");
        goto out;
    }
    int is_default_port = strcmp(u.port, u.tls ? "443" : "80") == 0;
    size_t len = (size_t)snprintf(head, cap,
                                  "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: coldstartd/" CSA_VERSION
                                  "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n",
                                  u.path, u.ipv6_literal ? "[" : "", u.host, u.ipv6_literal ? "]" : "",
                                  is_default_port ? "" : ":", is_default_port ? "" : u.port, body_len);
    for (int i = 0; i < nheaders && len < cap; i++)
        len += (size_t)snprintf(head + len, cap - len, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (len < cap)
        len += (size_t)snprintf(head + len, cap - len, "\r\n");
    s = len < cap ? conn_send_all(&c, head, len, error, error_size) : -1;
    if (s == 0)
        s = conn_send_all(&c, body, body_len, error, error_size);
    if (s != 0)
        goto out;
    char answer[RESPONSE_HEAD_MAX + 1];
    size_t got = 0;
    while (got < RESPONSE_HEAD_MAX && (got == 0 || !memchr(answer, '\n', got))) {
        int n = conn_recv(&c, answer + got, RESPONSE_HEAD_MAX - got, timeout_s, error, error_size);
        if (n < 0) {
            s = n;
            goto out;
        }
        if (n == 0) {
            snprintf(error, error_size, "the connection closed before a response");
            goto out;
        }
        got += (size_t)n;
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
    if (s == -2)
        outcome = CSA_WEBHOOK_CANCELLED;
    free(head);
    conn_close(&c);
    return outcome;
}
