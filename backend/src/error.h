/*
 * error.h: the one error enum of the server, and its single mapping to HTTP status, error_code
 * and the JSON error body {"detail", "error_code", "timestamp"} (+ "errors" for validation).
 */
#ifndef CSA_ERROR_H
#define CSA_ERROR_H

#include <jansson.h>

typedef enum csa_status {
    CSA_OK = 0,
    CSA_ERR_VALIDATION,  /* 400 VALIDATION_ERROR */
    CSA_ERR_AUTH,        /* 401 AUTHENTICATION_ERROR */
    CSA_ERR_NOT_FOUND,   /* 404 NOT_FOUND */
    CSA_ERR_FORBIDDEN,   /* 403 FORBIDDEN */
    CSA_ERR_METHOD,      /* 405 METHOD_NOT_ALLOWED */
    CSA_ERR_CONFLICT,    /* 409 CONFLICT */
    CSA_ERR_TOO_LARGE,   /* 413 PAYLOAD_TOO_LARGE */
    CSA_ERR_MEDIA_TYPE,  /* 415 UNSUPPORTED_MEDIA_TYPE */
    CSA_ERR_RATE_LIMIT,  /* 429 RATE_LIMIT_ERROR */
    CSA_ERR_INTERNAL,    /* 500 INTERNAL_ERROR */
    CSA_ERR_UNAVAILABLE, /* 503 SERVICE_UNAVAILABLE (database down, shutting down) */
} csa_status;

int csa_status_http(csa_status status);
const char *csa_status_code(csa_status status);
const char *csa_status_reason(csa_status status);

/* Builds {"detail", "error_code", "timestamp"[, "errors"]}. `errors` (may be NULL) is stolen. */
json_t *csa_error_body(csa_status status, const char *detail, json_t *errors);

/* The same error in the shape Amazon Data Firehose requires of an HTTP endpoint (its "timestamp"
 * is an integer of epoch milliseconds, so it cannot be ours): {"requestId", "timestamp",
 * "errorMessage"} plus our "error_code" and "detail" (= errorMessage) [, "errors"]. `request_id`
 * is the delivery's X-Amz-Firehose-Request-Id (may be ""); `errors` (may be NULL) is stolen. */
json_t *csa_error_body_firehose(csa_status status, const char *detail, const char *request_id, json_t *errors);

/* Milliseconds since the epoch, now (Firehose's response timestamp). */
long long csa_epoch_ms(void);

#endif
