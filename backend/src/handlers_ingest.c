/*
 * handlers_ingest.c: POST /api/v1/ingest, /api/v1/ingest/batch and /api/v1/ingest/firehose.
 * Records are validated (validate.h, firehose.h), completed with their project and an id, and
 * queued for the group-commit writer (writer.h); the answer waits for the commit, so a 2xx
 * means stored.
 */
#include "server_internal.h"

#include "log.h"
#include "metrics.h"
#include "uuid.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Any thread: the writer reported on the rows. */
static void on_write_done(csa_write_item *item) { csa__report_done(item->arg); }

static csa_status finish_write(csa__request *ctx)
{
    if (ctx->item.status == CSA_OK)
        return CSA_OK; /* ctx->reply, prepared before the write */
    if (ctx->item.status == CSA_ERR_UNAVAILABLE)
        return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The database is unavailable; nothing was stored. Retry later.");
    return csa__fail(ctx, CSA_ERR_INTERNAL, "The records could not be stored.");
}

/* Queues rows (stolen) for the writer with the reply to send once committed (stolen); `finish`
 * runs when the writer reported. Returns CSA_OK (deferred) or 503 when the writer's queue is full
 * (in rows or bytes). */
static csa_status defer_write(csa__request *ctx, json_t *rows, json_t *reply, csa__finish_fn finish)
{
    ctx->item.rows = rows;
    /* the rows weigh what their body did (their JSON trees a small multiple of it) */
    ctx->item.bytes = ctx->req ? evbuffer_get_length(evhttp_request_get_input_buffer(ctx->req)) : 0;
    ctx->item.done = on_write_done;
    ctx->item.arg = ctx;
    ctx->reply = reply;
    ctx->finish = finish;
    csa__begin_wait(ctx);
    if (csa_writer_submit(csa__g.writer, &ctx->item) == 0)
        return CSA_OK;
    csa__cancel_wait(ctx);
    return csa__fail(ctx, CSA_ERR_UNAVAILABLE, "The server is overloaded; nothing was stored. Retry later.");
}

/* Completes a normalised record for storage: its project and, if the client sent none, an id. */
static void prepare_row(json_t *row, const char *project_id)
{
    json_object_set_new(row, "project_id", json_string(project_id));
    if (!json_is_string(json_object_get(row, "invocation_id"))) {
        char id[CSA_UUID_SIZE];
        csa_uuid_random(id);
        json_object_set_new(row, "invocation_id", json_string(id));
    }
}

csa_status csa__handle_ingest(csa__request *ctx, json_t *body)
{
    json_t *errors = json_array();
    json_t *loc = json_pack("[s]", "body");
    json_t *row = csa_validate_record(body, loc, errors, (double)time(NULL));
    json_decref(loc);
    if (!row)
        return csa__invalid(ctx, errors);
    json_decref(errors);
    prepare_row(row, ctx->who.project_id);
    json_t *reply = json_pack("{s:s, s:O}", "status", "ok", "invocation_id", json_object_get(row, "invocation_id"));
    json_t *rows = json_array();
    json_array_append_new(rows, row);
    return defer_write(ctx, rows, reply, finish_write);
}

csa_status csa__handle_ingest_batch(csa__request *ctx, json_t *body)
{
    json_t *errors = json_array();
    json_t *items = csa_validate_batch_envelope(body, errors);
    if (!items)
        return csa__invalid(ctx, errors);
    json_decref(errors);
    double now = (double)time(NULL);
    json_t *rows = json_array();
    json_t *failures = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *item_errors = json_array();
        json_t *loc = json_pack("[s, s, I]", "body", "invocations", (json_int_t)i);
        json_t *row = csa_validate_record(item, loc, item_errors, now);
        json_decref(loc);
        if (row) {
            prepare_row(row, ctx->who.project_id);
            json_array_append_new(rows, row);
            json_decref(item_errors);
        } else {
            json_array_append_new(failures, json_pack("{s:I, s:o}", "index", (json_int_t)i, "errors", item_errors));
        }
    }
    size_t processed = json_array_size(rows), failed = json_array_size(failures);
    json_t *reply = json_pack("{s:s, s:I, s:I, s:o}", "status", failed ? "partial" : "ok", "processed",
                              (json_int_t)processed, "failed", (json_int_t)failed, "failures", failures);
    if (processed == 0) { /* nothing to commit */
        json_decref(rows);
        ctx->reply = reply;
        return CSA_OK;
    }
    return defer_write(ctx, rows, reply, finish_write);
}

