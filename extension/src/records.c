/* records.c: see records.h. */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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
    json_t *ready;                       /* array, oldest first */
    size_t incomplete_held;              /* records with "complete": false among items and ready */
    char seen[CSA_SEEN_MAX][CSA_ID_MAX]; /* request ids of the latest SDK records, ring */
    unsigned seen_hash[CSA_SEEN_MAX];
    size_t seen_next, seen_count;
    csa_records_stats stats;
};

/* The SDK's first copy of a cold-start record, sent at the start of the invocation. */
static int is_incomplete(json_t *record)
{
    return json_is_false(json_object_get(record, "complete"));
}

/* Two copies of one record: same invocation_id and timestamp (the backend's identity, with the
 * function, which one SDK process does not change). */
static int same_record(json_t *a, json_t *b)
{
    const char *ia = json_string_value(json_object_get(a, "invocation_id"));
    const char *ib = json_string_value(json_object_get(b, "invocation_id"));
    const char *ta = json_string_value(json_object_get(a, "timestamp"));
    const char *tb = json_string_value(json_object_get(b, "timestamp"));
    return ia && ib && ta && tb && strcmp(ia, ib) == 0 && strcmp(ta, tb) == 0;
}

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

static void apply_platform(json_t *record);

/*
 * The full record completes the incomplete one held: the full one's fields win. A held record that
 * is ready has been through csa_join: its "platform" object is kept and its figures applied again,
 * so the join survives (a pending one is joined later, like any record).
 */
static void complete_with(json_t *held, json_t *full, int joined)
{
    json_t *platform = joined ? json_incref(json_object_get(held, "platform")) : NULL;
    json_object_update(held, full);
    if (!json_object_get(full, "complete"))
        json_object_del(held, "complete");
    if (platform) {
        json_object_set_new(held, "platform", platform);
        apply_platform(held);
    }
}

/*
 * Looks for another copy of `record` among the held ones and merges the two. Returns 1 when the
 * copies were merged (the caller drops `record`), 0 when `record` is to be held on its own.
 */
static int merge_copy(csa_records *r, json_t *record, int incomplete)
{
    size_t n_ready = json_array_size(r->ready);
    for (size_t k = 0; k < r->count + n_ready; k++) {
        json_t *held = k < r->count ? r->items[k].record : json_array_get(r->ready, k - r->count);
        if (!same_record(held, record))
            continue;
        int held_incomplete = is_incomplete(held);
        if (incomplete) {
            /* a late or repeated first copy: the held one (full, or the same) wins */
            if (held_incomplete && !json_object_get(held, "platform"))
                json_object_update(held, record);
            r->stats.merged++;
            return 1;
        }
        if (!held_incomplete)
            continue; /* two full copies: the backend keeps one */
        complete_with(held, record, k >= r->count);
        r->incomplete_held--;
        r->stats.merged++;
        return 1;
    }
    return 0;
}

static void remember(csa_records *r, json_t *record)
{
    const char *request_id = json_string_value(json_object_get(record, "request_id"));
    if (!request_id || strlen(request_id) >= CSA_ID_MAX)
        return; /* no report can have it (telemetry.c) */
    strcpy(r->seen[r->seen_next], request_id);
    r->seen_hash[r->seen_next] = csa_id_hash(request_id);
    r->seen_next = (r->seen_next + 1) % CSA_SEEN_MAX;
    if (r->seen_count < CSA_SEEN_MAX)
        r->seen_count++;
}

static int seen(const csa_records *r, const char *request_id)
{
    unsigned hash = csa_id_hash(request_id);
    for (size_t k = 0; k < r->seen_count; k++)
        if (r->seen_hash[k] == hash && strcmp(r->seen[k], request_id) == 0)
            return 1;
    return 0;
}

/* At most `capacity` records held: the oldest (pending first) makes room. */
static void make_room(csa_records *r)
{
    if (r->count + json_array_size(r->ready) >= r->capacity) {
        json_t *old = r->count > 0 ? r->items[0].record : json_array_get(r->ready, 0);
        if (is_incomplete(old))
            r->incomplete_held--;
        if (r->count > 0) {
            json_decref(r->items[0].record);
            memmove(r->items, r->items + 1, (r->count - 1) * sizeof *r->items);
            r->count--;
        } else {
            json_array_remove(r->ready, 0);
        }
        r->stats.dropped++;
    }
}

