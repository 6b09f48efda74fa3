/*
 * fuzz_query.c: libFuzzer target for the request-target handling of the HTTP server: the path
 * and query string as evhttp hands them over (evhttp_uri_parse_with_flags, as libevent 2.1 parses
 * a request line's URI), then our own code: route matching with the {id} segment (routes.c),
 * csa__query_params (malformed and non-UTF-8 query strings, dispatch.c), every route's query
 * rules (validate.c: integers, cursors, date-times, tokens, ids) and the cursor codec (cursor.c);
 * the cold-start list's normalised arguments must be what its query expects (coldstarts.h), and
 * its window check (csa_validate_window) must hold on them.
 *
 * The request is a zeroed struct evhttp_request (public in event2/http_struct.h) with only
 * uri_elems set, which is all that csa__query_params reads.
 */
#include "../src/coldstarts.h"
#include "../src/cursor.h"
#include "../src/server_internal.h"

#include <event2/http_struct.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = malloc(size + 1);
    if (!target)
        return 0;
    memcpy(target, data, size);
    target[size] = '\0';

    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
    free(target);
    if (!uri)
        return 0; /* evhttp answers 400 itself */

    const char *path = evhttp_uri_get_path(uri);
    if (!path || !*path)
        path = "/";
    char path_id[sizeof ((csa__request *)0)->path_id];
    for (size_t i = 0; i < csa__nroutes; i++) {
        /* an {id} route must leave a terminated id (routes without one do not touch the buffer) */
        memset(path_id, 'x', sizeof path_id);
        if (csa__route_matches(&csa__routes[i], path, path_id, sizeof path_id) && strstr(csa__routes[i].path, "{id}") &&
            !memchr(path_id, '\0', sizeof path_id))
            abort();
    }

    struct evhttp_request req;
    memset(&req, 0, sizeof req);
    req.uri_elems = uri;
    json_t *args = csa__query_params(&req);
    if (args) {
        const char *key;
        json_t *value;
        json_object_foreach(args, key, value)
        {
            const char *v = json_string_value(value);
            if (!v)
                abort();
            char name[CSA_CURSOR_NAME_MAX];
            if (csa_cursor_decode(v, name, sizeof name) == 0) {
                if (strlen(name) >= sizeof name)
                    abort();
                char again[CSA_CURSOR_MAX]; /* the codec round-trips */
                csa_cursor_encode(name, again, sizeof again);
                if (strcmp(again, v) != 0)
                    abort();
            }
        }
        for (size_t i = 0; i < csa__nroutes; i++) {
            if (!csa__routes[i].query)
                continue;
            json_t *errors = json_array();
            json_t *normalised = csa_validate_params(csa__routes[i].query, "query", args, errors);
            if (!normalised == !json_array_size(errors)) /* exactly one of the two */
                abort();
            json_decref(normalised);
            json_decref(errors);
        }
        json_t *errors = json_array();
        json_t *list = csa_validate_params(CSA_QUERY_COLD_STARTS, "query", args, errors);
        if (list) {
            json_int_t limit = json_integer_value(json_object_get(list, "limit"));
            json_t *cursor = json_object_get(list, "cursor");
            if (limit < 1 || limit > CSA_COLD_STARTS_PAGE_MAX ||
                (cursor && (json_array_size(cursor) != 2 || !json_is_string(json_array_get(cursor, 0)) ||
                            !json_is_string(json_array_get(cursor, 1)))))
                abort(); /* a valid list query: a limit in range, the cursor decoded into both parts */
            for (int ordered = 0; ordered <= 1; ordered++) {
                json_t *window = csa_validate_window(list, 90, 1.8e9, ordered);
                if (window && json_array_size(window) != 1)
                    abort(); /* a window is refused with one error */
                json_decref(window);
            }
            json_decref(list);
        }
        json_decref(errors);
        json_decref(args);
    }
    evhttp_uri_free(uri);
    return 0;
}
