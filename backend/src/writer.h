/*
 * writer.h: group commit. HTTP threads submit validated records; writer threads drain the queue
 * and store many requests' records in ONE statement and one transaction (one round trip), then
 * report each request's outcome. A request learns "stored" only after the COMMIT succeeded.
 *
 * Ownership: csa_writer_submit takes the item; the writer calls item->done exactly once (on a
 * writer thread) and from then on the item belongs to the done callback again.
 */
#ifndef CSA_WRITER_H
#define CSA_WRITER_H

#include "error.h"

#include <jansson.h>

typedef struct csa_write_item csa_write_item;
typedef void (*csa_write_done_fn)(csa_write_item *item);

struct csa_write_item {
    json_t *rows;           /* array of normalised records, each with "project_id"; owned */
    csa_write_done_fn done; /* called once on a writer thread with `status` set */
    void *arg;              /* for the done callback */
    size_t bytes;           /* what the rows weigh, as the caller measures it (the request body's
                               length): counted against the writer's byte bound */
    csa_status status;      /* CSA_OK when committed; CSA_ERR_UNAVAILABLE when the database failed */
    csa_write_item *next;   /* queue link, writer-private */
};

typedef struct csa_writer csa_writer;

/* Starts `threads` writer threads, each with its own connection to url (connected lazily and
 * re-connected after failures). max_rows bounds the rows of one transaction; max_queued bounds
 * the rows waiting and max_bytes the items' `bytes` held (waiting or being written): beyond
 * either, submit refuses (back-pressure). A first item is always taken, whatever its size. */
csa_writer *csa_writer_start(const char *url, int threads, int max_rows, int max_queued, size_t max_bytes);

/* Queues an item. Returns 0, or -1 when the queue is full or the writer is stopping (the item is
 * not taken; the caller answers 503). */
int csa_writer_submit(csa_writer *w, csa_write_item *item);

/* Rows waiting plus rows being written. */
int csa_writer_pending(csa_writer *w);

/* Bytes (the items' `bytes`) waiting plus being written. */
size_t csa_writer_pending_bytes(csa_writer *w);

/* Stops accepting, writes everything queued, joins the threads and frees the writer. */
void csa_writer_stop(csa_writer *w);

#endif
