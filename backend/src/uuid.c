/* uuid.c: see uuid.h. */
#include "uuid.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void csa_uuid_format(unsigned char b[16], unsigned version, char out[CSA_UUID_SIZE])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | ((version & 0x0f) << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, CSA_UUID_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void csa_uuid_random(char out[CSA_UUID_SIZE])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    csa_uuid_format(b, 4, out);
}

int csa_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}
