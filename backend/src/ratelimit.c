/* ratelimit.c: see ratelimit.h. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ID_MAX 72

typedef struct window {
    char key_id[KEY_ID_MAX]; /* empty = free slot */
    time_t start[2];         /* window start per class */
    long count[2];           /* requests in the window per class */
} window;

struct csa_ratelimit {
    pthread_mutex_t lock;
    long limit[2];
    long project_limit[2]; /* 0 = none */
    int window_s;
    int capacity; /* power of two */
    int used;
    window *slots;
};

csa_ratelimit *csa_ratelimit_create(long ingest_limit, long query_limit, int window_s, int capacity)
{
    csa_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    int cap = 64;
    while (cap < capacity)
        cap <<= 1;
    rl->slots = calloc((size_t)cap, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    rl->capacity = cap;
    rl->limit[CSA_RATE_INGEST] = ingest_limit;
    rl->limit[CSA_RATE_QUERY] = query_limit;
    rl->window_s = window_s;
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void csa_ratelimit_destroy(csa_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void csa_ratelimit_set_project_limits(csa_ratelimit *rl, long ingest_limit, long query_limit)
{
    rl->project_limit[CSA_RATE_INGEST] = ingest_limit;
    rl->project_limit[CSA_RATE_QUERY] = query_limit;
}

static window *find(csa_ratelimit *rl, const char *key_id)
{
    uint32_t mask = (uint32_t)rl->capacity - 1;
    for (uint32_t i = hash_str(key_id) & mask;; i = (i + 1) & mask) {
        window *w = &rl->slots[i];
        if (w->key_id[0] == '\0' || strcmp(w->key_id, key_id) == 0)
            return w;
    }
}

/* The window of `id`, created (and its class's count reset when its window ended). Caller holds
 * the lock. */
static window *window_of(csa_ratelimit *rl, const char *id, csa_rate_class cls, time_t now)
{
    window *w = find(rl, id);
    if (w->key_id[0] == '\0') {
        if (rl->used + 1 > rl->capacity / 2) {
            memset(rl->slots, 0, sizeof *rl->slots * (size_t)rl->capacity);
            rl->used = 0;
            w = find(rl, id);
        }
        rl->used++;
        strncpy(w->key_id, id, KEY_ID_MAX - 1);
    }
    if (w->count[cls] == 0 || now - w->start[cls] >= rl->window_s) {
        w->start[cls] = now;
        w->count[cls] = 0;
    }
    return w;
}

/* What the headers say about window w with `limit`, if this request were counted. */
static csa_rate_result result_of(const csa_ratelimit *rl, const window *w, csa_rate_class cls, long limit, time_t now)
{
    csa_rate_result r = {w->count[cls] < limit, limit, 0, (long)(w->start[cls] + rl->window_s - now)};
    if (r.reset_s < 1)
        r.reset_s = 1;
    r.remaining = r.allowed ? limit - w->count[cls] - 1 : 0;
    return r;
}

csa_rate_result csa_ratelimit_hit_key(csa_ratelimit *rl, const char *key_id, const char *project_id, csa_rate_class cls,
                                      time_t now)
{
    char pid[KEY_ID_MAX];
    snprintf(pid, sizeof pid, "project:%s", project_id);
    pthread_mutex_lock(&rl->lock);
    window *k = window_of(rl, key_id, cls, now);
    csa_rate_result r = result_of(rl, k, cls, rl->limit[cls], now);
    if (rl->project_limit[cls] > 0) {
        window *p = window_of(rl, pid, cls, now);
        k = find(rl, key_id); /* creating p may have cleared the table */
        if (k->key_id[0] == '\0')
            k = window_of(rl, key_id, cls, now);
        csa_rate_result pr = result_of(rl, p, cls, rl->project_limit[cls], now);
        if (!pr.allowed || (r.allowed && pr.remaining < r.remaining))
            r = pr;
        if (r.allowed)
            p->count[cls]++;
    }
    if (r.allowed)
        k->count[cls]++;
    pthread_mutex_unlock(&rl->lock);
    return r;
}

csa_rate_result csa_ratelimit_hit(csa_ratelimit *rl, const char *key_id, csa_rate_class cls, time_t now)
{
    pthread_mutex_lock(&rl->lock);
    window *w = window_of(rl, key_id, cls, now);
    csa_rate_result r = result_of(rl, w, cls, rl->limit[cls], now);
    if (r.allowed)
        w->count[cls]++;
    pthread_mutex_unlock(&rl->lock);
    return r;
}
