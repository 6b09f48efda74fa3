/* stream.c: see stream.h. */
#include "stream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http_client.h"
#include "log.h"
#include "telemetry.h"

#define MAX_CONNECTIONS 64         /* one per SDK copy in the function's process; more is a bug or abuse */
#define MAX_PENDING_OUT (1u << 20) /* a client that does not read its acks is dropped beyond this */
/*
 * Acknowledgements are coalesced: one per ACK_EVERY record lines, and the rest within ACK_DELAY_MS
 * of the last line taken. Each ack costs the function's process a wake-up on its event loop (about
 * 20 µs of the SDK's ~40 µs per warm record when every read was acknowledged); an ack that comes
 * later only means the SDK would resend a few more records if the extension died meanwhile.
 */
#define ACK_EVERY 64
#define ACK_DELAY_MS 1000
/*
 * "done" lines (invocations left to the extension, taken care of) are coalesced likewise: one per
 * ACK_EVERY invocations, the rest within DONE_DELAY_MS. Longer than for acks: a function invoked
 * now and then would otherwise get a line at nearly every thaw (the timer runs out while the
 * environment is frozen), in the middle of its invocation; the SDK only keeps a little more.
 */
#define DONE_DELAY_MS 10000

typedef struct connection {
    struct csa_stream *owner;
    struct bufferevent *bev;
    csa_stream_reader reader;
    unsigned long long acked; /* the count in the last "ack" written */
    size_t scanned;           /* bytes at the start of the input known to hold no newline */
    int closing;              /* the last answer is being written, then the connection is freed */
    int offer_asked;          /* the hello's request for an offer has been answered (or not) */
    char done_id[CSA_ID_MAX]; /* the newest request taken care of, not yet told ("done") */
    size_t done_waiting;      /* invocations up to it not yet told */
    struct connection *prev, *next;
} connection;

struct csa_stream {
    struct evconnlistener *listener;
    csa_ingest_hooks hooks;
    struct event *after; /* runs hooks.added on the next loop turn, after the acks went out */
    connection *connections;
    int count;
    struct event *ack_timer;  /* writes the acks that wait (ACK_DELAY_MS) */
    struct event *done_timer; /* writes the "done" lines that wait (DONE_DELAY_MS) */
};

static void take_line(csa_stream_reader *r, const char *line, size_t len, const csa_ingest_hooks *hooks,
                      csa_stream_reject_fn on_reject, void *reject_arg)
{
    json_t *value = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    int first = !r->started;
    r->started = 1;
    const char *control = json_is_object(value) ? json_string_value(json_object_get(value, "coldstart")) : NULL;
    if (first && control && strcmp(control, "hello") == 0) {
        const char *key = json_string_value(json_object_get(value, "api_key"));
        if (key && hooks->api_key)
            hooks->api_key(key, hooks->arg);
        const char *warm = json_string_value(json_object_get(value, "warm"));
        r->wants_offer = warm && strcmp(warm, "platform") == 0;
        json_decref(value);
        return;
    }
    if (r->offered && control && strcmp(control, "delegate") == 0 && len <= CSA_STREAM_TEMPLATE_MAX) {
        json_t *record = json_object_get(value, "record");
        json_t *rate = json_object_get(value, "sample_rate");
        double sample_rate = json_is_number(rate) ? json_number_value(rate) : 1;
        if (!(sample_rate >= 0 && sample_rate <= 1))
            sample_rate = 1;
        if (json_is_object(record)) {
            r->delegations++;
            if (hooks->delegate)
                hooks->delegate(record, sample_rate, r, hooks->arg);
            json_decref(value);
            return;
        }
        /* no template: an ordinary line below (as is a template over the size limit) */
    }
    r->taken++;
    if (!json_is_object(value)) {
        json_decref(value);
        r->rejected++;
        on_reject(r->taken, "not a JSON object", reject_arg);
        return;
    }
    hooks->add(value, hooks->arg); /* ownership moves */
}

