/* ui.c: see ui.h. */
#include "ui.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/*
 * The policy for every UI file. The UI is one script and one style sheet of our own: nothing
 * inline, nothing from another origin, no frames, no forms posting anywhere, data only from the
 * API on this origin. (Styles a script sets through element.style, as uPlot does, are not
 * inline styles in CSP's sense and need no 'unsafe-inline'.)
 */
#define UI_CSP \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#define UI_IMMUTABLE "public, max-age=31536000, immutable" /* /assets/: the name holds the content hash */
#define UI_REVALIDATE "no-cache"                           /* index.html: always asks, 304 when unchanged */
#define ETAG_HEX 20                                        /* digest characters in the ETag */
#define MAX_ETAG_LIST 8192 /* If-None-Match longer than this is ignored (evhttp caps headers at 16 KB) */

/* gzip copies of the compressible files, made once (pthread_once) and kept for the process */
typedef struct gz_copy {
    unsigned char *data; /* NULL when the file is not worth compressing or compression failed */
    size_t size;
} gz_copy;

static pthread_once_t gz_once = PTHREAD_ONCE_INIT;
static gz_copy *gz_copies; /* csa__ui_asset_count entries, or NULL if out of memory */

static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"map", "application/json"},
    };
    const char *ext = extension(path);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(ext, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int compressible(const char *path)
{
    const char *type = content_type(path);
    return strncmp(type, "text/", 5) == 0 || strcmp(type, "image/svg+xml") == 0 ||
           strcmp(type, "application/json") == 0;
}

/* gzip (RFC 1952, no name or time in the header) of data; NULL when it would not be smaller. */
static unsigned char *gzip_bytes(const unsigned char *data, size_t size, size_t *out_size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&z, (uLong)size) + 32;
    unsigned char *out = malloc(bound);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t n = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || n >= size) {
        free(out);
        return NULL;
    }
    *out_size = n;
    return out;
}

static void make_gz_copies(void)
{
    gz_copies = calloc(csa__ui_asset_count ? csa__ui_asset_count : 1, sizeof *gz_copies);
    if (!gz_copies)
        return;
    for (size_t i = 0; i < csa__ui_asset_count; i++) {
        const csa__ui_asset *a = &csa__ui_assets[i];
        if (compressible(a->path) && a->size > 256 && a->size < UINT32_MAX)
            gz_copies[i].data = gzip_bytes(a->data, a->size, &gz_copies[i].size);
    }
}

/* Does an Accept-Encoding value accept gzip? Tokens "gzip" or "*", unless their q is 0. */
static int accepts_gzip(const char *value)
{
    if (!value)
        return 0;
    const char *p = value;
    while (*p) {
        size_t len = strcspn(p, ",");
        char token[64];
        size_t k = 0;
        for (size_t i = 0; i < len && k < sizeof token - 1; i++)
            if (p[i] != ' ' && p[i] != '\t')
                token[k++] = p[i];
        token[k] = '\0';
        char *params = strchr(token, ';');
        if (params)
            *params++ = '\0';
        if (strcasecmp(token, "gzip") == 0 || strcmp(token, "*") == 0) {
            int zero = params && (strncasecmp(params, "q=0", 3) == 0) && strspn(params + 3, ".0") == strlen(params + 3);
            return !zero;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Does an If-None-Match value name etag (with its quotes) or "*"? Weak tags compare weakly. */
static int etag_matches(const char *value, const char *etag)
{
    if (!value || strlen(value) > MAX_ETAG_LIST)
        return 0;
    size_t etag_len = strlen(etag);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
            end--;
        const char *tag = p;
        if (end >= 2 && strncmp(tag, "W/", 2) == 0) {
            tag += 2;
            end -= 2;
        }
        if ((end == 1 && tag[0] == '*') || (end == etag_len && strncmp(tag, etag, etag_len) == 0))
            return 1;
        p += len;
    }
    return 0;
}

static const csa__ui_asset *find_asset(const char *path, size_t *index)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < csa__ui_asset_count; i++) {
        if (strcmp(csa__ui_assets[i].path, path) == 0) {
            *index = i;
            return &csa__ui_assets[i];
        }
    }
    return NULL;
}

int csa_ui_serve(struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if ((method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) || !path || strncmp(path, "/api/", 5) == 0 ||
        strcmp(path, "/api") == 0 || strncmp(path, "/health", 7) == 0)
        return 0;
    size_t index = 0;
    const csa__ui_asset *a = find_asset(path, &index);
    if (!a)
        return 0;
    pthread_once(&gz_once, make_gz_copies);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const gz_copy *gz = gz_copies && gz_copies[index].data ? &gz_copies[index] : NULL;
    if (gz && !accepts_gzip(evhttp_find_header(in, "Accept-Encoding")))
        gz = NULL;

    /* the identity and the gzip copy are different representations: different strong tags */
    char etag[ETAG_HEX + 8];
    snprintf(etag, sizeof etag, "\"%.*s%s\"", ETAG_HEX, a->sha256, gz ? "-gz" : "");
    int immutable = strncmp(a->path, "/assets/", 8) == 0;

    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", content_type(a->path));
    evhttp_add_header(out, "Cache-Control", immutable ? UI_IMMUTABLE : UI_REVALIDATE);
    evhttp_add_header(out, "ETag", etag);
    evhttp_add_header(out, "Vary", "Accept-Encoding");
    evhttp_add_header(out, "Content-Security-Policy", UI_CSP);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    evhttp_add_header(out, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(out, "Cross-Origin-Resource-Policy", "same-origin");
    if (etag_matches(evhttp_find_header(in, "If-None-Match"), etag))
        return 304;
    if (gz)
        evhttp_add_header(out, "Content-Encoding", "gzip");
    const unsigned char *body = gz ? gz->data : a->data;
    size_t size = gz ? gz->size : a->size;
    if (method == EVHTTP_REQ_HEAD) {
        char length[32];
        snprintf(length, sizeof length, "%zu", size);
        evhttp_add_header(out, "Content-Length", length);
        return 200;
    }
    /* the bytes stay where they are (static or kept for the process): no copy per request */
    if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), body, size, NULL, NULL) != 0) {
        evhttp_clear_headers(out); /* out of memory: answered as an unknown path */
        return 0;
    }
    return 200;
}
