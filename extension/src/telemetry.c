/* telemetry.c: see telemetry.h. */
#include "telemetry.h"

#include <jansson.h>
#include <stddef.h>
#include <string.h>

_Static_assert(offsetof(csa_platform, reports) < offsetof(csa_platform, next) &&
                   offsetof(csa_platform, id_hashes) < offsetof(csa_platform, next) &&
                   offsetof(csa_platform, starts) < offsetof(csa_platform, next),
               "the ring precedes what _init clears");

void csa_platform_init(csa_platform *p)
{
    /* everything but the rings (~130 KiB): only its first `count` slots are ever read, and pages
     * never written cost no memory */
    memset((char *)p + offsetof(csa_platform, next), 0, sizeof *p - offsetof(csa_platform, next));
    p->init.init_report_ms = CSA_ABSENT;
    p->init.restore_report_ms = CSA_ABSENT;
}

unsigned csa_id_hash(const char *id)
{
    unsigned h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

/* A finite, non-negative number under a sane bound, else CSA_ABSENT. */
static double number(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return CSA_ABSENT;
    double d = json_number_value(v);
    return d >= 0 && d < 1e9 ? d : CSA_ABSENT;
}

/* Copies a string into dst (size n); returns 0, or -1 when absent, not a string, empty or too long. */
static int copy_string_value(json_t *v, char *dst, size_t n)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= n)
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* The same for a field of obj. */
static int copy_string(json_t *obj, const char *key, char *dst, size_t n)
{
    return copy_string_value(json_object_get(obj, key), dst, n);
}

/* Remembers when a request started (platform.start); the report takes the time with it. */
static void on_start(csa_platform *p, json_t *record, json_t *time)
{
    csa_start *s = &p->starts[p->starts_next];
    if (copy_string(record, "requestId", s->request_id, sizeof s->request_id) != 0 ||
        copy_string_value(time, s->time, sizeof s->time) != 0)
        return;
    s->hash = csa_id_hash(s->request_id);
    p->starts_next = (p->starts_next + 1) % CSA_STARTS_MAX;
    if (p->starts_count < CSA_STARTS_MAX)
        p->starts_count++;
}

/* The time of request_id's platform.start into dst (CSA_TIME_MAX bytes); 0, or -1 when not seen. */
static int start_time(const csa_platform *p, const char *request_id, char *dst)
{
    unsigned hash = csa_id_hash(request_id);
    for (size_t k = 0; k < p->starts_count; k++) {
        const csa_start *s = &p->starts[(p->starts_next + CSA_STARTS_MAX - 1 - k) % CSA_STARTS_MAX];
        if (s->hash == hash && strcmp(s->request_id, request_id) == 0) {
            memcpy(dst, s->time, sizeof s->time);
            return 0;
        }
    }
    return -1;
}

static int on_report(csa_platform *p, json_t *record, json_t *time)
{
    csa_report r;
    memset(&r, 0, sizeof r);
    if (copy_string(record, "requestId", r.request_id, sizeof r.request_id) != 0)
        return -1;
    json_t *metrics = json_object_get(record, "metrics");
    if (!json_is_object(metrics))
        return -1;
    (void)copy_string(record, "status", r.status, sizeof r.status);
    r.duration_ms = number(metrics, "durationMs");
    r.billed_duration_ms = number(metrics, "billedDurationMs");
    r.memory_size_mb = number(metrics, "memorySizeMB");
    r.max_memory_used_mb = number(metrics, "maxMemoryUsedMB");
    r.init_duration_ms = number(metrics, "initDurationMs");
    r.restore_duration_ms = number(metrics, "restoreDurationMs");
    if (start_time(p, r.request_id, r.start_time) != 0)
        (void)copy_string_value(time, r.start_time, sizeof r.start_time);
    p->id_hashes[p->next] = csa_id_hash(r.request_id);
    p->reports[p->next] = r;
    p->next = (p->next + 1) % CSA_REPORTS_MAX;
    if (p->count < CSA_REPORTS_MAX)
        p->count++;
    p->stats.reports++;
    return 0;
}

/* Applies one event; returns 0 when understood (or a type we do not use), -1 when malformed. */
static int apply_event(csa_platform *p, json_t *event)
{
    json_t *type = json_object_get(event, "type");
    json_t *record = json_object_get(event, "record");
    if (!json_is_string(type))
        return -1;
    const char *t = json_string_value(type);
    if (strncmp(t, "platform.", 9) != 0)
        return 0; /* function/extension logs: not subscribed, ignored if sent anyway */
    t += 9;
    json_t *time = json_object_get(event, "time");
    if (strcmp(t, "report") == 0)
        return json_is_object(record) ? on_report(p, record, time) : -1;
    if (strcmp(t, "start") == 0) {
        p->stats.starts++;
        if (json_is_object(record))
            on_start(p, record, time);
    }
    if (!json_is_object(record))
        return strcmp(t, "initStart") == 0 || strcmp(t, "initReport") == 0 ? -1 : 0;
    if (strcmp(t, "initStart") == 0) {
        (void)copy_string(record, "initializationType", p->init.type, sizeof p->init.type);
        (void)copy_string(record, "phase", p->init.phase, sizeof p->init.phase);
    } else if (strcmp(t, "initReport") == 0) {
        (void)copy_string(record, "initializationType", p->init.type, sizeof p->init.type);
        (void)copy_string(record, "phase", p->init.phase, sizeof p->init.phase);
        (void)copy_string(record, "status", p->init.status, sizeof p->init.status);
        json_t *metrics = json_object_get(record, "metrics");
        if (json_is_object(metrics))
            p->init.init_report_ms = number(metrics, "durationMs");
    } else if (strcmp(t, "restoreReport") == 0) {
        json_t *metrics = json_object_get(record, "metrics");
        if (json_is_object(metrics))
            p->init.restore_report_ms = number(metrics, "durationMs");
        if (!p->init.type[0])
            memcpy(p->init.type, "snap-start", sizeof "snap-start");
    } else if (strcmp(t, "restoreStart") == 0) {
        memcpy(p->init.type, "snap-start", sizeof "snap-start");
    }
    return 0;
}

int csa_telemetry_ingest(csa_platform *p, const char *body, size_t len)
{
    json_error_t error;
    json_t *events = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_array(events)) {
        json_decref(events);
        p->stats.malformed++;
        return -1;
    }
    int accepted = 0;
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event)
    {
        if (json_is_object(event) && apply_event(p, event) == 0) {
            accepted++;
            p->stats.events++;
        } else {
            p->stats.malformed++;
        }
    }
    json_decref(events);
    return accepted;
}

csa_report *csa_platform_find(csa_platform *p, const char *request_id)
{
    /* newest first: a retried request id (rare) takes the latest figures. Every record waiting for
     * its report scans the whole ring at each settle: hashes first, strcmp only on a match. */
    unsigned hash = csa_id_hash(request_id);
    for (size_t k = 0; k < p->count; k++) {
        size_t idx = (p->next + CSA_REPORTS_MAX - 1 - k) % CSA_REPORTS_MAX;
        if (p->id_hashes[idx] == hash && strcmp(p->reports[idx].request_id, request_id) == 0)
            return &p->reports[idx];
    }
    return NULL;
}
