/*
 * executor.h: a small pool of threads for blocking work (database queries of the read API), so
 * that a slow query never stalls an event loop that is also serving ingest.
 * Jobs run in submission order; `run` and then `done` are called on a pool thread.
 */
#ifndef CSA_EXECUTOR_H
#define CSA_EXECUTOR_H

typedef struct csa_executor csa_executor;
typedef void (*csa_job_fn)(void *arg);

csa_executor *csa_executor_start(int threads, int max_queued);

/* Queues run(arg) followed by done(arg). Returns 0, or -1 when the queue is full or the executor
 * is stopping (nothing will be called). */
int csa_executor_submit(csa_executor *ex, csa_job_fn run, csa_job_fn done, void *arg);

/* Runs what is queued, joins the threads, frees the executor. */
void csa_executor_stop(csa_executor *ex);

#endif
