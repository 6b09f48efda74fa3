/*
 * authfail.h: the per-address limit on failed authentications (issue 19).
 *
 * Every request refused for its key (missing, malformed, unknown, revoked) counts one failure
 * against its client address in a fixed window (AUTH_FAIL_WINDOW seconds). Once an address has
 * AUTH_FAIL_LIMIT failures in its window it is blocked until the window ends: its requests whose
 * key is not already known valid are answered 429 at once, with no key lookup and before any body
 * is read. A valid cached key is never blocked (a client sharing a NAT with an attacker keeps
 * working).
 *
 * Memory is fixed: `capacity` entries in sets of 4; a new address takes an empty or expired entry
 * of its set, else the entry with the fewest failures (an attacker with many addresses can make
 * the table forget a blocked address early, never grow it). Thread-safe.
 */
#ifndef CSA_AUTHFAIL_H
#define CSA_AUTHFAIL_H

#include <time.h>

#define CSA_ADDR_MAX 64 /* an IPv6 literal with a zone fits */

typedef struct csa_authfail csa_authfail;

/* At most `limit` failures per `window_s` seconds per address; `capacity` rounded up to a power
 * of two, at least 64. Freed with csa_authfail_destroy. */
csa_authfail *csa_authfail_create(int limit, int window_s, int capacity);
void csa_authfail_destroy(csa_authfail *af);

/* 1 if `addr` is blocked at `now` (then *retry_s = seconds until its window ends), else 0. */
int csa_authfail_blocked(csa_authfail *af, const char *addr, time_t now, long *retry_s);

/* Counts one failed authentication of `addr` at `now`. */
void csa_authfail_record(csa_authfail *af, const char *addr, time_t now);

#endif
