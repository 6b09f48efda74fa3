/*
 * log.h: structured one-line logs on stderr.
 *
 * Each line is one JSON object: {"ts","level","msg", ...fields}. Lines are written with a single
 * write(2) so concurrent threads never interleave. Callers must never pass secrets (API keys,
 * passwords): nothing here redacts them.
 */
#ifndef CSA_LOG_H
#define CSA_LOG_H

#include <jansson.h>

typedef enum { CSA_LOG_DEBUG = 0, CSA_LOG_INFO, CSA_LOG_WARN, CSA_LOG_ERROR } csa_log_level;

void csa_log_set_level(csa_log_level level);
int csa_log_enabled(csa_log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 and stores the level, or -1. */
int csa_log_parse_level(const char *s, csa_log_level *out);

/* Logs msg with extra fields; `fields` (may be NULL) is stolen (decref'd by the call). */
void csa_log(csa_log_level level, const char *msg, json_t *fields);
/* printf-style message without fields. */
void csa_logf(csa_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes an RFC 3339 UTC timestamp with milliseconds ("2026-01-02T10:30:00.123Z") into buf (>= 32). */
void csa_format_now(char *buf, size_t size);

#endif
