/* lambda_api.c: see lambda_api.h. */
#include "lambda_api.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "log.h"

#define NEXT_TIMEOUT_S (7 * 24 * 3600) /* in practice none: the call blocks across freezes */
#define CONTROL_TIMEOUT_S 10

struct csa_lambda {
    struct event_base *base;
    csa_url api;
    char name[128];
    char telemetry_uri[256];
    int max_items, max_bytes, timeout_ms;
    int invoke_events;
    int telemetry_active;
    csa_lambda_handlers h;
    struct evhttp_connection *control; /* register, subscribe, errors */
    struct evhttp_connection *next;    /* the long poll */
    char id[CSA_ID_MAX];               /* Lambda-Extension-Identifier */
};

int csa_lambda_parse_event(const char *body, size_t len, csa_lambda_event *out)
{
    memset(out, 0, sizeof *out);
    json_error_t error;
    json_t *root = json_loadb(body, len, 0, &error);
    int rc = -1;
    if (!json_is_object(root))
        goto out;
    const char *type = json_string_value(json_object_get(root, "eventType"));
    json_t *deadline = json_object_get(root, "deadlineMs");
    if (json_is_integer(deadline) && json_integer_value(deadline) > 0)
        out->deadline_ms = (long long)json_integer_value(deadline);
    else if (json_is_real(deadline) && json_real_value(deadline) > 0 && json_real_value(deadline) < 1e15)
        out->deadline_ms = (long long)json_real_value(deadline);
    if (type && strcmp(type, "INVOKE") == 0) {
        json_t *rid = json_object_get(root, "requestId");
        if (!json_is_string(rid) || json_string_length(rid) >= sizeof out->request_id)
            goto out;
        memcpy(out->request_id, json_string_value(rid), json_string_length(rid) + 1);
        out->type = CSA_EVENT_INVOKE;
        rc = 0;
    } else if (type && strcmp(type, "SHUTDOWN") == 0) {
        json_t *reason = json_object_get(root, "shutdownReason");
        if (json_is_string(reason) && json_string_length(reason) < sizeof out->reason)
            memcpy(out->reason, json_string_value(reason), json_string_length(reason) + 1);
        out->type = CSA_EVENT_SHUTDOWN;
        rc = 0;
    }
out:
    json_decref(root);
    return rc;
}

csa_lambda *csa_lambda_create(struct event_base *base, const csa_lambda_config *cfg, const csa_lambda_handlers *h)
{
    csa_lambda *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    l->h = *h;
    if (csa_url_parse(cfg->runtime_api, 1, &l->api) != 0)
        goto fail;
    snprintf(l->name, sizeof l->name, "%s", cfg->name);
    if (cfg->telemetry_uri)
        snprintf(l->telemetry_uri, sizeof l->telemetry_uri, "%s", cfg->telemetry_uri);
    l->max_items = cfg->buffer_max_items;
    l->max_bytes = cfg->buffer_max_bytes;
    l->timeout_ms = cfg->buffer_timeout_ms;
    l->invoke_events = cfg->invoke_events;
    l->control = evhttp_connection_base_new(base, NULL, l->api.host, (unsigned short)l->api.port);
    l->next = evhttp_connection_base_new(base, NULL, l->api.host, (unsigned short)l->api.port);
    if (!l->control || !l->next)
        goto fail;
    evhttp_connection_set_timeout(l->control, CONTROL_TIMEOUT_S);
    evhttp_connection_set_timeout(l->next, NEXT_TIMEOUT_S);
    evhttp_connection_set_retries(l->control, 0);
    evhttp_connection_set_retries(l->next, 0);
    return l;
fail:
    csa_lambda_destroy(l);
    return NULL;
}

void csa_lambda_destroy(csa_lambda *l)
{
    if (!l)
        return;
    if (l->control)
        evhttp_connection_free(l->control);
    if (l->next)
        evhttp_connection_free(l->next);
    free(l);
}

