/*
 * ratelimit.h: per-API-key request limits, one fixed window per key and class.
 *
 * Policy (the spec's): 10,000 ingest requests per minute per key (a batch counts as one) and 100
 * query requests per minute per key; both limits and the window length are settings. A window
 * starts with a key's first request in it and lasts `window` seconds; when the count passes the
 * limit the request is refused until the window ends (Retry-After = seconds left).
 * State is per server process: with N replicas behind a load balancer each enforces the limit on
 * its own share of the traffic, so a key can reach up to N x the limit in total.
 * Per project too (issue 19): every request of a key also counts against its project's window,
 * with limits of their own (RATE_LIMIT_PROJECT_INGEST / _QUERY), so minting more keys buys no
 * more budget. A request is allowed only when both windows have room, and then counts in both;
 * the headers report whichever of the two has less left.
 * Memory is bounded: the table holds at most `capacity` keys and is cleared when full (a cleared
 * key starts a fresh window, which errs on the side of serving).
 */
#ifndef CSA_RATELIMIT_H
#define CSA_RATELIMIT_H

#include <time.h>

typedef enum { CSA_RATE_INGEST = 0, CSA_RATE_QUERY = 1 } csa_rate_class;

typedef struct csa_rate_result {
    int allowed;    /* 1 if the request may go on */
    long limit;     /* X-RateLimit-Limit */
    long remaining; /* X-RateLimit-Remaining (after this request) */
    long reset_s;   /* X-RateLimit-Reset: seconds until the window ends (also Retry-After) */
} csa_rate_result;

typedef struct csa_ratelimit csa_ratelimit;

csa_ratelimit *csa_ratelimit_create(long ingest_limit, long query_limit, int window_s, int capacity);
void csa_ratelimit_destroy(csa_ratelimit *rl);

/* Sets the per-project limits (0 = no project limit, the default after create). */
void csa_ratelimit_set_project_limits(csa_ratelimit *rl, long ingest_limit, long query_limit);

/* Counts one request of `cls` for key key_id of project project_id (a UUID) at time now, against
 * both the key's and the project's window; says whether it is allowed. Thread-safe. */
csa_rate_result csa_ratelimit_hit_key(csa_ratelimit *rl, const char *key_id, const char *project_id, csa_rate_class cls,
                                      time_t now);

/* Counts one request of `cls` for the key identified by key_id (any stable string, e.g. the
 * key's hash) at time now, and says whether it is allowed. Thread-safe. */
csa_rate_result csa_ratelimit_hit(csa_ratelimit *rl, const char *key_id, csa_rate_class cls, time_t now);

#endif
