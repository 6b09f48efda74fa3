/*
 * connections.c: the connections of a worker, seen from evhttp's bufferevent callback until
 * evhttp frees them: the whole-request deadline (REQUEST_TIMEOUT) and the connection cap, evhttp's
 * own error pages rewritten into our JSON format, and the header gate, which checks a request's
 * key from its head before evhttp reads a large body.
 */
#include "server_internal.h"

#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

typedef csa__conn conn_track;
typedef csa__worker worker;
typedef csa__gate_head gate_head;

/* A key lookup of the header gate (see "authenticate before the body"). */
struct csa__gate_job {
    worker *w;
    conn_track *t;
    unsigned seq;         /* t->gate_seq when submitted */
    csa_key_identity who; /* key_hash in; project and scopes out */
    csa_status status;
    struct csa__gate_job *next;
};
typedef csa__gate_job gate_job;

static unsigned bucket_of(const void *p) { return (unsigned)(((uintptr_t)p >> 4) * 2654435761u) % CSA__CONN_BUCKETS; }

static conn_track *track_find(worker *w, const struct bufferevent *bev)
{
    for (conn_track *t = w->buckets[bucket_of(bev)]; t; t = t->hash_next)
        if (t->bev == bev)
            return t;
    return NULL;
}

static void track_remove(worker *w, conn_track *t)
{
    conn_track **pp = &w->buckets[bucket_of(t->bev)];
    while (*pp != t)
        pp = &(*pp)->hash_next;
    *pp = t->hash_next;
    if (t->prev)
        t->prev->next = t->next;
    else
        w->all = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->live--;
}

static void update_listener(worker *w)
{
    if (!w->bound)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);
    if (!w->paused && w->live >= w->cap) {
        evconnlistener_disable(l);
        w->paused = 1;
        csa_logf(CSA_LOG_WARN, "worker %d: connection cap %d reached, not accepting", w->index, w->cap);
    } else if (w->paused && w->live < w->cap) {
        evconnlistener_enable(l);
        w->paused = 0;
    }
}

/* Removes the last n bytes of an output buffer and appends `replacement` (may be NULL). */
static void replace_tail(conn_track *t, struct evbuffer *out, size_t n, const char *replacement)
{
    t->rewriting = 1;
    struct evbuffer *keep = evbuffer_new();
    if (keep) {
        evbuffer_remove_buffer(out, keep, evbuffer_get_length(out) - n);
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_buffer(out, keep);
        evbuffer_free(keep);
    }
    if (replacement)
        evbuffer_add(out, replacement, strlen(replacement));
    t->rewriting = 0;
}

/*
 * libevent 2.1 answers some bad requests itself (a declared body over its hard cap, a malformed
 * request line or header, an unknown method) with an HTML page, and has no hook to change that.
 * Every response we write is marked (own_reply); a status line of 400 or more that appears in a
 * connection's output without that mark is evhttp's error page. It is replaced by the same error
 * in our JSON format, and the rest of evhttp's page is dropped (such errors always close the
 * connection, so nothing else follows on it).
 */
static void on_output_added(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    conn_track *t = arg;
    if (info->n_added == 0 || t->rewriting)
        return;
    if (t->swallow) {
        replace_tail(t, out, info->n_added, NULL);
        return;
    }
    if (t->own_reply || info->n_added < 12 || info->n_added > 200)
        return;
    char line[201];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(out, &pos, evbuffer_get_length(out) - info->n_added, EVBUFFER_PTR_SET);
    ev_ssize_t got = evbuffer_copyout_from(out, &pos, line, info->n_added);
    if (got < 12)
        return;
    line[got] = '\0';
    int status = 0;
    if (strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 9, "%3d", &status) != 1 || status < 400)
        return;
    csa_status code = status == 413 && t->refusal      ? t->refusal
                      : status == 413                  ? CSA_ERR_TOO_LARGE
                      : status == 405                  ? CSA_ERR_METHOD
                      : status == 400                  ? CSA_ERR_VALIDATION
                      : status == 404                  ? CSA_ERR_NOT_FOUND
                      : status >= 500 && status != 501 ? CSA_ERR_INTERNAL
                                                       : CSA_ERR_VALIDATION;
    char detail[160];
    if (status == 413 && t->refusal)
        snprintf(detail, sizeof detail, "%s", t->refusal_detail);
    else if (code == CSA_ERR_TOO_LARGE)
        snprintf(detail, sizeof detail, "Request body exceeds the limit of %zu bytes", t->w->cfg->max_body_batch);
    else if (status == 501)
        snprintf(detail, sizeof detail, "Unknown HTTP method");
    else
        snprintf(detail, sizeof detail, "Malformed HTTP request");
    json_t *body = csa_error_body(code, detail, NULL);
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text)
        return;
    char request_id[48];
    snprintf(request_id, sizeof request_id, "%08x-%d-%llx-%llx", csa__g.instance, t->w->index,
             (unsigned long long)time(NULL), ++t->w->request_seq);
    char response[1024], retry[48] = "";
    if (code == CSA_ERR_RATE_LIMIT || code == CSA_ERR_UNAVAILABLE)
        snprintf(retry, sizeof retry, "Retry-After: %ld\r\n", t->refusal_retry > 0 ? t->refusal_retry : 1);
    if (status == 413 && t->refusal)
        status = csa_status_http(code);
    snprintf(response, sizeof response,
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n"
             "%sConnection: close\r\n\r\n%s",
             status, status == 501 ? "Not Implemented" : csa_status_reason(code), strlen(text), request_id, retry,
             text);
    free(text);
    replace_tail(t, out, info->n_added, response);
    t->swallow = 1;
    csa__log_evhttp_error(t->w, request_id, status);
}

