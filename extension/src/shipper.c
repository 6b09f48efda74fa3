/* shipper.c: see shipper.h. */
#include "shipper.h"

#include <event2/dns.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef CSA_TLS
#include <arpa/inet.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

/* Where CA bundles live: Amazon Linux 2023 first, then Debian/Ubuntu, Alpine/macOS-style. */
static const char *const CA_FILES[] = {"/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt",
                                       "/etc/ssl/cert.pem", NULL};
#endif

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define BACKOFF_HURRY_MS 50
#define REQUEST_TIMEOUT_S 10

struct csa_shipper {
    struct event_base *base;
    csa_url endpoint;
    int have_endpoint;
    char api_key[256];
    int key_configured;
    csa_records *records;
    size_t batch_size;
    struct evhttp_connection *conn; /* NULL until needed, and again after a TLS connection closed */
    struct evdns_base *dns;         /* the backend's name is resolved by libevent, see connection() */
    int conn_closed;                /* set by the close callback: rebuild before the next request */
#ifdef CSA_TLS
    SSL_CTX *tls; /* one context, a fresh SSL per connection */
#endif
    struct event *timer; /* next send or retry */
    char *body;          /* batch in flight or waiting for retry, NULL when none */
    size_t body_len;
    size_t body_records;
    int in_flight; /* a POST is out */
    long long backoff_ms;
    long long deadline_ms; /* 0 = none (not shutting down) */
    csa_shipper_stats stats;
};

long long csa_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_batch(csa_shipper *s);

#ifdef CSA_TLS
/*
 * The CA bundle is read lazily. SSL_CTX_load_verify_locations would parse all of it (~145
 * certificates, ~800 KiB of heap for as long as the process lives); instead, when a chain needs an
 * issuer the store does not hold, the bundle is scanned once for certificates with that subject,
 * and only those are decoded and added (the scan decodes each certificate's subject name, not its
 * key or extensions: no RSA, EC or DSA key parsing for the ~145 that do not match). OpenSSL then
 * verifies the chain as usual. Names not found are remembered, so that an issuer that is never in
 * a bundle (an intermediate the server sends) does not cost a scan per connection.
 */
static char g_ca_file[4096];
#define CA_MISSING_MAX 16
static unsigned long g_ca_missing[CA_MISSING_MAX]; /* X509_NAME hashes the bundle does not hold */
static size_t g_ca_missing_count;                  /* names remembered, at most CA_MISSING_MAX */
static size_t g_ca_missing_next;                   /* slot to overwrite next when full */

/*
 * The subject name of a DER certificate (der[0..len)), decoded alone, or NULL when malformed.
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
 * signature, issuer, validity, subject, ... }, ... } (RFC 5280 4.1). Each step is bounded by the
 * enclosing length (ASN1_get_object refuses lengths past it).
 */
