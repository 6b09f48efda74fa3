/*
 * fuzz_query.c: libFuzzer target for the request-target handling of server.c: the path and query
 * string as evhttp hands them over (evhttp_uri_parse_with_flags, as libevent 2.1 parses a request
 * line's URI), then server.c's own code: route matching with the {id} segment, query_params
 * (malformed and non-UTF-8 query strings), the cursor hex decoding, the name_prefix length count
 * and the from/to timestamps; and coldstarts.c's checks of the cold-start reads' query strings
 * (window, limit, their cursor, invocation_id), whose normalised arguments must be what the
 * queries expect.
 *
 * server.c keeps these functions static, so this file includes server.c itself (SQLite's
 * technique for testing statics) and is linked without server.o. The request is a zeroed
 * struct evhttp_request (public in event2/http_struct.h) with only uri_elems set, which is all
 * that query_params reads.
 */
#include "../src/server.c"

#include <event2/http_struct.h>
#include <stdint.h>

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
    char path_id[sizeof ((request_ctx *)0)->path_id];
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        /* an {id} route must leave a terminated id (routes without one do not touch the buffer) */
        memset(path_id, 'x', sizeof path_id);
        if (route_matches(&routes[i], path, path_id, sizeof path_id) && (routes[i].flags & ROUTE_ID) &&
            !memchr(path_id, '\0', sizeof path_id))
            abort();
    }

    struct evhttp_request req;
    memset(&req, 0, sizeof req);
    req.uri_elems = uri;
    json_t *args = query_params(&req);
    if (args) {
        const char *key;
        json_t *value;
        json_object_foreach(args, key, value)
        {
            const char *v = json_string_value(value);
            if (!v)
                abort();
            char name[1100]; /* as handle_list_functions */
            if (hex_decode(v, name, sizeof name) == 0 && strlen(name) >= sizeof name)
                abort();
            (void)utf8_chars(v);
            double epoch;
            (void)csa_parse_rfc3339(v, &epoch);
            (void)content_type_is_json(v);
        }
        for (int read = CSA_COLD_STARTS_LIST; read <= CSA_COLD_STARTS_ONE; read++) {
            json_t *copy = json_deep_copy(args);
            json_t *errors = csa_cold_starts_check_args(copy, (csa_cold_starts_read)read, 90, 1.8e9);
            if (errors && json_array_size(errors) == 0)
                abort(); /* an error list is never empty */
            if (!errors && read == CSA_COLD_STARTS_LIST) {
                json_int_t limit = json_integer_value(json_object_get(copy, "limit"));
                if (limit < 1 || limit > CSA_COLD_STARTS_PAGE_MAX || json_object_get(copy, "cursor") ||
                    !json_object_get(copy, "cursor_ts") != !json_object_get(copy, "cursor_id"))
                    abort(); /* a valid list query: a limit in range, the cursor decoded into both parts */
            }
            json_decref(errors);
            json_decref(copy);
        }
        json_decref(args);
    }
    evhttp_uri_free(uri);
    return 0;
}