static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);

/* evhttp asks us for each new connection's bufferevent: the one place we see every connection. */
struct bufferevent *csa__on_new_connection(struct event_base *base, void *arg)
{
    worker *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    conn_track *t = calloc(1, sizeof *t);
    if (!t)
        return bev; /* untracked, still served */
    bufferevent_incref(bev);
    t->bev = bev;
    t->w = w;
    evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, t);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input_added, t);
    t->mark = csa__now_mono();
    unsigned b = bucket_of(bev);
    t->hash_next = w->buckets[b];
    w->buckets[b] = t;
    t->next = w->all;
    if (w->all)
        w->all->prev = t;
    w->all = t;
    w->live++;
    csa_metrics_connections(1);
    update_listener(w);
    return bev;
}

/* Every sweep interval (server.c): release connections evhttp has freed (bufferevent_free clears all
 * callbacks) and cut those past the whole-request deadline. Shutting the socket down makes evhttp
 * see an error and free the connection itself, so we never free what evhttp owns. */
void csa__on_sweep(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    double now = csa__now_mono();
    double limit = w->cfg->request_timeout_s;
    for (conn_track *t = w->all, *next; t; t = next) {
        next = t->next;
        bufferevent_data_cb rcb, wcb;
        bufferevent_event_cb ecb;
        void *cbarg;
        bufferevent_getcb(t->bev, &rcb, &wcb, &ecb, &cbarg);
        if (!rcb && !wcb && !ecb) {
            if (t->gate_lookups > 0) /* a key lookup still points at it */
                continue;
            track_remove(w, t);
            bufferevent_decref(t->bev);
            free(t);
            csa_metrics_connections(-1);
            continue;
        }
        if (!t->busy && !t->cut && now - t->mark > limit) {
            evutil_socket_t s = bufferevent_getfd(t->bev);
            if (s >= 0) {
                shutdown(s, SHUT_RDWR);
                t->cut = 1;
                csa_logf(CSA_LOG_INFO, "closed a connection past the request deadline (%d s)",
                         w->cfg->request_timeout_s);
            }
        }
    }
    update_listener(w);
}

conn_track *csa__conn_of_request(worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    return evcon ? track_find(w, evhttp_connection_get_bufferevent(evcon)) : NULL;
}

/* ---- authenticate before the body (the header gate) ----------------------------------------- */

/*
 * evhttp reads a request's whole body before it calls us, and libevent 2.1 has no hook between
 * the headers and the body for a server. So each connection's input buffer is watched (evbuffer
 * callbacks run as bytes arrive, before evhttp's read callback parses them) and the request head
 * is read alongside evhttp: method, path, the key headers, Content-Length. When the head is
 * complete, and before evhttp reads any of the body, the gate sets the connection's body limit
 * (evhttp_connection_set_max_body_size):
 *   - the route's own limit (plus CSA__HARD_BODY_CAP_EXTRA, so that the dispatcher words the 413); a
 *     declared length beyond that is refused at once;
 *   - for a keyed route with a body over CSA__GATE_SMALL_BODY (or chunked): a key known valid passes;
 *     a missing, malformed or known-bad key is refused (401) and counts against the client's
 *     address; an address over AUTH_FAIL_LIMIT is refused (429) without a lookup; an unknown key
 *     is looked up on the key threads while the connection does not read (CSA__GATE_PENDING), and
 *     the body is read only once it is found valid.
 * A refusal sets the body limit to 0: evhttp then answers 413 itself and closes, and
 * on_output_added rewrites that page into the refusal's JSON error. The gate only guards
 * resources: the dispatcher authenticates every request again, in full.
 */