long long csa_stream_read(csa_stream_reader *r, const char *data, size_t len, size_t max_line,
                          const csa_ingest_hooks *hooks, csa_stream_reject_fn on_reject, void *reject_arg)
{
    size_t at = 0;
    while (at < len) {
        const char *line = data + at;
        size_t left = len - at;
        /* a newline within max_line + 1 bytes, or the line is too long whatever follows */
        const char *newline = memchr(line, '\n', left < max_line + 1 ? left : max_line + 1);
        if (!newline) {
            if (left <= max_line)
                break; /* incomplete: wait for the rest */
            r->started = 1;
            r->taken++;
            r->rejected++;
            on_reject(r->taken, "line too long", reject_arg);
            return CSA_STREAM_TOO_LONG;
        }
        size_t n = (size_t)(newline - line);
        at += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n > 0)
            take_line(r, line, n, hooks, on_reject, reject_arg);
    }
    return (long long)at;
}

static void connection_free(connection *c)
{
    csa_stream *s = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->connections = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->count--;
    if (s->hooks.closed)
        s->hooks.closed(&c->reader, s->hooks.arg);
    bufferevent_free(c->bev);
    free(c);
}

static void on_reject(unsigned long long line, const char *reason, void *arg)
{
    connection *c = arg;
    evbuffer_add_printf(bufferevent_get_output(c->bev), "rej %llu %s\n", line, reason);
}

/* Called when the output has been written: a closing connection is freed then. */
static void on_written(struct bufferevent *bev, void *arg)
{
    connection *c = arg;
    if (c->closing)
        connection_free(c);
}

static void write_ack(connection *c)
{
    evbuffer_add_printf(bufferevent_get_output(c->bev), "ack %llu\n", c->reader.taken);
    c->acked = c->reader.taken;
}

static void write_done(connection *c)
{
    evbuffer_add_printf(bufferevent_get_output(c->bev), "done %s\n", c->done_id);
    c->done_waiting = 0;
}

static void on_ack_timer(evutil_socket_t fd, short what, void *arg)
{
    csa_stream *s = arg;
    for (connection *c = s->connections; c; c = c->next)
        if (!c->closing && c->reader.taken != c->acked)
            write_ack(c);
}

static void on_done_timer(evutil_socket_t fd, short what, void *arg)
{
    csa_stream *s = arg;
    for (connection *c = s->connections; c; c = c->next)
        if (!c->closing && c->done_waiting)
            write_done(c);
}

static void arm(struct event *timer, int ms)
{
    if (evtimer_pending(timer, NULL))
        return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(timer, &tv);
}

