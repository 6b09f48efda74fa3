/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile csa_log_level g_level = CSA_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void csa_log_set_level(csa_log_level level) { g_level = level; }

int csa_log_enabled(csa_log_level level) { return level >= g_level; }

int csa_log_parse_level(const char *s, csa_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (csa_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = CSA_LOG_WARN;
        return 0;
    }
    return -1;
}

void csa_format_now(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* strftime and fixed-width digits: no format whose length the compiler must guess at */
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000u;
    if (n == 0 || n + 6 > size)
        return;
    buf[n++] = '.';
    buf[n++] = (char)('0' + ms / 100);
    buf[n++] = (char)('0' + ms / 10 % 10);
    buf[n++] = (char)('0' + ms % 10);
    buf[n++] = 'Z';
    buf[n] = '\0';
}

void csa_log(csa_log_level level, const char *msg, json_t *fields)
{
    if (!csa_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    char ts[40];
    csa_format_now(ts, sizeof ts);
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "msg", json_string(msg ? msg : ""));
    if (fields)
        json_object_update(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t n = strlen(text);
    char stackbuf[2048];
    char *out = n + 2 <= sizeof stackbuf ? stackbuf : NULL;
    if (out) {
        memcpy(out, text, n);
        out[n] = '\n';
        ssize_t w = write(STDERR_FILENO, out, n + 1);
        (void)w;
    } else {
        ssize_t w = write(STDERR_FILENO, text, n);
        ssize_t w_newline = write(STDERR_FILENO, "\n", 1);
        (void)w;
        (void)w_newline;
    }
    free(text);
}

void csa_logf(csa_log_level level, const char *fmt, ...)
{
    if (!csa_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    csa_log(level, msg, NULL);
}