static X509_NAME *der_subject(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    long n;
    int tag, cls;
    if ((ASN1_get_object(&p, &n, &tag, &cls, len) & 0x81) || tag != V_ASN1_SEQUENCE)
        return NULL;
    if ((ASN1_get_object(&p, &n, &tag, &cls, der + len - p) & 0x81) || tag != V_ASN1_SEQUENCE)
        return NULL;
    const unsigned char *end = p + n;
    int field = 0; /* 0 serialNumber, 1 signature, 2 issuer, 3 validity, 4 subject */
    while (p < end) {
        const unsigned char *start = p;
        if (ASN1_get_object(&p, &n, &tag, &cls, end - p) & 0x81)
            return NULL;
        p += n;
        if (field == 0 && cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
            continue; /* [0] version */
        if (field++ == 4) {
            const unsigned char *q = start;
            return tag == V_ASN1_SEQUENCE ? d2i_X509_NAME(NULL, &q, p - start) : NULL;
        }
    }
    return NULL;
}

static int bundle_add_issuers(X509_STORE *store, X509 *cert)
{
    const X509_NAME *want = X509_get_issuer_name(cert);
    unsigned long hash = X509_NAME_hash_ex(want, NULL, NULL, NULL);
    for (size_t i = 0; i < g_ca_missing_count; i++)
        if (g_ca_missing[i] == hash)
            return 0;
    BIO *in = BIO_new_file(g_ca_file, "r");
    if (!in)
        return 0;
    int added = 0;
    char *type = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    while (PEM_read_bio(in, &type, &header, &der, &len) == 1) {
        /* the PEM types PEM_read_bio_X509 takes; other blocks (keys, trusted certificates) skipped */
        if (strcmp(type, PEM_STRING_X509) == 0 || strcmp(type, PEM_STRING_X509_OLD) == 0) {
            X509_NAME *subject = der_subject(der, len);
            if (subject && X509_NAME_cmp(subject, want) == 0) {
                const unsigned char *p = der;
                X509 *candidate = d2i_X509(NULL, &p, len);
                if (candidate && X509_STORE_add_cert(store, candidate) == 1)
                    added++;
                X509_free(candidate);
            }
            X509_NAME_free(subject);
        }
        OPENSSL_free(type);
        OPENSSL_free(header);
        OPENSSL_free(der);
        type = header = NULL;
        der = NULL;
    }
    ERR_clear_error(); /* the read loop ends on a "no start line" error */
    BIO_free(in);
    if (!added) {
        g_ca_missing[g_ca_missing_next] = hash;
        g_ca_missing_next = (g_ca_missing_next + 1) % CA_MISSING_MAX;
        if (g_ca_missing_count < CA_MISSING_MAX)
            g_ca_missing_count++;
    }
    return added;
}

static int get_issuer(X509 **issuer, X509_STORE_CTX *ctx, X509 *cert)
{
    int rc = X509_STORE_CTX_get1_issuer(issuer, ctx, cert);
    if (rc != 0 || !bundle_add_issuers(X509_STORE_CTX_get0_store(ctx), cert))
        return rc;
    ERR_clear_error();
    return X509_STORE_CTX_get1_issuer(issuer, ctx, cert);
}

/* Verifies the backend's certificate against the first CA bundle found (or COLDSTART_CA_FILE). */
static int tls_init(csa_shipper *s)
{
    /* no openssl.cnf (we set what we need), no error strings (we log codes) */
    OPENSSL_init_ssl(
        OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
    s->tls = SSL_CTX_new(TLS_client_method());
    if (!s->tls)
        return -1;
    SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(s->tls, SSL_VERIFY_PEER, NULL);
    /* the 16 KiB read and write record buffers are freed while the connection is idle */
    SSL_CTX_set_mode(s->tls, SSL_MODE_RELEASE_BUFFERS);
    const char *ca = getenv("COLDSTART_CA_FILE");
    const char *found = NULL;
    if (ca && *ca)
        found = access(ca, R_OK) == 0 ? ca : NULL;
    for (size_t i = 0; !(ca && *ca) && !found && CA_FILES[i]; i++)
        if (access(CA_FILES[i], R_OK) == 0)
            found = CA_FILES[i];
    if (found && strlen(found) < sizeof g_ca_file) {
        strcpy(g_ca_file, found);
        X509_STORE_set_get_issuer(SSL_CTX_get_cert_store(s->tls), get_issuer);
    } else {
        csa_log(CSA_LOG_ERROR, "no CA bundle found: the backend's certificate cannot be verified",
                json_pack("{s:s}", "COLDSTART_CA_FILE", ca ? ca : ""));
    }
    return 0;
}

/*
 * After an attempt without an answer: when the handshake failed because the backend's certificate
 * was refused (untrusted chain, wrong host name or address, expired), says so. The verify result
 * stays on the connection's SSL object until the connection is rebuilt.
 */
static void log_refused_certificate(const csa_shipper *s)
{
    struct bufferevent *bev = s->conn && s->endpoint.tls ? evhttp_connection_get_bufferevent(s->conn) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    long rc = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (rc != X509_V_OK)
        csa_log(CSA_LOG_WARN, "backend certificate refused: nothing sent",
                json_pack("{s:s, s:i, s:s}", "host", s->endpoint.host, "verify_error", (int)rc, "reason",
                          X509_verify_cert_error_string(rc)));
}

/* A fresh SSL (SNI, host name or IP checked) in a new bufferevent; NULL on failure. */
static struct bufferevent *tls_bufferevent(csa_shipper *s)
{
    SSL *ssl = SSL_new(s->tls);
    if (!ssl)
        return NULL;
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, s->endpoint.host, addr) == 1 || inet_pton(AF_INET6, s->endpoint.host, addr) == 1;
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s->endpoint.host);
    } else {
        SSL_set_tlsext_host_name(ssl, s->endpoint.host);
        SSL_set1_host(ssl, s->endpoint.host);
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}
#endif

