/* cursor.c: see cursor.h. */
#include "cursor.h"

#include <string.h>

void csa_cursor_encode(const char *name, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && k + 2 < out_size; p++) {
        out[k++] = digits[*p >> 4];
        out[k++] = digits[*p & 15];
    }
    out[k] = '\0';
}

int csa_cursor_decode(const char *cursor, char *name, size_t name_size)
{
    size_t n = strlen(cursor);
    if (n % 2 || n / 2 >= name_size || n == 0)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = cursor[i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        if (v == 0)
            return -1;
        name[i / 2] = (char)v;
    }
    name[n / 2] = '\0';
    return 0;
}