void csa_stream_done(csa_stream *s, const void *owner, const char *request_id, size_t n)
{
    /* a request id the line protocol cannot carry (Lambda's are UUIDs): a later one covers it */
    if (!s || n == 0 || request_id[strcspn(request_id, " \t\r\n")] != '\0')
        return;
    for (connection *c = s->connections; c; c = c->next) {
        if (&c->reader != owner || c->closing)
            continue;
        snprintf(c->done_id, sizeof c->done_id, "%s", request_id);
        c->done_waiting += n;
        if (c->done_waiting >= ACK_EVERY)
            write_done(c);
        else
            arm(s->done_timer, DONE_DELAY_MS);
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    connection *c = arg;
    csa_stream *s = c->owner;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned long long taken = c->reader.taken, rejected = c->reader.rejected, delegations = c->reader.delegations;
    int too_long = 0;
    while (!too_long) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        struct evbuffer_ptr from;
        if (c->scanned >= len || evbuffer_ptr_set(in, &from, c->scanned, EVBUFFER_PTR_SET) != 0)
            evbuffer_ptr_set(in, &from, 0, EVBUFFER_PTR_SET);
        struct evbuffer_ptr newline = evbuffer_search(in, "\n", 1, &from);
        size_t size; /* bytes handed to the reader: one complete line, or the start of one too long */
        if (newline.pos >= 0) {
            size = (size_t)newline.pos + 1;
        } else if (len > CSA_INGEST_MAX_BODY) {
            size = CSA_INGEST_MAX_BODY + 1;
        } else {
            c->scanned = len;
            break;
        }
        c->scanned = 0;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)size);
        long long used = data ? csa_stream_read(&c->reader, data, size, CSA_INGEST_MAX_BODY, &s->hooks, on_reject, c)
                              : CSA_STREAM_TOO_LONG;
        if (used == CSA_STREAM_TOO_LONG) {
            too_long = 1;
            break;
        }
        evbuffer_drain(in, (size_t)used);
    }
    struct evbuffer *out = bufferevent_get_output(bev);
    if (c->reader.wants_offer && !c->offer_asked) {
        c->offer_asked = 1;
        if (s->hooks.offer && s->hooks.offer(s->hooks.arg)) {
            evbuffer_add(out, "offer platform\n", 15);
            c->reader.offered = 1;
        }
    }
    if (c->reader.taken - c->acked >= ACK_EVERY || (too_long && c->reader.taken != c->acked))
        write_ack(c);
    else if (c->reader.taken != c->acked)
        arm(s->ack_timer, ACK_DELAY_MS);
    /* hooks.added may start network work: never before the acks are on their way */
    if (c->reader.taken - c->reader.rejected != taken - rejected || c->reader.delegations != delegations) {
        struct timeval zero = {0, 0};
        evtimer_add(s->after, &zero);
    }
    if (too_long || evbuffer_get_length(out) > MAX_PENDING_OUT) {
        csa_log(CSA_LOG_WARN,
                too_long ? "stream line too long: connection closed" : "stream client does not read: connection closed",
                json_pack("{s:I}", "lines", (json_int_t)c->reader.taken));
        c->closing = 1;
        bufferevent_disable(bev, EV_READ);
        if (evbuffer_get_length(out) == 0)
            connection_free(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    connection *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* lines read before the end were already taken (and acknowledged if the peer still reads) */
        if (c->reader.rejected)
            csa_log(CSA_LOG_INFO, "stream closed",
                    json_pack("{s:I, s:I}", "lines", (json_int_t)c->reader.taken, "rejected",
                              (json_int_t)c->reader.rejected));
        connection_free(c);
    }
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr, int socklen,
                      void *arg)
{
    csa_stream *s = arg;
    if (s->count >= MAX_CONNECTIONS) {
        csa_log(CSA_LOG_WARN, "too many stream connections: refused", json_pack("{s:i}", "max", MAX_CONNECTIONS));
        evutil_closesocket(fd);
        return;
    }
    connection *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c ? bufferevent_socket_new(evconnlistener_get_base(listener), fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* acks are tiny: no Nagle delay */
    c->owner = s;
    c->bev = bev;
    c->next = s->connections;
    if (c->next)
        c->next->prev = c;
    s->connections = c;
    s->count++;
    bufferevent_setcb(bev, on_read, on_written, on_event, c);
    /* never more input held than one line of the largest size and its newline (+1 to tell) */
    bufferevent_setwatermark(bev, EV_READ, 0, CSA_INGEST_MAX_BODY + 2);
    bufferevent_enable(bev, EV_READ);
}

static void on_after(evutil_socket_t fd, short what, void *arg)
{
    csa_stream *s = arg;
    s->hooks.added(s->hooks.arg);
}

csa_stream *csa_stream_create(struct event_base *base, const char *host, int port, const csa_ingest_hooks *hooks)
{
    csa_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hooks = *hooks;
    s->after = evtimer_new(base, on_after, s);
    s->ack_timer = evtimer_new(base, on_ack_timer, s);
    s->done_timer = evtimer_new(base, on_done_timer, s);
    if (!s->after || !s->ack_timer || !s->done_timer)
        goto fail;
    /* a numeric address, parsed: evhttp_bind_socket's getaddrinfo would cost start-up time */
    struct sockaddr_storage ss;
    int len;
    if (csa_numeric_address(host, port, &ss, &len) != 0) {
        csa_log(CSA_LOG_ERROR, "stream: not a numeric address", json_pack("{s:s}", "host", host));
        goto fail;
    }
    s->listener =
        evconnlistener_new_bind(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                -1, (struct sockaddr *)&ss, len);
    if (!s->listener) {
        csa_log(CSA_LOG_ERROR, "cannot listen (stream)", json_pack("{s:s, s:i}", "host", host, "port", port));
        goto fail;
    }
    return s;
fail:
    csa_stream_destroy(s);
    return NULL;
}

void csa_stream_destroy(csa_stream *s)
{
    if (!s)
        return;
    while (s->connections)
        connection_free(s->connections);
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->after)
        event_free(s->after);
    if (s->ack_timer)
        event_free(s->ack_timer);
    if (s->done_timer)
        event_free(s->done_timer);
    free(s);
}