/* A Firehose delivery committed (or not): metrics and Firehose's timestamp, then as any ingest. */
static csa_status finish_firehose_write(csa__request *ctx)
{
    if (ctx->item.status == CSA_OK) {
        csa_metrics_firehose(ctx->firehose_counts[0], ctx->firehose_counts[1], ctx->firehose_counts[2],
                             ctx->firehose_counts[3]);
        json_object_set_new(ctx->reply, "timestamp", json_integer(csa_epoch_ms()));
    }
    return finish_write(ctx);
}

/*
 * POST /api/v1/ingest/firehose: an Amazon Data Firehose delivery of CloudWatch Logs subscription
 * data (firehose.h). Its record lines become rows through the same validator and writer as
 * /api/v1/ingest/batch; an invalid line is skipped and counted, never fails the delivery (Firehose
 * would send it again until its retry duration runs out). 200 only after the commit, in
 * Firehose's response shape.
 */
csa_status csa__handle_ingest_firehose(csa__request *ctx, json_t *body)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *data = len ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
    const char *encoding = evhttp_find_header(evhttp_request_get_input_headers(ctx->req), "Content-Encoding");
    int gzipped = encoding && strcasecmp(encoding, "gzip") == 0;
    if (encoding && !gzipped && strcasecmp(encoding, "identity") != 0)
        return csa__fail(ctx, CSA_ERR_MEDIA_TYPE, "Content-Encoding must be gzip or absent");
    csa_firehose_result res;
    csa_firehose_result_init(&res);
    csa_status st = csa_firehose_decode(data, len, gzipped, NULL, (double)time(NULL), &res, ctx->detail,
                                        sizeof ctx->detail);
    if (!ctx->firehose_request_id[0])
        snprintf(ctx->firehose_request_id, sizeof ctx->firehose_request_id, "%s", res.request_id);
    if (st != CSA_OK) {
        csa_firehose_result_cleanup(&res);
        return st; /* the decoder's detail */
    }
    if (csa_log_enabled(CSA_LOG_INFO))
        csa_log(CSA_LOG_INFO, "firehose delivery",
                json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "request_id", ctx->request_id,
                          "firehose_request_id", ctx->firehose_request_id, "records", (json_int_t)res.records,
                          "control_messages", (json_int_t)res.control, "log_events", (json_int_t)res.events, "accepted",
                          (json_int_t)res.accepted, "invalid", (json_int_t)res.invalid, "ignored",
                          (json_int_t)res.ignored));
    json_t *reply = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "requestId", ctx->firehose_request_id,
                              "timestamp", (json_int_t)csa_epoch_ms(), "records", (json_int_t)res.records,
                              "control_messages", (json_int_t)res.control, "log_events", (json_int_t)res.events,
                              "accepted", (json_int_t)res.accepted, "invalid", (json_int_t)res.invalid, "ignored",
                              (json_int_t)res.ignored, "failures", res.failures);
    size_t counts[4] = {res.records, res.accepted, res.invalid, res.ignored};
    memcpy(ctx->firehose_counts, counts, sizeof counts);
    if (json_array_size(res.rows) == 0) { /* nothing to commit */
        csa_metrics_firehose(counts[0], counts[1], counts[2], counts[3]);
        csa_firehose_result_cleanup(&res);
        ctx->reply = reply;
        return CSA_OK;
    }
    size_t i;
    json_t *row;
    json_array_foreach(res.rows, i, row)
        prepare_row(row, ctx->who.project_id);
    json_t *rows = json_incref(res.rows);
    csa_firehose_result_cleanup(&res);
    return defer_write(ctx, rows, reply, finish_firehose_write);
}
