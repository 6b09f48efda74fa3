/* records.c: see records.h. */
#include "records.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    json_t *record;
    unsigned long long invoke_seq; /* invoke during which it arrived */
    long long at_ms;               /* monotonic arrival time */
} pending;

struct csa_records {
    pending *items; /* arrival order */
    size_t count;
    size_t capacity;
    long long max_wait_ms;
    json_t *ready; /* array, oldest first */
    csa_records_stats stats;
};

csa_records *csa_records_create(size_t capacity, long long max_wait_ms)
{
    csa_records *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->items = calloc(capacity, sizeof *r->items);
    r->ready = json_array();
    if (!r->items || !r->ready) {
        free(r->items);
        json_decref(r->ready);
        free(r);
        return NULL;
    }
    r->capacity = capacity;
    r->max_wait_ms = max_wait_ms;
    return r;
}

void csa_records_destroy(csa_records *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        json_decref(r->items[i].record);
    free(r->items);
    json_decref(r->ready);
    free(r);
}

void csa_records_add(csa_records *r, json_t *record, unsigned long long invoke_seq, long long now_ms)
{
    if (r->count + json_array_size(r->ready) >= r->capacity) {
        if (r->count > 0) {
            json_decref(r->items[0].record);
            memmove(r->items, r->items + 1, (r->count - 1) * sizeof *r->items);
            r->count--;
        } else {
            json_array_remove(r->ready, 0);
        }
        r->stats.dropped++;
    }
    r->items[r->count++] = (pending){record, invoke_seq, now_ms};
    r->stats.received++;
}

static void set_int(json_t *obj, const char *key, double value)
{
    json_object_set_new(obj, key, json_integer((json_int_t)llround(value)));
}

static void set_number(json_t *obj, const char *key, double value)
{
    if (value != CSA_ABSENT)
        json_object_set_new(obj, key, json_real(value));
}

void csa_join(json_t *record, const csa_report *report, const csa_init_info *init)
{
    json_t *platform = json_object();
    json_object_set_new(platform, "source", json_string("coldstart-extension/" CSA_EXT_VERSION));
    json_object_set_new(platform, "joined", json_boolean(report != NULL));
    if (init && init->type[0])
        json_object_set_new(platform, "init_type", json_string(init->type));
    if (init && init->phase[0])
        json_object_set_new(platform, "init_phase", json_string(init->phase));
    if (!report) {
        json_object_set_new(record, "platform", platform);
        return;
    }
    json_t *cold = json_object_get(record, "cold_start");
    int is_cold = json_is_true(cold) || report->init_duration_ms != CSA_ABSENT || report->restore_duration_ms != CSA_ABSENT;

    if (report->status[0])
        json_object_set_new(platform, "status", json_string(report->status));
    set_number(platform, "duration_ms", report->duration_ms);
    set_number(platform, "billed_duration_ms", report->billed_duration_ms);
    set_number(platform, "max_memory_used_mb", report->max_memory_used_mb);
    set_number(platform, "memory_size_mb", report->memory_size_mb);
    set_number(platform, "init_duration_ms", report->init_duration_ms);
    set_number(platform, "restore_duration_ms", report->restore_duration_ms);
    if (is_cold && init) {
        if (init->status[0])
            json_object_set_new(platform, "init_status", json_string(init->status));
        set_number(platform, "init_report_ms", init->init_report_ms);
        set_number(platform, "restore_report_ms", init->restore_report_ms);
    }

    if (report->billed_duration_ms != CSA_ABSENT)
        set_int(record, "billed_duration_ms", ceil(report->billed_duration_ms));
    if (report->max_memory_used_mb != CSA_ABSENT)
        set_int(record, "memory_used_mb", report->max_memory_used_mb);
    if (report->memory_size_mb >= 128)
        set_int(record, "memory_allocated_mb", report->memory_size_mb);
    if (is_cold) {
        /* on-demand: the report's Init Duration; provisioned concurrency has none, its init ran
         * earlier and platform.initReport measured it */
        if (report->init_duration_ms != CSA_ABSENT)
            set_int(record, "init_duration_ms", report->init_duration_ms);
        else if (init && init->init_report_ms != CSA_ABSENT)
            set_int(record, "init_duration_ms", init->init_report_ms);
        if (init && init->type[0])
            json_object_set_new(record, "init_type", json_string(init->type));
    }
    json_object_set_new(record, "platform", platform);
}

size_t csa_records_settle(csa_records *r, const csa_platform *p, unsigned long long invoke_seq, long long now_ms,
                          int everything)
{
    size_t moved = 0, kept = 0;
    for (size_t i = 0; i < r->count; i++) {
        pending *e = &r->items[i];
        const char *request_id = json_string_value(json_object_get(e->record, "request_id"));
        const csa_report *report = request_id ? csa_platform_find(p, request_id) : NULL;
        int expired = invoke_seq >= e->invoke_seq + 2 && now_ms - e->at_ms >= r->max_wait_ms;
        if (report || everything || expired) {
            csa_join(e->record, report, &p->init);
            json_array_append_new(r->ready, e->record);
            if (report)
                r->stats.joined++;
            else
                r->stats.unjoined++;
            moved++;
        } else {
            r->items[kept++] = *e;
        }
    }
    r->count = kept;
    return moved;
}

json_t *csa_records_take(csa_records *r, size_t n)
{
    size_t have = json_array_size(r->ready);
    if (have == 0)
        return NULL;
    if (n >= have) {
        json_t *all = r->ready;
        r->ready = json_array();
        return all;
    }
    json_t *batch = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(batch, json_array_get(r->ready, i));
    json_t *rest = json_array();
    for (size_t i = n; i < have; i++)
        json_array_append(rest, json_array_get(r->ready, i));
    json_decref(r->ready);
    r->ready = rest;
    return batch;
}

size_t csa_records_pending(const csa_records *r) { return r->count; }
size_t csa_records_ready(const csa_records *r) { return json_array_size(r->ready); }
const csa_records_stats *csa_records_stats_get(const csa_records *r) { return &r->stats; }