static void on_conn_closed(struct evhttp_connection *conn, void *arg)
{
    csa_shipper *s = arg;
    s->conn_closed = 1;
}

/*
 * The backend's host name is resolved by libevent's own resolver (/etc/resolv.conf and
 * /etc/hosts), not by getaddrinfo: the layer's binary is linked statically, and a static glibc's
 * getaddrinfo would dlopen the NSS modules that the image's nsswitch.conf names (a different
 * glibc's). A numeric address needs no resolver.
 */
static struct evdns_base *resolver(csa_shipper *s)
{
    struct sockaddr_storage ss;
    int len;
    if (csa_numeric_address(s->endpoint.host, s->endpoint.port, &ss, &len) == 0)
        return NULL;
    if (!s->dns) {
        /* COLDSTART_RESOLV_CONF: another resolv.conf (the tests point it at their own DNS server) */
        const char *conf = getenv("COLDSTART_RESOLV_CONF");
        s->dns = evdns_base_new(s->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (s->dns) {
            /* unreadable: libevent falls back to a nameserver on 127.0.0.1 and logs nothing */
            if (evdns_base_resolv_conf_parse(s->dns, DNS_OPTIONS_ALL, conf && *conf ? conf : "/etc/resolv.conf") != 0)
                csa_log(CSA_LOG_WARN, "cannot read the resolver configuration",
                        json_pack("{s:s}", "file", conf && *conf ? conf : "/etc/resolv.conf"));
            /* 0x20 case randomisation: answers from a resolver that does not echo the case would
             * be dropped; the connection is verified by TLS anyway */
            evdns_base_set_option(s->dns, "randomize-case:", "0");
        }
    }
    return s->dns;
}

/*
 * The connection for the next request. A plain one is kept for good (evhttp reconnects it); a TLS
 * one cannot be reused once closed (its SSL object has done its handshake), so it is rebuilt.
 */
static struct evhttp_connection *connection(csa_shipper *s)
{
    if (s->conn && s->conn_closed && s->endpoint.tls) {
        evhttp_connection_free(s->conn);
        s->conn = NULL;
    }
    s->conn_closed = 0;
    if (s->conn)
        return s->conn;
#ifdef CSA_TLS
    if (s->endpoint.tls) {
        /* created on first use, after init: loading the CA bundle costs a few ms of CPU */
        if (!s->tls && tls_init(s) != 0)
            return NULL;
        struct bufferevent *bev = tls_bufferevent(s);
        s->conn = bev ? evhttp_connection_base_bufferevent_new(s->base, resolver(s), bev, s->endpoint.host,
                                                               (unsigned short)s->endpoint.port)
                      : NULL;
    } else
#endif
        s->conn = evhttp_connection_base_new(s->base, resolver(s), s->endpoint.host, (unsigned short)s->endpoint.port);
    if (s->conn) {
        evhttp_connection_set_timeout(s->conn, REQUEST_TIMEOUT_S);
        evhttp_connection_set_retries(s->conn, 0);
        evhttp_connection_set_closecb(s->conn, on_conn_closed, s);
    }
    return s->conn;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    send_batch(arg);
}

csa_shipper *csa_shipper_create(struct event_base *base, const csa_url *endpoint, const char *api_key,
                                csa_records *records, size_t batch_size)
{
    csa_shipper *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->records = records;
    s->batch_size = batch_size;
    s->backoff_ms = BACKOFF_FIRST_MS;
    if (api_key && *api_key && strlen(api_key) < sizeof s->api_key) {
        strcpy(s->api_key, api_key);
        s->key_configured = 1;
    }
    s->timer = evtimer_new(base, on_timer, s);
    if (endpoint) {
        s->endpoint = *endpoint;
        s->have_endpoint = 1;
    }
    if (!s->timer) {
        csa_shipper_destroy(s);
        return NULL;
    }
    return s;
}

void csa_shipper_destroy(csa_shipper *s)
{
    if (!s)
        return;
    if (s->timer)
        event_free(s->timer);
    if (s->conn)
        evhttp_connection_free(s->conn);
    if (s->dns)
        evdns_base_free(s->dns, 0);
#ifdef CSA_TLS
    if (s->tls)
        SSL_CTX_free(s->tls);
#endif
    free(s->body);
    free(s);
}

static void arm(csa_shipper *s, long long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

void csa_shipper_kick(csa_shipper *s)
{
    if (!s->have_endpoint || s->in_flight || evtimer_pending(s->timer, NULL))
        return;
    if (s->body || csa_records_ready(s->records) > 0)
        arm(s, 0);
}

void csa_shipper_offer_api_key(csa_shipper *s, const char *key)
{
    if (!s->key_configured && key && *key && strlen(key) < sizeof s->api_key)
        strcpy(s->api_key, key);
}

void csa_shipper_hurry(csa_shipper *s, long long deadline_ms)
{
    s->deadline_ms = deadline_ms;
    if (s->backoff_ms > BACKOFF_HURRY_MS)
        s->backoff_ms = BACKOFF_HURRY_MS;
    if (!s->in_flight && evtimer_pending(s->timer, NULL)) {
        evtimer_del(s->timer);
        arm(s, 0);
    }
}

int csa_shipper_idle(const csa_shipper *s)
{
    return !s->in_flight && !s->body;
}
size_t csa_shipper_in_flight(const csa_shipper *s)
{
    return s->body ? s->body_records : 0;
}
const csa_shipper_stats *csa_shipper_stats_get(const csa_shipper *s)
{
    return &s->stats;
}

/*
 * Called when a batch is done with (delivered or dropped). glibc keeps freed heap pages mapped: a
 * burst of records, a large batch and its body would otherwise stay in the RSS for good; this
 * hands whole free pages back (a walk of the free lists, microseconds, once per batch).
 */
static void trim_heap(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void on_answer(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg)
{
    csa_shipper *s = arg;
    s->in_flight = 0;
    if (status >= 200 && status < 300) {
        s->stats.batches++;
        /* {"status":"partial","processed":n,"failed":m,"failures":[...]}: m records were refused
         * one by one (sending them again would get the same answer) */
        json_t *reply = body ? json_loadb(body, len, 0, NULL) : NULL;
        json_t *failed = json_object_get(reply, "failed");
        size_t refused = json_is_integer(failed) && json_integer_value(failed) > 0 &&
                                 (size_t)json_integer_value(failed) <= s->body_records
                             ? (size_t)json_integer_value(failed)
                             : 0;
        if (refused) {
            s->stats.rejected += refused;
            json_t *failures = json_object_get(reply, "failures");
            char *detail = failures ? json_dumps(failures, JSON_COMPACT) : NULL;
            csa_log(CSA_LOG_WARN, "backend refused records of a batch",
                    json_pack("{s:I, s:I, s:s#}", "records", (json_int_t)s->body_records, "refused",
                              (json_int_t)refused, "failures", detail ? detail : "",
                              (int)(detail ? (strlen(detail) > 500 ? 500 : strlen(detail)) : 0)));
            free(detail);
        }
        json_decref(reply);
        s->stats.shipped += s->body_records - refused;
        csa_logf(CSA_LOG_DEBUG, "shipped %zu records (HTTP %d)", s->body_records - refused, status);
        free(s->body);
        s->body = NULL;
        trim_heap();
        s->backoff_ms = s->deadline_ms ? BACKOFF_HURRY_MS : BACKOFF_FIRST_MS;
        csa_shipper_kick(s);
        return;
    }
    int retry = status == 0 || status == 408 || status == 429 || status >= 500;
    if (!retry) {
        s->stats.rejected += s->body_records;
        csa_log(CSA_LOG_WARN, "backend rejected a batch",
                json_pack("{s:i, s:I, s:s#}", "status", status, "records", (json_int_t)s->body_records, "detail",
                          body ? body : "", (int)(len > 300 ? 300 : len)));
        free(s->body);
        s->body = NULL;
        trim_heap();
        csa_shipper_kick(s);
        return;
    }
    s->stats.retries++;
#ifdef CSA_TLS
    if (status == 0)
        log_refused_certificate(s);
#endif
    csa_log(CSA_LOG_INFO, "batch not delivered, will retry",
            json_pack("{s:i, s:I}", "status", status, "backoff_ms", (json_int_t)s->backoff_ms));
    long long wait = s->backoff_ms;
    long long cap = s->deadline_ms ? BACKOFF_HURRY_MS : BACKOFF_MAX_MS;
    s->backoff_ms = s->backoff_ms * 2 > cap ? cap : s->backoff_ms * 2;
    arm(s, wait);
}

/*
 * json as compact JSON in a buffer of its exact size (NUL-terminated, *len without the NUL), or
 * NULL; the caller frees. Two passes instead of json_dumps, which grows its buffer by doubling:
 * with a batch's records still held as trees, the old and the new buffer made the peak ~1.5x the
 * body larger than needed (RSS, README.md).
 */
static char *serialise(const json_t *json, size_t *len)
{
    size_t n = json ? json_dumpb(json, NULL, 0, JSON_COMPACT) : 0;
    char *out = n ? malloc(n + 1) : NULL;
    if (!out || json_dumpb(json, out, n, JSON_COMPACT) != n) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

static void send_batch(csa_shipper *s)
{
    if (s->in_flight || !s->have_endpoint)
        return;
    if (!s->body) {
        json_t *batch = csa_records_take(s->records, s->batch_size);
        if (!batch)
            return;
        s->body_records = json_array_size(batch);
        json_t *wrapper = json_pack("{s:o}", "invocations", batch);
        s->body = serialise(wrapper, &s->body_len);
        json_decref(wrapper);
        if (!s->body) {
            s->stats.rejected += s->body_records;
            return;
        }
    }
    struct evhttp_connection *conn = connection(s);
    if (!conn) {
        s->stats.retries++;
        arm(s, s->backoff_ms);
        return;
    }
    if (s->deadline_ms) {
        long long left = s->deadline_ms - csa_now_ms();
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        if (left > 0)
            evhttp_connection_set_timeout_tv(conn, &tv);
    }
    const char *headers[] = {"X-API-Key", s->api_key, NULL};
    s->stats.attempts++;
    s->in_flight = 1;
    if (csa_http_request(conn, &s->endpoint, EVHTTP_REQ_POST, "/api/v1/ingest/batch", s->api_key[0] ? headers : NULL,
                         s->body, s->body_len, on_answer, s) != 0) {
        s->in_flight = 0;
        s->stats.retries++;
        arm(s, s->backoff_ms);
    }
}
