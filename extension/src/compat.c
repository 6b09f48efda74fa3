/*
 * compat.c: arc4random and arc4random_buf for glibc older than 2.36.
 *
 * Only matters for a dynamically linked build (CSA_STATIC_EXE=OFF): the layer's static binary
 * carries its own glibc.
 *
 * Debian 12's libevent.a calls them (evutil_secure_rng), which would make the binary need glibc
 * 2.36, while Lambda's Amazon Linux 2023 has 2.34. Linked into the executable itself, these
 * definitions win over libc's, so the layer runs on AL2023. getrandom(2) exists since glibc 2.25.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

void arc4random_buf(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0)
            continue; /* EINTR; the kernel pool is initialised long before Lambda starts us */
        p += got;
        n -= (size_t)got;
    }
}

uint32_t arc4random(void)
{
    uint32_t v;
    arc4random_buf(&v, sizeof v);
    return v;
}
