/*
 * ui.h: the web UI's static files (ui/, built into ui/dist), served at / by coldstartd. It looks a
 * request path up in a table of files embedded in the binary at build time and fills in the
 * response: Content-Type, a strict Content-Security-Policy, ETag, gzip when the client takes it,
 * and Cache-Control: content-hashed files under /assets/ are immutable for a year, index.html is
 * "no-cache" (revalidated every time, so a new binary's UI is seen at once).
 *
 * Embedded, not installed beside the binary: the UI is about 85 KB (36 KB gzipped), and one file
 * to copy (the Dockerfile's runtime stage, a package, scp) cannot pair a server with another
 * version's UI, needs no UI_DIR setting that can point at the wrong folder, and cannot fail at run
 * time on a missing or unreadable file. A UI change needs a rebuild, which a server change needs
 * anyway.
 * The files hold no data: every figure the UI shows comes from the JSON API with the user's key,
 * so serving them needs no key.
 */
#ifndef CSA_UI_H
#define CSA_UI_H

#include <stddef.h>

struct evhttp_request;

/*
 * Answers a GET or HEAD of one of the UI's paths ("/", "/index.html", "/assets/..."): adds the
 * headers (and for GET the body) to req's output and returns the HTTP status to send with them,
 * 200, or 304 when If-None-Match names the file's current ETag. The caller sends the reply
 * (evhttp_send_reply with no further body), so that every response goes through its one path.
 * Returns 0 and touches nothing for anything else (another method, /api/..., /health..., a file
 * that does not exist): the caller answers that as it answers any unknown path.
 * Thread-safe; the embedded files are read-only, their gzip copies made once, on first use.
 */
int csa_ui_serve(struct evhttp_request *req, const char *path);

/* ---- shared with the generated table (build/ui_assets.c, from backend/cmake/embed-ui.cmake) ---- */

typedef struct csa__ui_asset {
    const char *path;          /* URL path: "/index.html", "/assets/app-3F2K9Q1A.js" */
    const unsigned char *data; /* the file's bytes */
    size_t size;
    const char *sha256; /* hex digest of the bytes: the ETag */
} csa__ui_asset;

extern const csa__ui_asset csa__ui_assets[];
extern const size_t csa__ui_asset_count;

#endif