/* The evhttp connection of a tracked bufferevent (evhttp passes it as its callbacks' argument). */
static struct evhttp_connection *evcon_of(conn_track *t)
{
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;
    void *cbarg = NULL;
    bufferevent_getcb(t->bev, &rcb, &wcb, &ecb, &cbarg);
    return rcb ? cbarg : NULL;
}

/* Is `peer` one of TRUSTED_PROXIES? Both in canonical text form. */
static int trusted_proxy(const char *peer)
{
    unsigned char bin[16];
    char canon[CSA_ADDR_MAX];
    int family = strchr(peer, ':') ? AF_INET6 : AF_INET;
    if (csa__g.cfg->nproxies == 0 || inet_pton(family, peer, bin) != 1 || !inet_ntop(family, bin, canon, sizeof canon))
        return 0;
    for (int i = 0; i < csa__g.cfg->nproxies; i++)
        if (strcmp(csa__g.cfg->proxies[i], canon) == 0)
            return 1;
    return 0;
}

/* Copies the last comma-separated entry of an X-Forwarded-For value (the one the nearest proxy
 * appended), trimmed, into out. */
void csa__last_forwarded(const char *xff, char out[CSA_ADDR_MAX])
{
    const char *p = strrchr(xff, ',');
    p = p ? p + 1 : xff;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    snprintf(out, CSA_ADDR_MAX, "%.*s", (int)(n < CSA_ADDR_MAX ? n : CSA_ADDR_MAX - 1), p);
}

/*
 * The client's address, as the failed-authentication limit counts it: the peer's; or, when the
 * peer is a trusted proxy (TRUSTED_PROXIES, none by default), X-Real-IP, else the last entry of
 * X-Forwarded-For. Headers from other peers are ignored: a client cannot pick its own address.
 */
void csa__client_address(struct evhttp_connection *evcon, const char *real_ip, const char *forwarded,
                         char out[CSA_ADDR_MAX])
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    out[0] = '\0';
    if (evcon)
        evhttp_connection_get_peer(evcon, &peer, &port);
    if (!peer)
        return;
    if (trusted_proxy(peer) && real_ip && *real_ip)
        snprintf(out, CSA_ADDR_MAX, "%s", real_ip);
    else if (trusted_proxy(peer) && forwarded && *forwarded)
        snprintf(out, CSA_ADDR_MAX, "%s", forwarded);
    else
        snprintf(out, CSA_ADDR_MAX, "%s", peer);
}

/* Makes evhttp refuse the body (413, rewritten into `status` with `detail`) before reading it. */
static void gate_refuse(conn_track *t, struct evhttp_connection *evcon, csa_status status, long retry,
                        const char *detail)
{
    t->refusal = status;
    t->refusal_retry = retry;
    snprintf(t->refusal_detail, sizeof t->refusal_detail, "%s", detail);
    evhttp_connection_set_max_body_size(evcon, 0);
}

static void run_gate_lookup(void *arg)
{
    gate_job *job = arg;
    job->status = csa_keycache_fetch(csa__g.keys, csa__g.auth_pool, &job->who);
}

/* Any thread: hands a finished lookup to its worker's loop (as report_done does for requests). */
static void gate_lookup_done(void *arg)
{
    gate_job *job = arg;
    worker *w = job->w;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL && w->gate_done == NULL;
    job->next = w->gate_done;
    w->gate_done = job;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        event_active(w->done_ev, EV_READ, 0);
}

/* Event loop: a lookup of the gate came back. Frees the job. */
static void gate_resume(gate_job *job)
{
    conn_track *t = job->t;
    t->gate_lookups--;
    struct evhttp_connection *evcon = evcon_of(t);
    if (evcon && t->gate == CSA__GATE_PENDING && t->gate_seq == job->seq) {
        t->gate = CSA__GATE_IDLE;
        if (job->status == CSA_ERR_AUTH) {
            char addr[CSA_ADDR_MAX];
            csa__client_address(evcon, t->head.real_ip, t->head.forwarded, addr);
            csa_authfail_record(csa__g.authfail, addr, time(NULL));
            gate_refuse(t, evcon, CSA_ERR_AUTH, 0, "Invalid or missing API key");
        } else if (job->status != CSA_OK) {
            gate_refuse(t, evcon, CSA_ERR_UNAVAILABLE, 1, "The database is unavailable; retry later.");
        }
        /* valid: the body may come; refused: evhttp answers on the next bytes of it */
        bufferevent_enable(t->bev, EV_READ);
    }
    free(job);
}

