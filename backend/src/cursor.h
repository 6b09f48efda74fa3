/*
 * cursor.h: the codec of the API's opaque page cursors. A cursor is the key of the last listed
 * row, hex-encoded (lowercase), so that it survives a query string without escaping and is never
 * mistaken for a name: GET /api/v1/functions' is the function's name, its /cold-starts'
 * "<timestamp>|<invocation_id>" (coldstarts.h). Decoding refuses anything encode cannot have
 * produced.
 */
#ifndef CSA_CURSOR_H
#define CSA_CURSOR_H

#include <stddef.h>

/* Bytes a decoded cursor may need: a function name or invocation id of 255 characters is at most
 * 1020 bytes (and a cold start's timestamp about 30 more). */
#define CSA_CURSOR_NAME_MAX 1100
/* Bytes an encoded cursor may need (two hex digits per byte of a name, and the NUL). */
#define CSA_CURSOR_MAX (2 * CSA_CURSOR_NAME_MAX)

/* Encodes name into out (out_size bytes, always NUL-terminated; a name too long is cut). */
void csa_cursor_encode(const char *name, char *out, size_t out_size);

/* Decodes cursor into name (name_size bytes). Returns 0, or -1 when the cursor is empty, not an
 * even number of lowercase hex digits, holds a NUL byte or does not fit. */
int csa_cursor_decode(const char *cursor, char *name, size_t name_size);

#endif
