/*
 * stream.h: the SDK's persistent local connection (127.0.0.1:7244), a cheaper path than one HTTP
 * request per record: the SDK writes a record and goes on, it never waits for an answer.
 *
 * Protocol (newline-delimited, UTF-8; a trailing "\r" is ignored, empty lines are skipped):
 *   client -> extension, first line (optional):  {"coldstart":"hello","api_key":"<key>"}
 *       The key is used exactly like X-API-Key on the HTTP endpoint (hooks.api_key). A hello is
 *       recognised on the first line only; later lines are records.
 *       With "warm":"platform" in it, the client can leave its warm records to the extension.
 *   client -> extension, every other line: one record, the same JSON object as the body of
 *       POST /api/v1/ingest; or, only after an "offer" on this connection, the control line
 *       {"coldstart":"delegate","record":{...},"sample_rate":<0..1>}: from that line on the client
 *       sends no warm records; the extension builds them from the platform's reports with `record`
 *       as the template of what is the same for every invocation (records.h). At most
 *       CSA_STREAM_TEMPLATE_MAX bytes (a longer one is taken as an ordinary record line, which the
 *       backend refuses). Control lines are not counted as records.
 *   extension -> client:
 *       "offer platform\n"    at once, after a hello that asked for it, when the extension can
 *                             build warm records from the platform (its telemetry subscription is
 *                             active, COLDSTART_EXTENSION_WARM_RECORDS is not "sdk"). The latest
 *                             delegate line wins; when its connection ends, invocations that
 *                             started before still get their records, later ones do not;
 *       "rej <n> <reason>\n"  at once: line n (1-based count of record lines on this connection)
 *                             is not a JSON object: counted, not kept; the client must not send
 *                             it again;
 *       "done <request id>\n" after an offer and a delegate line: the extension has taken care
 *                             of every invocation up to this request's (built its record from the
 *                             platform's report, or left it to the sample rate). One per 64
 *                             invocations, the rest within 10 s; the client keeps what it left
 *                             until then, and sends those records itself if the connection fails
 *                             first;
 *       "ack <n>\n"           n record lines taken so far on this connection (cumulative, rejected
 *                             ones included): everything up to n is the extension's now. Written
 *                             once per 64 lines and within a second of the last line (stream.c:
 *                             each ack wakes the function's process), so a client keeps up to a
 *                             second's records, and at least 64, until acknowledged.
 *   A line longer than CSA_INGEST_MAX_BODY is answered "rej <n> line too long" (with the "ack"
 *   of the lines before it) and the connection is closed.
 * Records are only checked for being JSON objects (as on the HTTP endpoint); hooks.added runs on
 * the next loop turn, after the acknowledgement has been written.
 */
#ifndef CSA_STREAM_H
#define CSA_STREAM_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#include "ingest.h"

/* What one connection has read so far: the pure part of the protocol (no sockets, fuzzed). */
typedef struct csa_stream_reader {
    unsigned long long taken;       /* record lines taken (the "ack" count), rejected ones included */
    unsigned long long rejected;    /* of which not a JSON object */
    int started;                    /* a line has been seen: a hello is only valid first */
    int wants_offer;                /* the hello asked for an offer (warm records from the platform) */
    int offered;                    /* the offer was made on this connection: a delegate line is valid */
    unsigned long long delegations; /* delegate lines taken */
} csa_stream_reader;

/* Called for each rejected record line: its number (1-based) and a short reason. */
typedef void (*csa_stream_reject_fn)(unsigned long long line, const char *reason, void *arg);

#define CSA_STREAM_TOO_LONG (-1)

/*
 * Takes the complete lines at the start of data[0, len): records go to hooks->add (ownership
 * moves), a hello's key to hooks->api_key, a delegate line to hooks->delegate (with r as its
 * owner), rejected lines to on_reject. Stops before an incomplete
 * last line. Returns the bytes consumed (through the last newline taken), or CSA_STREAM_TOO_LONG
 * when a line (complete or not) is longer than max_line: that line is counted and reported to
 * on_reject, the lines before it were taken, and the connection must be closed.
 */
long long csa_stream_read(csa_stream_reader *r, const char *data, size_t len, size_t max_line,
                          const csa_ingest_hooks *hooks, csa_stream_reject_fn on_reject, void *reject_arg);

/* The longest delegate line taken (its template is copied into every record built). */
#define CSA_STREAM_TEMPLATE_MAX 65536

typedef struct csa_stream csa_stream;

/*
 * Listens on host:port (a numeric IPv4/IPv6 address: no name lookup at start-up). Returns NULL
 * (and logs) when the address cannot be parsed or bound. The caller frees with csa_stream_destroy,
 * which closes every open connection.
 */
csa_stream *csa_stream_create(struct event_base *base, const char *host, int port, const csa_ingest_hooks *hooks);
void csa_stream_destroy(csa_stream *s);

/*
 * Tells the delegating connection `owner` (the reader given to hooks.delegate) that `n` more
 * invocations, up to request_id's, are taken care of: written as "done <request_id>" once per
 * 64 invocations and within 10 s of the last (DONE_DELAY_MS). Nothing when owner is gone.
 */
void csa_stream_done(csa_stream *s, const void *owner, const char *request_id, size_t n);

#endif
