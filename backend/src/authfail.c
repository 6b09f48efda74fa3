/* authfail.c: see authfail.h. */
#include "authfail.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4 /* entries per set */

typedef struct entry {
    char addr[CSA_ADDR_MAX]; /* "" = empty */
    time_t start;            /* the window's start */
    long failures;           /* in that window */
} entry;

struct csa_authfail {
    pthread_mutex_t lock;
    long limit;
    int window_s;
    uint32_t sets;  /* power of two */
    entry *entries; /* sets * WAYS */
};

csa_authfail *csa_authfail_create(int limit, int window_s, int capacity)
{
    csa_authfail *af = calloc(1, sizeof *af);
    if (!af)
        return NULL;
    uint32_t cap = 64;
    while (cap < (uint32_t)capacity && cap < (1u << 24))
        cap <<= 1;
    af->sets = cap / WAYS;
    af->entries = calloc(cap, sizeof *af->entries);
    if (!af->entries) {
        free(af);
        return NULL;
    }
    af->limit = limit;
    af->window_s = window_s;
    pthread_mutex_init(&af->lock, NULL);
    return af;
}

void csa_authfail_destroy(csa_authfail *af)
{
    if (!af)
        return;
    pthread_mutex_destroy(&af->lock);
    free(af->entries);
    free(af);
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The entry of addr, or NULL when it has none. Caller holds the lock. */
static entry *find(csa_authfail *af, const char *addr)
{
    entry *set = &af->entries[(hash_str(addr) & (af->sets - 1)) * WAYS];
    for (int i = 0; i < WAYS; i++)
        if (strcmp(set[i].addr, addr) == 0)
            return &set[i];
    return NULL;
}

int csa_authfail_blocked(csa_authfail *af, const char *addr, time_t now, long *retry_s)
{
    if (!addr || !*addr)
        return 0;
    pthread_mutex_lock(&af->lock);
    entry *e = find(af, addr);
    int blocked = e && now - e->start < af->window_s && e->failures >= af->limit;
    if (blocked && retry_s) {
        *retry_s = (long)(e->start + af->window_s - now);
        if (*retry_s < 1)
            *retry_s = 1;
    }
    pthread_mutex_unlock(&af->lock);
    return blocked;
}

void csa_authfail_record(csa_authfail *af, const char *addr, time_t now)
{
    if (!addr || !*addr || strlen(addr) >= CSA_ADDR_MAX)
        return;
    pthread_mutex_lock(&af->lock);
    entry *e = find(af, addr);
    if (!e) {
        entry *set = &af->entries[(hash_str(addr) & (af->sets - 1)) * WAYS];
        e = &set[0];
        for (int i = 0; i < WAYS; i++) {
            entry *c = &set[i];
            int free_slot = !c->addr[0] || now - c->start >= af->window_s;
            if (free_slot) {
                e = c;
                break;
            }
            if (c->failures < e->failures)
                e = c;
        }
        strcpy(e->addr, addr); /* length checked above */
        e->failures = 0;
        e->start = now;
    }
    if (now - e->start >= af->window_s) {
        e->start = now;
        e->failures = 0;
    }
    e->failures++;
    pthread_mutex_unlock(&af->lock);
}