void csa_records_add(csa_records *r, json_t *record, unsigned long long invoke_seq, long long now_ms)
{
    int incomplete = is_incomplete(record);
    r->stats.received++;
    remember(r, record);
    if ((incomplete || r->incomplete_held > 0) && merge_copy(r, record, incomplete)) {
        json_decref(record);
        return;
    }
    make_room(r);
    if (incomplete)
        r->incomplete_held++;
    r->items[r->count++] = (pending){record, invoke_seq, now_ms};
}

/*
 * Rounding without libm (not linking it saves its mapping: ~300 KiB of RSS). Values are figures
 * in [0, 1e9): platform_number and the telemetry parser refuse anything else.
 */
static json_int_t round_half_up(double value)
{
    return (json_int_t)(value + 0.5);
}

static double ceiling(double value)
{
    double whole = (double)(json_int_t)value;
    return whole < value ? whole + 1 : whole;
}

static void set_int(json_t *obj, const char *key, double value)
{
    json_object_set_new(obj, key, json_integer(round_half_up(value)));
}

static void set_number(json_t *obj, const char *key, double value)
{
    if (value != CSA_ABSENT)
        json_object_set_new(obj, key, json_real(value));
}

/* A figure of a "platform" object, or CSA_ABSENT; the object may come from the SDK (a record not
 * joined yet), so the same bounds as the telemetry parser's apply. */
static double platform_number(json_t *platform, const char *key)
{
    json_t *v = json_object_get(platform, key);
    double d = json_is_number(v) ? json_number_value(v) : CSA_ABSENT;
    return d >= 0 && d < 1e9 ? d : CSA_ABSENT;
}

/*
 * Overwrites the SDK's estimates with the figures in the record's "platform" object (made by
 * csa_join): used by the join and again after a merge of two copies.
 */
static void apply_platform(json_t *record)
{
    json_t *platform = json_object_get(record, "platform");
    if (!json_is_true(json_object_get(platform, "joined")))
        return;
    double billed = platform_number(platform, "billed_duration_ms");
    double used = platform_number(platform, "max_memory_used_mb");
    double size = platform_number(platform, "memory_size_mb");
    double init = platform_number(platform, "init_duration_ms");
    double restore = platform_number(platform, "restore_duration_ms");
    double init_report = platform_number(platform, "init_report_ms");
    if (billed != CSA_ABSENT)
        set_int(record, "billed_duration_ms", ceiling(billed));
    if (used != CSA_ABSENT)
        set_int(record, "memory_used_mb", used);
    if (size >= 128)
        set_int(record, "memory_allocated_mb", size);
    int is_cold = json_is_true(json_object_get(record, "cold_start")) || init != CSA_ABSENT || restore != CSA_ABSENT;
    if (is_cold) {
        /* on-demand: the report's Init Duration; provisioned concurrency has none, its init ran
         * earlier and platform.initReport measured it */
        if (init != CSA_ABSENT)
            set_int(record, "init_duration_ms", init);
        else if (init_report != CSA_ABSENT)
            set_int(record, "init_duration_ms", init_report);
        json_t *type = json_object_get(platform, "init_type");
        if (json_is_string(type))
            json_object_set(record, "init_type", type);
    }
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
    int is_cold =
        json_is_true(cold) || report->init_duration_ms != CSA_ABSENT || report->restore_duration_ms != CSA_ABSENT;

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
    json_object_set_new(record, "platform", platform);
    apply_platform(record);
    /* Only the first copy of a record came and its invocation is over (the function crashed or
     * timed out): the platform's duration completes it. */
    if (is_incomplete(record) && report->duration_ms != CSA_ABSENT) {
        set_int(record, "execution_duration_ms", report->duration_ms);
        json_object_del(record, "complete");
        json_object_set_new(platform, "completed_from_report", json_true());
    }
}