static void on_next(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg)
{
    csa_lambda *l = arg;
    csa_lambda_event event;
    if (status != 200) {
        /* Lambda answers next only with an event; anything else means the API is gone */
        char what[64];
        snprintf(what, sizeof what, "event/next answered %d", status);
        l->h.on_fatal(what, l->h.arg);
        return;
    }
    if (csa_lambda_parse_event(body, len, &event) != 0) {
        csa_log(CSA_LOG_WARN, "unknown event, asking for the next one",
                json_pack("{s:s#}", "body", body, (int)(len > 200 ? 200 : len)));
        csa_lambda_next(l);
        return;
    }
    l->h.on_event(&event, l->h.arg);
}

void csa_lambda_next(csa_lambda *l)
{
    const char *headers[] = {"Lambda-Extension-Identifier", l->id, NULL};
    if (csa_http_request(l->next, &l->api, EVHTTP_REQ_GET, "/2020-01-01/extension/event/next", headers, NULL, 0,
                         on_next, l) != 0)
        l->h.on_fatal("cannot send event/next", l->h.arg);
}

static void on_subscribed(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg)
{
    csa_lambda *l = arg;
    if (status != 200) {
        /* Without telemetry the records still go out, just without platform figures. */
        csa_log(CSA_LOG_WARN, "telemetry subscription refused",
                json_pack("{s:i, s:s#}", "status", status, "body", body ? body : "", (int)(len > 200 ? 200 : len)));
    }
    l->telemetry_active = status == 200;
    l->h.on_ready(l->h.arg);
}

static void subscribe(csa_lambda *l)
{
    json_t *req = json_pack("{s:s, s:[s], s:{s:i, s:i, s:i}, s:{s:s, s:s}}", "schemaVersion", "2022-12-13", "types",
                            "platform", "buffering", "maxItems", l->max_items, "maxBytes", l->max_bytes, "timeoutMs",
                            l->timeout_ms, "destination", "protocol", "HTTP", "URI", l->telemetry_uri);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    const char *headers[] = {"Lambda-Extension-Identifier", l->id, NULL};
    int rc = body ? csa_http_request(l->control, &l->api, EVHTTP_REQ_PUT, "/2022-07-01/telemetry", headers, body,
                                     strlen(body), on_subscribed, l)
                  : -1;
    free(body);
    if (rc != 0)
        on_subscribed(0, NULL, 0, NULL, l);
}

static void on_registered(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg)
{
    csa_lambda *l = arg;
    const char *id = status == 200 ? evhttp_find_header(headers, "Lambda-Extension-Identifier") : NULL;
    if (!id || !*id || strlen(id) >= sizeof l->id) {
        char what[64];
        snprintf(what, sizeof what, "register answered %d%s", status, status == 200 ? " without an identifier" : "");
        l->h.on_fatal(what, l->h.arg);
        return;
    }
    strcpy(l->id, id);
    if (l->h.on_registered)
        l->h.on_registered(l->h.arg);
    if (l->telemetry_uri[0])
        subscribe(l);
    else
        l->h.on_ready(l->h.arg);
}

void csa_lambda_skip_telemetry(csa_lambda *l)
{
    l->telemetry_uri[0] = 0;
}
int csa_lambda_telemetry_active(const csa_lambda *l)
{
    return l->telemetry_active;
}

int csa_lambda_start(csa_lambda *l)
{
    const char *body = l->invoke_events ? "{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}" : "{\"events\":[\"SHUTDOWN\"]}";
    const char *headers[] = {"Lambda-Extension-Name", l->name, NULL};
    return csa_http_request(l->control, &l->api, EVHTTP_REQ_POST, "/2020-01-01/extension/register", headers, body,
                            strlen(body), on_registered, l);
}

static void on_error_reported(int status, const char *body, size_t len, struct evkeyvalq *headers, void *arg) {}

void csa_lambda_init_error(csa_lambda *l, const char *reason)
{
    char type[96];
    snprintf(type, sizeof type, "Extension.%s", reason);
    const char *headers[] = {"Lambda-Extension-Identifier", l->id, "Lambda-Extension-Function-Error-Type", type, NULL};
    static const char body[] = "{\"errorMessage\":\"coldstart extension failed to start\",\"errorType\":\"Extension\"}";
    (void)csa_http_request(l->control, &l->api, EVHTTP_REQ_POST, "/2020-01-01/extension/init/error", headers, body,
                           sizeof body - 1, on_error_reported, l);
}