/* The head is complete: decide what evhttp may read of the body (see the block comment above). */
static void gate_decide(conn_track *t)
{
    gate_head *h = &t->head;
    t->gate = CSA__GATE_IDLE;
    struct evhttp_connection *evcon = evcon_of(t);
    if (!evcon)
        return;
    const csa__route *r = NULL;
    char id[64];
    for (size_t i = 0; i < csa__nroutes && !r; i++)
        if (strcmp(csa__method_name(csa__routes[i].method), h->method) == 0 &&
            csa__route_matches(&csa__routes[i], h->path, id, sizeof id))
            r = &csa__routes[i];
    char detail[128];
    if (!r || r->body == CSA__BODY_NONE) {
        snprintf(detail, sizeof detail, "Request body exceeds the limit of %d bytes for %.8s requests here",
                 CSA__GATE_SMALL_BODY, h->method);
        t->refusal = CSA_ERR_TOO_LARGE; /* if evhttp refuses a longer body, it says this */
        snprintf(t->refusal_detail, sizeof t->refusal_detail, "%s", detail);
        evhttp_connection_set_max_body_size(evcon, CSA__GATE_SMALL_BODY);
        return;
    }
    /* An authenticated body a little over the route's limit is still read, so that the dispatcher
     * answers 413 in full and the client reads it (rather than a reset while it sends); beyond
     * CSA__HARD_BODY_CAP_EXTRA more, or before the key is known good, nothing is read. */
    size_t limit = csa__route_body_limit(r);
    if (h->content_length > (long long)(limit + CSA__HARD_BODY_CAP_EXTRA)) {
        snprintf(detail, sizeof detail, "Request body of %lld bytes exceeds the limit of %zu bytes", h->content_length,
                 limit);
        gate_refuse(t, evcon, CSA_ERR_TOO_LARGE, 0, detail);
        return;
    }
    t->refusal = CSA_ERR_TOO_LARGE; /* a chunked body that grows past the cap */
    snprintf(t->refusal_detail, sizeof t->refusal_detail, "Request body exceeds the limit of %zu bytes", limit);
    evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)(limit + CSA__HARD_BODY_CAP_EXTRA));
    if (!r->scope || (!h->chunked && h->content_length <= CSA__GATE_SMALL_BODY))
        return; /* a small body: the dispatcher checks the key */
    const char *key = (r->flags & CSA__ROUTE_FIREHOSE) && h->fh_key[0] ? h->fh_key : h->key[0] ? h->key : NULL;
    csa_key_identity who;
    char touch[CSA_UUID_LEN + 1];
    csa_status st = csa_keycache_check(csa__g.keys, key, &who, touch);
    if (st == CSA_OK)
        return;
    char addr[CSA_ADDR_MAX];
    csa__client_address(evcon, h->real_ip, h->forwarded, addr);
    time_t now = time(NULL);
    if (st != CSA_ERR_NOT_FOUND) {
        csa_authfail_record(csa__g.authfail, addr, now);
        gate_refuse(t, evcon, CSA_ERR_AUTH, 0, "Invalid or missing API key");
        return;
    }
    long retry = 0;
    if (!who.stale && csa_authfail_blocked(csa__g.authfail, addr, now, &retry)) {
        gate_refuse(t, evcon, CSA_ERR_RATE_LIMIT, retry, "Too many failed authentications from this address");
        return;
    }
    gate_job *job = calloc(1, sizeof *job);
    if (job) {
        job->w = t->w;
        job->t = t;
        job->seq = t->gate_seq;
        job->who = who;
        if (csa_executor_submit(csa__g.auth_executor, run_gate_lookup, gate_lookup_done, job) == 0) {
            t->gate = CSA__GATE_PENDING;
            t->gate_lookups++;
            bufferevent_disable(t->bev, EV_READ);
            return;
        }
        free(job);
    }
    gate_refuse(t, evcon, CSA_ERR_UNAVAILABLE, 1, "The server is overloaded; retry later.");
}

