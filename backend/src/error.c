/* error.c: see error.h. */
#include "error.h"

#include "log.h"

#include <time.h>

static const struct {
    int http;
    const char *code;
    const char *reason;
} table[] = {
    [CSA_OK] = {200, "OK", "OK"},
    [CSA_ERR_VALIDATION] = {400, "VALIDATION_ERROR", "Bad Request"},
    [CSA_ERR_AUTH] = {401, "AUTHENTICATION_ERROR", "Unauthorized"},
    [CSA_ERR_NOT_FOUND] = {404, "NOT_FOUND", "Not Found"},
    [CSA_ERR_FORBIDDEN] = {403, "FORBIDDEN", "Forbidden"},
    [CSA_ERR_CONFLICT] = {409, "CONFLICT", "Conflict"},
    [CSA_ERR_METHOD] = {405, "METHOD_NOT_ALLOWED", "Method Not Allowed"},
    [CSA_ERR_TOO_LARGE] = {413, "PAYLOAD_TOO_LARGE", "Payload Too Large"},
    [CSA_ERR_MEDIA_TYPE] = {415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type"},
    [CSA_ERR_RATE_LIMIT] = {429, "RATE_LIMIT_ERROR", "Too Many Requests"},
    [CSA_ERR_INTERNAL] = {500, "INTERNAL_ERROR", "Internal Server Error"},
    [CSA_ERR_UNAVAILABLE] = {503, "SERVICE_UNAVAILABLE", "Service Unavailable"},
};

int csa_status_http(csa_status status) { return table[status].http; }
const char *csa_status_code(csa_status status) { return table[status].code; }
const char *csa_status_reason(csa_status status) { return table[status].reason; }

json_t *csa_error_body(csa_status status, const char *detail, json_t *errors)
{
    char ts[40];
    csa_format_now(ts, sizeof ts);
    json_t *body = json_object();
    json_object_set_new(body, "detail", json_string(detail));
    json_object_set_new(body, "error_code", json_string(table[status].code));
    json_object_set_new(body, "timestamp", json_string(ts));
    if (errors)
        json_object_set_new(body, "errors", errors);
    return body;
}

long long csa_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *csa_error_body_firehose(csa_status status, const char *detail, const char *request_id, json_t *errors)
{
    json_t *body = json_object();
    json_object_set_new(body, "requestId", json_string(request_id ? request_id : ""));
    json_object_set_new(body, "timestamp", json_integer(csa_epoch_ms()));
    json_object_set_new(body, "errorMessage", json_string(detail));
    json_object_set_new(body, "error_code", json_string(table[status].code));
    json_object_set_new(body, "detail", json_string(detail));
    if (errors)
        json_object_set_new(body, "errors", errors);
    return body;
}
