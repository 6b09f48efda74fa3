/* ratelimit.c: see ratelimit.h. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
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

static window *find(csa_ratelimit *rl, const char *key_id)
{
    uint32_t mask = (uint32_t)rl->capacity - 1;
    for (uint32_t i = hash_str(key_id) & mask;; i = (i + 1) & mask) {
        window *w = &rl->slots[i];
        if (w->key_id[0] == '\0' || strcmp(w->key_id, key_id) == 0)
            return w;
    }
}

csa_rate_result csa_ratelimit_hit(csa_ratelimit *rl, const char *key_id, csa_rate_class cls, time_t now)
{
    csa_rate_result r = {1, rl->limit[cls], 0, rl->window_s};
    pthread_mutex_lock(&rl->lock);
    window *w = find(rl, key_id);
    if (w->key_id[0] == '\0') {
        if (rl->used + 1 > rl->capacity / 2) {
            memset(rl->slots, 0, sizeof *rl->slots * (size_t)rl->capacity);
            rl->used = 0;
            w = find(rl, key_id);
        }
        rl->used++;
        strncpy(w->key_id, key_id, KEY_ID_MAX - 1);
    }
    if (w->count[cls] == 0 || now - w->start[cls] >= rl->window_s) {
        w->start[cls] = now;
        w->count[cls] = 0;
    }
    r.reset_s = (long)(w->start[cls] + rl->window_s - now);
    if (r.reset_s < 1)
        r.reset_s = 1;
    if (w->count[cls] >= rl->limit[cls]) {
        r.allowed = 0;
        r.remaining = 0;
    } else {
        w->count[cls]++;
        r.remaining = rl->limit[cls] - w->count[cls];
    }
    pthread_mutex_unlock(&rl->lock);
    return r;
}