/* Copies src into dst (size bytes), cut to fit, always NUL-terminated. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* One complete line of the head (without its line ending). */
static void gate_line(gate_head *h, const char *line, size_t len)
{
    if (h->lines == 0) { /* METHOD SP target SP version */
        size_t m = strcspn(line, " ");
        snprintf(h->method, sizeof h->method, "%.*s", (int)(m < sizeof h->method ? m : sizeof h->method - 1), line);
        const char *target = line[m] ? line + m + 1 : "";
        size_t n = strcspn(target, " ?#");
        snprintf(h->path, sizeof h->path, "%.*s", (int)(n < sizeof h->path ? n : sizeof h->path - 1), target);
        return;
    }
    if (line[0] == ' ' || line[0] == '\t')
        return; /* an obsolete folded continuation: none of ours */
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    char value[CSA__GATE_LINE_MAX];
    snprintf(value, sizeof value, "%.*s", (int)vlen, v);
    if (header_is(line, name_len, "X-API-Key"))
        copy_cut(h->key, sizeof h->key, value);
    else if (header_is(line, name_len, "X-Amz-Firehose-Access-Key"))
        copy_cut(h->fh_key, sizeof h->fh_key, value);
    else if (header_is(line, name_len, "X-Real-IP"))
        copy_cut(h->real_ip, sizeof h->real_ip, value);
    else if (header_is(line, name_len, "X-Forwarded-For"))
        csa__last_forwarded(value, h->forwarded);
    else if (header_is(line, name_len, "Transfer-Encoding"))
        h->chunked = 1;
    else if (header_is(line, name_len, "Content-Length")) {
        char *end;
        long long n = strtoll(value, &end, 10);
        if (end != value && n > h->content_length)
            h->content_length = n; /* the largest, if several (the dispatcher refuses those) */
    }
}

/* Reads head bytes; decides once the blank line that ends the head arrives. */
static void gate_feed(conn_track *t, const char *p, size_t n)
{
    gate_head *h = &t->head;
    for (size_t i = 0; i < n && t->gate == CSA__GATE_HEAD; i++) {
        if (++h->bytes > CSA__GATE_HEAD_MAX) {
            t->gate = CSA__GATE_IDLE; /* evhttp refuses a head this long itself */
            return;
        }
        if (p[i] != '\n') {
            if (h->line_len < sizeof h->line - 1)
                h->line[h->line_len++] = p[i];
            else
                h->line_too_long = 1;
            continue;
        }
        size_t len = h->line_len;
        if (len > 0 && h->line[len - 1] == '\r')
            len--;
        h->line[len] = '\0';
        int too_long = h->line_too_long;
        h->line_len = 0;
        h->line_too_long = 0;
        if (len == 0 && h->lines == 0)
            continue; /* blank lines before a request line are tolerated */
        if (len == 0) {
            gate_decide(t);
            return;
        }
        if (!too_long)
            gate_line(h, h->line, len);
        else if (h->lines == 0) {
            t->gate = CSA__GATE_IDLE; /* a request line this long: evhttp refuses it */
            return;
        }
        h->lines++;
    }
}

/* Feeds the gate whatever of `in` from offset `from` on. */
static void gate_feed_buffer(conn_track *t, struct evbuffer *in, size_t from)
{
    char chunk[4096];
    size_t len = evbuffer_get_length(in);
    while (from < len && t->gate == CSA__GATE_HEAD) {
        struct evbuffer_ptr pos;
        if (evbuffer_ptr_set(in, &pos, from, EVBUFFER_PTR_SET) != 0)
            return;
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, chunk, sizeof chunk);
        if (got <= 0)
            return;
        gate_feed(t, chunk, (size_t)got);
        from += (size_t)got;
    }
}

/* Bytes arrived on a connection, evhttp has not parsed them yet. */
static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn_track *t = arg;
    if (info->n_added == 0)
        return;
    if (t->gate == CSA__GATE_PENDING) { /* evhttp re-enables reading after a 100 Continue: not yet */
        bufferevent_disable(t->bev, EV_READ);
        return;
    }
    if (t->gate == CSA__GATE_HEAD)
        gate_feed_buffer(t, in, evbuffer_get_length(in) - info->n_added);
}

/* A request was answered: the gate reads the next head, from what is already buffered on. */
void csa__gate_reset(conn_track *t)
{
    t->gate_seq++;
    t->gate = CSA__GATE_HEAD;
    t->refusal = CSA_OK;
    memset(&t->head, 0, sizeof t->head);
    t->head.content_length = -1;
    struct evhttp_connection *evcon = evcon_of(t);
    if (evcon) /* until a head is decided: evhttp's own cap, as for a connection's first request */
        evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)(csa__g.cfg->max_body_batch + CSA__HARD_BODY_CAP_EXTRA));
    gate_feed_buffer(t, bufferevent_get_input(t->bev), 0);
}

void csa__gate_jobs_free(csa__gate_job *list)
{
    for (csa__gate_job *job = list, *next; job; job = next) {
        next = job->next;
        free(job);
    }
}

void csa__gate_resume_all(csa__gate_job *list)
{
    for (csa__gate_job *job = list, *next; job; job = next) {
        next = job->next;
        gate_resume(job);
    }
}