size_t csa_records_settle(csa_records *r, csa_platform *p, unsigned long long invoke_seq, long long now_ms,
                          int everything)
{
    size_t moved = 0, kept = 0;
    for (size_t i = 0; i < r->count; i++) {
        pending *e = &r->items[i];
        const char *request_id = json_string_value(json_object_get(e->record, "request_id"));
        csa_report *report = request_id ? csa_platform_find(p, request_id) : NULL;
        if (report)
            report->considered = 1;
        int expired = invoke_seq >= e->invoke_seq + 2 && now_ms - e->at_ms >= r->max_wait_ms;
        if (report || everything || expired) {
            int was_incomplete = is_incomplete(e->record);
            csa_join(e->record, report, &p->init);
            if (was_incomplete && !is_incomplete(e->record)) {
                r->incomplete_held--;
                r->stats.completed++;
            }
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

/* A random (version 4) UUID into out (37 bytes); 0, or -1 when the kernel gives no randomness. */
static int random_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

/* Kept with probability rate: the SDK's sampling, for the records it leaves to the extension. */
static int sampled(double rate)
{
    if (rate >= 1)
        return 1;
    unsigned long long x;
    if (rate <= 0 || getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x)
        return 0;
    return (double)(x >> 11) / (double)(1ull << 53) < rate;
}

/* "2026-11-27T18:42:50.081": the part of an RFC 3339 UTC time that orders as text */
#define TIME_ORDERED_CHARS 23

size_t csa_records_from_platform(csa_records *r, csa_platform *p, const json_t *template, double sample_rate,
                                 const char *until, char *last)
{
    size_t considered = 0;
    /* oldest first, so that the ready queue stays in the order of the invocations */
    for (size_t k = p->count; k-- > 0;) {
        csa_report *report = &p->reports[(p->next + CSA_REPORTS_MAX - 1 - k) % CSA_REPORTS_MAX];
        if (report->considered)
            continue;
        report->considered = 1;
        considered++;
        memcpy(last, report->request_id, CSA_ID_MAX);
        /* a cold start (Init or Restore Duration in the report) is the SDK's to record: never built */
        if (seen(r, report->request_id) || report->duration_ms == CSA_ABSENT || !report->start_time[0] ||
            report->init_duration_ms != CSA_ABSENT || report->restore_duration_ms != CSA_ABSENT ||
            (until && strncmp(report->start_time, until, TIME_ORDERED_CHARS) >= 0))
            continue;
        if (!sampled(sample_rate)) {
            r->stats.sampled_out++;
            continue;
        }
        char id[37];
        json_t *record = json_deep_copy(template);
        if (!record || random_uuid(id) != 0) {
            json_decref(record);
            continue;
        }
        double billed = report->billed_duration_ms != CSA_ABSENT ? report->billed_duration_ms : report->duration_ms;
        json_object_set_new(record, "invocation_id", json_string(id));
        json_object_set_new(record, "request_id", json_string(report->request_id));
        json_object_set_new(record, "timestamp", json_string(report->start_time));
        json_object_set_new(record, "cold_start", json_false());
        json_object_set_new(record, "start_kind", json_string("warm"));
        set_int(record, "execution_duration_ms", report->duration_ms);
        set_int(record, "billed_duration_ms", billed < 1 ? 1 : ceiling(billed));
        csa_join(record, report, &p->init);
        json_object_set_new(json_object_get(record, "platform"), "from_platform", json_true());
        make_room(r);
        json_array_append_new(r->ready, record);
        r->stats.from_platform++;
    }
    return considered;
}

json_t *csa_records_take(csa_records *r, size_t n)
{
    size_t have = json_array_size(r->ready);
    if (have == 0)
        return NULL;
    if (n > have)
        n = have;
    json_t *batch = json_array();
    json_t *rest = json_array();
    for (size_t i = 0; i < have; i++) {
        json_t *rec = json_array_get(r->ready, i);
        if (i >= n) {
            json_array_append(rest, rec);
            continue;
        }
        if (is_incomplete(rec)) {
            r->incomplete_held--;
            r->stats.incomplete_out++;
        }
        json_array_append(batch, rec);
    }
    json_decref(r->ready);
    r->ready = rest;
    return batch;
}

size_t csa_records_pending(const csa_records *r)
{
    return r->count;
}
size_t csa_records_ready(const csa_records *r)
{
    return json_array_size(r->ready);
}
const csa_records_stats *csa_records_stats_get(const csa_records *r)
{
    return &r->stats;
}
