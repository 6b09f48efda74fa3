/* executor.c: see executor.h. */
#include "executor.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    csa_job_fn run, done;
    void *arg;
    struct job *next;
} job;

struct csa_executor {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail;
    int queued, max_queued;
    int stopping;
    int nthreads;
    pthread_t *threads;
};

static void *executor_main(void *arg)
{
    csa_executor *ex = arg;
    for (;;) {
        pthread_mutex_lock(&ex->lock);
        while (!ex->head && !ex->stopping)
            pthread_cond_wait(&ex->wake, &ex->lock);
        job *j = ex->head;
        if (!j) {
            pthread_mutex_unlock(&ex->lock);
            return NULL;
        }
        ex->head = j->next;
        if (!ex->head)
            ex->tail = NULL;
        ex->queued--;
        pthread_mutex_unlock(&ex->lock);
        j->run(j->arg);
        j->done(j->arg);
        free(j);
    }
}

csa_executor *csa_executor_start(int threads, int max_queued)
{
    csa_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->wake, NULL);
    ex->max_queued = max_queued;
    ex->threads = calloc((size_t)threads, sizeof *ex->threads);
    for (int i = 0; ex->threads && i < threads; i++) {
        if (pthread_create(&ex->threads[i], NULL, executor_main, ex) != 0)
            break;
        ex->nthreads++;
    }
    if (ex->nthreads == 0) {
        csa_executor_stop(ex);
        return NULL;
    }
    return ex;
}

int csa_executor_submit(csa_executor *ex, csa_job_fn run, csa_job_fn done, void *arg)
{
    job *j = malloc(sizeof *j);
    if (!j)
        return -1;
    j->run = run;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&ex->lock);
    if (ex->stopping || ex->queued >= ex->max_queued) {
        pthread_mutex_unlock(&ex->lock);
        free(j);
        return -1;
    }
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    ex->queued++;
    pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

void csa_executor_stop(csa_executor *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->lock);
    ex->stopping = 1;
    pthread_cond_broadcast(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    for (int i = 0; i < ex->nthreads; i++)
        pthread_join(ex->threads[i], NULL);
    pthread_mutex_destroy(&ex->lock);
    pthread_cond_destroy(&ex->wake);
    free(ex->threads);
    free(ex);
}
